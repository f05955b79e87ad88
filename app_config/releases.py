"""The releases section: a class's promoted release (``releases.<stage>.<class>``), the
components a class deploys, and the checks that the two agree."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app_config.errors import ConfigError
from app_config.parse import VERSION_RE
from device_contract import names, topics
from device_contract.names import COMPONENT_NAME_MAX as COMPONENT_NAME_MAX
from edge_constructs.greengrass.public_components import LOG_MANAGER, NUCLEUS
from edge_constructs.props import ComponentPin, DeviceClass

#: The key of a release's inference component that records the topic prefix it was promoted
#: with (``rollout.promote`` writes it from the canary deployment's metadata).
PROMOTED_PREFIX = "publish_topic_prefix"


def _component_name(namespace: str, stage: str, device_class: str, part: str) -> str:
    """A component of ours, named as the device class construct names it."""
    return names.component_name(namespace, stage, device_class, part)


def release_components(namespace: str, stage: str, device_class: DeviceClass) -> tuple[str, ...]:
    """The components a class's deployment carries (the nucleus aside, which a deployment
    cannot remove)."""
    kind = "Dlr" if device_class.dlr else "Onnx"
    runtime = (
        "variant.DLR"
        if device_class.runtime == "variant.DLR"
        else _component_name(namespace, stage, device_class.name, f"{kind}Runtime")
    )
    return (
        _component_name(namespace, stage, device_class.name, "Model"),
        runtime,
        _component_name(namespace, stage, device_class.name, f"{kind}Inference"),
        LOG_MANAGER,
    )


def check_component_names(
    namespace: str, stage: str, device_classes: tuple[DeviceClass, ...]
) -> None:
    """Every component name a class deploys fits Greengrass's limit (CreateComponentVersion
    would refuse a longer one at deploy time)."""
    for device_class in device_classes:
        for name in release_components(namespace, stage, device_class):
            if len(name) > COMPONENT_NAME_MAX:
                raise ConfigError(
                    "component_namespace",
                    namespace,
                    f"gives the {len(name)}-character component name {name[:40]}...; "
                    f"Greengrass allows {COMPONENT_NAME_MAX}: use a shorter namespace",
                )


def check_releases(namespace: str, stage: str, device_classes: tuple[DeviceClass, ...]) -> None:
    """A deployment removes from its devices every component it omits (Greengrass developer
    guide, "Revise deployments",
    https://docs.aws.amazon.com/greengrass/v2/developerguide/revise-deployments.html): a
    release must name every component of its class."""
    for device_class in device_classes:
        if device_class.release is None:
            continue
        deployed = release_components(namespace, stage, device_class)
        for component in deployed:
            if component not in device_class.release:
                raise ConfigError(
                    f"releases.{stage}.{device_class.name}",
                    "...",
                    f"misses {component}, which the class deploys (the fleet would uninstall "
                    "it): promote again with python -m rollout.promote, or restore it",
                )
        # The release is deployed as it stands, so a component of another class (or any other)
        # added by hand would be installed on this class's devices. The nucleus is the one
        # extra a canary deployment may carry (nucleus_version pins it).
        for component in device_class.release:
            if component not in deployed and component != NUCLEUS:
                raise ConfigError(
                    f"releases.{stage}.{device_class.name}",
                    "...",
                    f"names {component}, which device class {device_class.name} does not "
                    "deploy: promote again with python -m rollout.promote, or remove it",
                )


def check_release_topics(
    stage: str, device_classes: tuple[DeviceClass, ...], publish_topic_prefix: str
) -> None:
    """A release's inference component publishes where its recipe says: on the topic prefix it
    was promoted with (its ``DefaultConfiguration`` ``PublishTopic``/``MetricsTopic`` and the
    ``accessControl`` derived from them). The core-device IoT policy allows only the stage's
    current prefix (``core_device``: ``iot:Publish`` on ``topic/<prefix>/${iot:Connection.
    Thing.ThingName}/*``), so a release promoted under another prefix would publish into a
    denied topic: the nucleus's PublishToIoTCore fails, and results pile up in the outbox."""
    problems: list[tuple[str, str]] = []
    for device_class in device_classes:
        for component, pin in (device_class.release or {}).items():
            promoted, where = pin.publish_topic_prefix, PROMOTED_PREFIX
            if promoted is None:
                # promoted before the prefix was recorded: its merge may still name the topic
                promoted, where = _merged_prefix(pin.merge), "merge.PublishTopic"
            if promoted is None or promoted == publish_topic_prefix:
                continue
            problems.append((f"releases.{stage}.{device_class.name}.{component}.{where}", promoted))
    if problems:
        (key, promoted), others = problems[0], [k for k, _ in problems[1:]]
        also = f" (also: {', '.join(others)})" if others else ""
        raise ConfigError(
            key,
            promoted,
            f"the promoted release publishes under {promoted}/<thing>/..., but "
            f"publish_topic_prefix is now {publish_topic_prefix}: the core-device IoT "
            "policy would deny the fleet's results and metrics. Restore "
            f'publish_topic_prefix={promoted}, or move the release: README, "Move a '
            f'release across a topic change"{also}',
        )


def _merged_prefix(merge: Mapping[str, Any] | None) -> str | None:
    """The prefix of a release's merged ``PublishTopic`` (``<prefix>/{iot:thingName}/
    predictions``, ``device_contract.topics.publish_topic``), or None when it sets none."""
    topic = (merge or {}).get("PublishTopic")
    suffix = topics.publish_topic("")
    if not isinstance(topic, str) or not topic.endswith(suffix) or topic == suffix:
        return None
    return topic[: -len(suffix)]


def parse_release(key: str, value: object, canary: str) -> Mapping[str, ComponentPin] | None:
    """A promoted release as the promote command writes it: component -> version (+ merge)."""
    if value is None:
        return None
    if not canary:
        raise ConfigError(
            key, "...", "a promoted release needs the class's canary_thing_group; remove it"
        )
    allowed = 'expected {"<component>": {"version": "X.Y.Z", "merge": {...}}, ...}'
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(key, value, allowed)
    pins: dict[str, ComponentPin] = {}
    for component, spec in value.items():
        if not isinstance(spec, Mapping) or not VERSION_RE.match(str(spec.get("version", ""))):
            raise ConfigError(f"{key}.{component}", spec, allowed)
        merge = spec.get("merge")
        if merge is not None and not isinstance(merge, Mapping):
            raise ConfigError(f"{key}.{component}.merge", merge, "expected a JSON object")
        unknown = sorted(set(spec) - {"version", "merge", PROMOTED_PREFIX})
        if unknown:
            raise ConfigError(f"{key}.{component}", spec, f"unknown keys {', '.join(unknown)}")
        prefix = spec.get(PROMOTED_PREFIX)
        if prefix is not None and not isinstance(prefix, str):
            raise ConfigError(f"{key}.{component}.{PROMOTED_PREFIX}", prefix, "expected a string")
        pins[str(component)] = ComponentPin(
            version=str(spec["version"]), merge=merge, publish_topic_prefix=prefix
        )
    return pins
