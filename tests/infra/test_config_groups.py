"""Thing groups across device classes: every clash is a keyed configuration error at synth,
never a CDK construct error from the devices stack."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3

from app_config import ConfigError, load_config
from stacks.device_stack import DeviceStack
from tests.infra.conftest import CDK_JSON_CONTEXT


def _classes(canary: str, other_group: str = "Edge-Pis") -> dict[str, Any]:
    return {
        "first": {"thing_group": "First", "neo_target_device": "rasp4b"},
        "pi": {"thing_group": other_group, "neo_target_device": "rasp4b"},
        "jet": {
            "thing_group": "Jets",
            "neo_target_device": "jetson_nano",
            "canary_thing_group": canary,
        },
    }


def _devices_stack(classes: dict[str, Any]) -> None:
    """Load the configuration and build the devices stack (which creates the thing groups)."""
    config = load_config({**CDK_JSON_CONTEXT, "device_classes": classes}, "dev")
    app = cdk.App()
    bucket = s3.Bucket.from_bucket_name(cdk.Stack(app, "Shared"), "Bucket", "artifact-bucket")
    DeviceStack(app, "Devices", config=config, bucket=bucket)


def test_a_canary_group_that_is_another_classs_thing_group_is_a_keyed_error() -> None:
    with pytest.raises(ConfigError) as raised:
        _devices_stack(_classes(canary="Edge-Pis"))
    assert raised.value.key == "device_classes.jet.canary_thing_group"
    assert "already the thing group of device_classes.pi.thing_group" in str(raised.value)


@pytest.mark.parametrize("canary", ["EdgePis", "Edge_Pis", "Edge:Pis", "E-d-g-e-P-i-s"])
def test_a_canary_group_that_differs_from_another_only_in_punctuation_is_a_keyed_error(
    canary: str,
) -> None:
    """The devices stack names each thing group's resource by the letters and digits of its
    name (edge_constructs/core_device), so two such names would be one CDK construct name."""
    with pytest.raises(ConfigError) as raised:
        _devices_stack(_classes(canary=canary))
    assert raised.value.key == "device_classes.jet.canary_thing_group"
    message = str(raised.value)
    assert f"canary_thing_group={canary!r}" in message
    assert "device_classes.pi.thing_group" in message and "'Edge-Pis'" in message
    assert "letters and digits" in message


def test_a_later_group_without_letters_or_digits_is_a_keyed_error() -> None:
    """The first group's resource is named ``ThingGroup``; a later group whose name has no
    letter or digit would take the same name."""
    with pytest.raises(ConfigError) as raised:
        _devices_stack(_classes(canary="__"))
    assert raised.value.key == "device_classes.jet.canary_thing_group"
    assert "thing_group" in str(raised.value)


def test_groups_that_differ_in_a_letter_or_digit_synthesize() -> None:
    _devices_stack(_classes(canary="EdgePis2"))
