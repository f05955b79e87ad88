"""The pinned public components and the nucleus ranges recorded for them."""

from __future__ import annotations

import pytest

from app_config import DEFAULTS
from edge_constructs.greengrass.public_components import (
    CURRENT_NUCLEUS,
    LOG_MANAGER_PIN,
    PINS,
    VARIANT_DLR_PIN,
    admits,
)


def test_defaults_are_the_recorded_pins() -> None:
    assert DEFAULTS["log_manager_version"] == LOG_MANAGER_PIN.version == "2.3.7"
    assert DEFAULTS["variant_dlr_version"] == VARIANT_DLR_PIN.version == "1.6.16"
    for pin in PINS.values():
        assert pin.source, pin.name


def test_variant_dlr_range_excludes_the_current_nucleus() -> None:
    """The reason runtime_component=variant.DLR needs a pinned older nucleus."""
    assert VARIANT_DLR_PIN.nucleus_range == ">=2.0.0 <2.13.0"
    assert not admits(VARIANT_DLR_PIN.nucleus_range, CURRENT_NUCLEUS)
    assert admits(VARIANT_DLR_PIN.nucleus_range, "2.12.6")


@pytest.mark.parametrize(
    ("version_range", "version", "expected"),
    [
        (">=2.0.0 <2.13.0", "2.0.0", True),
        (">=2.0.0 <2.13.0", "2.13.0", False),
        (">=2.6.0 <3.0.0", "2.18.2", True),
        (">=2.6.0 <3.0.0", "2.5.6", False),
        ("=1.6.16", "1.6.16", True),
        ("1.6.16", "1.6.17", False),
    ],
)
def test_admits(version_range: str, version: str, expected: bool) -> None:
    assert admits(version_range, version) is expected


def test_deployment_pins_the_recorded_versions(dev) -> None:
    template = dev.template_json("dev/Pipeline")
    (deployment,) = [
        r for r in template["Resources"].values() if r["Type"] == "Custom::GreengrassDeployment"
    ]
    components = deployment["Properties"]["Components"]
    assert components[LOG_MANAGER_PIN.name]["ComponentVersion"] == LOG_MANAGER_PIN.version
