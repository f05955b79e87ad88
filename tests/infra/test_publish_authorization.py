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
from pathlib import Path
from typing import Any

import pytest

from device_sim.iam import Request, evaluate
from device_sim.ipc.authorization import (
    MQTT_PROXY_SERVICE,
    PUBLISH_TO_IOT_CORE,
    authorize,
    parse_access_control,
    resource_matches,
)
from tests.infra.rendering import component_recipes, render, resources_of_type


def nucleus_authorizes_publish(recipe: dict[str, Any], merge: dict[str, Any], topic: str) -> bool:
    """accessControl as a default nucleus holds it (no interpolation), then the nucleus's
    lookup for PublishToIoTCore (device_sim.ipc.authorization, MQTT-style matching)."""
    configuration = {**recipe["ComponentConfiguration"]["DefaultConfiguration"], **merge}
    policies = parse_access_control(configuration["accessControl"])
    decision = authorize(
        policies,
        destination=MQTT_PROXY_SERVICE,
        operation=PUBLISH_TO_IOT_CORE,
        resource=topic,
        mqtt=True,
    )
    return decision.allowed


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
    (deployment,) = resources_of_type(template, "Custom::GreengrassDeployment").values()
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


def test_cloud_policy_keeps_publishes_to_this_stacks_devices(stage, request) -> None:
    """The accessControl wildcard admits any thing's topic locally; AWS IoT Core then allows
    only the topics of this stack's devices, and on the nucleus's first connection (client ID =
    thing name, where ``iot:Connection.Thing.ThingName`` resolves:
    https://docs.aws.amazon.com/iot/latest/developerguide/thing-policy-variables.html) the
    device's own. Why not the device's own on every connection: see
    test_device_permissions.test_iot_policy_serves_every_connection_the_nucleus_opens."""
    name, _ = stage
    cloud = request.getfixturevalue(f"{name}_cloud")
    policy = cloud.iot_policies[f"edge-ai-{name}-GreengrassCoreDevicePolicy"]
    thing = f"edge-ai-{name}-device-1"
    context = {"iot:ClientId": thing, "iot:Connection.Thing.ThingName": thing}
    topic = cloud.env.arn("iot", "topic")
    own = f"{topic}/edge-ai/{thing}/predictions"
    assert evaluate([policy], Request("iot:Publish", own, context)).allowed
    for outsider in ("someone-else", f"edge-ai-{'prod' if name == 'dev' else 'dev'}-device-1"):
        outside = f"{topic}/edge-ai/{outsider}/predictions"
        assert not evaluate([policy], Request("iot:Publish", outside, context)).allowed


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
        # A lone "#" (or "*") matches every resource (WildcardTrie's constructor comment).
        ("#", "a/b/c", True),
        ("a#", "ab", False),
    ],
)
def test_wildcard_matching_follows_the_nucleus(resource: str, topic: str, expected: bool) -> None:
    assert resource_matches(resource, topic, mqtt=True) is expected
