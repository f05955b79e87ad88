"""The stack's core-device IoT policy needs its ``"Version": "2012-10-17"``: without it
``${iot:Connection.Thing.ThingName}`` is literal text (IAM "IAM JSON policy elements: Version";
AWS IoT Core takes its variable rules from IAM: "AWS IoT Core policy variables"), so the
``OwnThingConnect`` statement no longer matches the device's client ID and the nucleus cannot
connect."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from device_sim.assembly import Cloud
from device_sim.device import Device, DeviceOptions, StepFailed, prepare_root
from device_sim.iam import Policy


def _connect(root: Path, assembly: Path, patch: Callable[[Cloud], None] | None = None) -> Device:
    device = Device(DeviceOptions(assembly=assembly, stage="dev", root=root, cloud_patch=patch))
    prepare_root(root)
    _, cloud = device.deploy()
    device.provision(cloud)
    device.connect(cloud)
    return device


def _drop_versions(cloud: Cloud) -> None:
    for name, policy in list(cloud.iot_policies.items()):
        document = {k: v for k, v in policy.document.items() if k != "Version"}
        cloud.iot_policies[name] = Policy(policy.name, document)


def test_the_core_device_policy_connects_only_with_its_version(
    tmp_path: Path, dev_assembly: Path
) -> None:
    device = _connect(tmp_path / "with" / "gg", dev_assembly)
    assert device.client_ids[0] == device.thing_name
    with pytest.raises(StepFailed) as failed:
        _connect(tmp_path / "without" / "gg", dev_assembly, _drop_versions)
    assert failed.value.step == "mqtt connect"
    assert "no statement allows it" in failed.value.reason
