"""The demo device section: the optional EC2 demo core device, its instance type and class."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app_config.errors import ConfigError
from edge_constructs.props import DemoDeviceConfig, DeviceClass

# Instance types the demo core device may use: x86_64 (the default Neo target is LINUX/X86_64)
# with at least 2 GiB of memory (the nucleus JVM plus the inference component). Memory in GiB
# from the Amazon EC2 instance-type specifications,
# https://docs.aws.amazon.com/ec2/latest/instancetypes/gp.html (general purpose) and
# https://docs.aws.amazon.com/ec2/latest/instancetypes/co.html (compute optimized).
DEMO_DEVICE_INSTANCE_MEMORY_GIB = {
    "t3.small": 2,
    "t3.medium": 4,
    "t3.large": 8,
    "t3.xlarge": 16,
    "t3a.small": 2,
    "t3a.medium": 4,
    "t3a.large": 8,
    "m5.large": 8,
    "m6i.large": 8,
    "m7i.large": 8,
    "c5.large": 4,
    "c6i.large": 4,
    "c7i.large": 4,
}
DEMO_DEVICE_MIN_MEMORY_GIB = 2


def parse_demo_device(
    raw: Mapping[str, Any], device_classes: tuple[DeviceClass, ...], enabled: bool
) -> DemoDeviceConfig:
    device_class = _demo_device_class(raw, device_classes, enabled)
    return DemoDeviceConfig(
        enabled=enabled,
        instance_type=_demo_instance_type(raw["demo_device_instance_type"]),
        device_class=device_class.name,
        thing_group=device_class.canary_thing_group or device_class.thing_group,
    )


def _demo_device_class(
    raw: Mapping[str, Any], device_classes: tuple[DeviceClass, ...], enabled: bool
) -> DeviceClass:
    """The class the demo device joins: ``demo_device_class``, or the first class.

    It joins the class's canary group when there is one: until a release is promoted, the
    canary deployment is the class's only one, and the demo device is for trying the latest
    change. It is an x86_64 instance without an accelerator, so the class must build for that.
    """
    names = [c.name for c in device_classes]
    chosen = str(raw["demo_device_class"] or "").strip()
    key = "demo_device_class" if chosen else "demo_device"
    if chosen and chosen not in names:
        raise ConfigError(
            "demo_device_class",
            chosen,
            f"expected empty (the first) or one of the device classes: {', '.join(names)}",
        )
    device_class = device_classes[names.index(chosen)] if chosen else device_classes[0]
    target = device_class.neo_target
    accelerated = target is not None and target.accelerator is not None
    if enabled and (device_class.architecture != "amd64" or accelerated):
        group = device_class.canary_thing_group or device_class.thing_group
        raise ConfigError(
            key,
            raw[key],
            "the demo core device is an x86_64 Ubuntu instance without an accelerator: it joins "
            f"device class {device_class.name!r} ({group}), which needs an x86_64 "
            "Linux target (neo_target_platform=LINUX/X86_64, or an onnx build for amd64)",
        )
    return device_class


def _demo_instance_type(value: object) -> str:
    """An x86_64 instance type with at least 2 GiB of memory, from a known table."""
    text = str(value).strip()
    memory = DEMO_DEVICE_INSTANCE_MEMORY_GIB.get(text)
    if memory is None or memory < DEMO_DEVICE_MIN_MEMORY_GIB:
        raise ConfigError(
            "demo_device_instance_type",
            value,
            f"an x86_64 type with at least {DEMO_DEVICE_MIN_MEMORY_GIB} GiB of memory: "
            f"{', '.join(sorted(DEMO_DEVICE_INSTANCE_MEMORY_GIB))}",
        )
    return text
