"""The inference component's publishes are authorized on a nucleus with default settings.

What the nucleus does, from its source (github.com/aws-greengrass/aws-greengrass-nucleus):

- ``deployment/DeviceConfiguration.java``: ``interpolateComponentConfiguration`` defaults to
  false (``getInterpolateComponentConfiguration().dflt(false)``); the option exists from nucleus
  2.6.0 (absent from the file at tag v2.5.6, present at v2.6.0).
- ``componentmanager/KernelConfigResolver.java``: recipe variables inside a component's
  *configuration* (where ``accessControl`` lives) are interpolated only when that option is
  true (``shouldInterpolateConfiguration``). With it false, ``{iot:thingName}`` in an
  accessControl resource stays a literal string. The developer guide says the same
  (https://docs.aws.amazon.com/greengrass/v2/developerguide/component-recipe-reference.html,
  "Recipe variables in authorization policies").
- ``builtin/services/mqttproxy/MqttProxyIPCAgent.java`` (``doAuthorization``) authorizes
  PublishToIoTCore with ``ResourceLookupPolicy.MQTT_STYLE``; ``authorization/WildcardTrie.java``
  (``add``, ``matchesMQTT``, ``getActualChar``) matches a resource where ``*`` matches any run of
  characters, ``+`` one topic level, a trailing ``/#`` any levels, and ``${c}`` is a literal
  ``c``; anything else, braces included, is literal.
- ``DeviceConfiguration.getThingName`` puts the thing name in the ``AWS_IOT_THING_NAME``
  environment variable of every component, from which the component substitutes
  ``{iot:thingName}`` in its PublishTopic (``component_src/edge_inference/config.py``,
  ``resolve_topic``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.infra.iam_eval import ACCOUNT, PARTITION, REGION, Resolver, evaluate
from tests.infra.rendering import component_recipes, render, resources_of_type


def _wildcard_trie_regex(resource: str) -> re.Pattern[str]:
    """A regex equivalent of WildcardTrie.matchesMQTT for one accessControl resource."""
    out = []
    i = 0
    while i < len(resource):
        char = resource[i]
        if char == "$" and resource[i + 1 : i + 2] == "{" and resource[i + 3 : i + 4] == "}":
            out.append(re.escape(resource[i + 2]))
            i += 4
            continue
        if char == "*":
            out.append(".*")
        elif (
            char == "+"
            and (i == 0 or resource[i - 1] == "/")
            and (i == len(resource) - 1 or resource[i + 1] == "/")
        ):
            out.append("[^/]*")
        elif char == "#" and i == len(resource) - 1 and i > 0 and resource[i - 1] == "/":
            out[-1] = "(/.*)?"  # "a/#" matches "a" and everything under it
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out))


def nucleus_authorizes_publish(recipe: dict[str, Any], merge: dict[str, Any], topic: str) -> bool:
    """accessControl as a default nucleus holds it (no interpolation), then the lookup."""
    configuration = {**recipe["ComponentConfiguration"]["DefaultConfiguration"], **merge}
    policies = configuration["accessControl"]["aws.greengrass.ipc.mqttproxy"]
    for policy in policies.values():
        operations = policy["operations"]
        if not ({"aws.greengrass#PublishToIoTCore", "*"} & set(operations)):
            continue
        for resource in policy["resources"]:
            if _wildcard_trie_regex(resource).fullmatch(topic):
                return True
    return False


@pytest.fixture(params=["dev", "prod"])
def stage(request: pytest.FixtureRequest) -> tuple[str, Any]:
    return request.param, request.getfixturevalue(request.param)


def _inference(template: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    recipes = component_recipes(template)
    name, recipe = next(
        (n, r)
        for n, r in recipes.items()
        if "accessControl" in r.get("ComponentConfiguration", {}).get("DefaultConfiguration", {})
    )
    (deployment,) = resources_of_type(template, "AWS::GreengrassV2::Deployment").values()
    update = deployment["Properties"]["Components"][name]["ConfigurationUpdate"]
    return recipe, json.loads(render(update["Merge"]))


def _component_topic(template_topic: str, thing: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "component_src"))
    from edge_inference.config import resolve_topic

    return resolve_topic(template_topic, thing)


def test_default_nucleus_authorizes_the_topic_the_component_publishes_to(
    stage, monkeypatch
) -> None:
    name, synthesized = stage
    recipe, merge = _inference(synthesized.template_json(f"{name}/Pipeline"))
    configuration = {**recipe["ComponentConfiguration"]["DefaultConfiguration"], **merge}
    thing = f"edge-ai-{name}-device-1"
    topic = _component_topic(configuration["PublishTopic"], thing, monkeypatch)
    assert topic == f"edge-ai/{thing}/predictions"
    assert nucleus_authorizes_publish(recipe, merge, topic)
    # ...and only that kind of topic: not another prefix, not a subscription elsewhere.
    assert not nucleus_authorizes_publish(recipe, merge, f"other/{thing}/predictions")
    assert not nucleus_authorizes_publish(recipe, merge, f"edge-ai/{thing}/commands")


def test_cloud_policy_keeps_publishes_to_this_stacks_devices(stage) -> None:
    """The accessControl wildcard admits any thing's topic locally; AWS IoT Core then allows
    only the topics of this stack's devices, and on the nucleus's first connection (client ID =
    thing name, where ``iot:Connection.Thing.ThingName`` resolves:
    https://docs.aws.amazon.com/iot/latest/developerguide/thing-policy-variables.html) the
    device's own. Why not the device's own on every connection: see
    test_device_permissions.test_iot_policy_serves_every_connection_the_nucleus_opens."""
    name, synthesized = stage
    template = synthesized.template_json(f"{name}/Devices")
    (policy,) = [
        p
        for p in resources_of_type(template, "AWS::IoT::Policy").values()
        if p["Properties"]["PolicyName"].endswith("GreengrassCoreDevicePolicy")
    ]
    document = Resolver(template).resolve(policy["Properties"]["PolicyDocument"])
    thing = f"edge-ai-{name}-device-1"
    text = json.dumps(document).replace("${iot:Connection.Thing.ThingName}", thing)
    statements = json.loads(text)["Statement"]
    topic = f"arn:{PARTITION}:iot:{REGION}:{ACCOUNT}:topic"
    own = f"{topic}/edge-ai/{thing}/predictions"
    assert evaluate(statements, "iot:Publish", own).allowed
    for outsider in ("someone-else", f"edge-ai-{'prod' if name == 'dev' else 'dev'}-device-1"):
        assert not evaluate(
            statements, "iot:Publish", f"{topic}/edge-ai/{outsider}/predictions"
        ).allowed


@pytest.mark.parametrize(
    ("resource", "topic", "expected"),
    [
        # As read from WildcardTrie.add and matchesMQTT (the MQTT_STYLE lookup).
        ("a/*/c", "a/b/c", True),
        ("a/*/c", "a/b/x/c", True),
        ("a/+/c", "a/b/c", True),
        ("a/+/c", "a/b/x/c", False),
        ("a/#", "a", True),
        ("a/#", "a/b/c", True),
        ("a/${*}", "a/*", True),
        ("a/${*}", "a/b", False),
        ("a/{iot:thingName}/c", "a/thing/c", False),
        ("a/{iot:thingName}/c", "a/{iot:thingName}/c", True),
    ],
)
def test_wildcard_port_matches_the_nucleus(resource: str, topic: str, expected: bool) -> None:
    assert bool(_wildcard_trie_regex(resource).fullmatch(topic)) is expected
