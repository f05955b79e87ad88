"""Platform matching (aws-greengrass-component-common ``PlatformHelper``, the nucleus's
``config/PlatformResolver.findBestMatch``) and the device's nucleus against every nucleus range
(``componentmanager/DependencyResolver.java``), on hand-written deployments."""

from __future__ import annotations

import pytest

from device_sim.assembly import Cloud, ComponentVersion, Env
from device_sim.deployment import (
    DeploymentFailed,
    attribute_satisfied,
    resolve_deployment,
    select_manifest,
)


def _recipe(platform: dict[str, str]) -> dict[str, object]:
    return {
        "ComponentName": "c",
        "ComponentVersion": "1.0.0",
        "Manifests": [{"Platform": platform, "Lifecycle": {"Run": "x"}}],
    }


@pytest.mark.parametrize(
    "platform",
    [
        {"os": "all"},
        {"os": "any", "architecture": "any"},
        {"architecture": "all"},
        {"os": "linux", "architecture.detail": "*"},
        {},
    ],
)
def test_wildcards_that_match(platform: dict[str, str]) -> None:
    """``isAttributeSatisfied``: ``*`` (Platform.WILDCARD) for any key; ``all`` and ``any`` only
    for ``os`` and ``architecture`` ("here to maintain existing behavior"); no Platform at all
    is a wildcard too."""
    assert select_manifest(_recipe(platform), "linux", "amd64")["Lifecycle"] == {"Run": "x"}


@pytest.mark.parametrize(
    "platform",
    [
        {"os": "linux", "architecture.detail": "all"},
        {"os": "linux", "architecture.detail": "any"},
        {"os": "linux", "runtime": "all"},
        {"os": "Linux"},
        {"os": "!windows"},
    ],
)
def test_labels_that_do_not_match(platform: dict[str, str]) -> None:
    """``all``/``any`` on another key are plain labels, and a key the device does not report
    (an amd64 device has no ``architecture.detail``) has no label to match; labels compare
    case-sensitively; a template that does not start with a letter or digit never matches."""
    with pytest.raises(DeploymentFailed, match="no manifest for platform linux/amd64"):
        select_manifest(_recipe(platform), "linux", "amd64")


def _cloud(nucleus_requirement: str) -> Cloud:
    cloud = Cloud(env=Env())
    recipe = {
        "ComponentName": "app",
        "ComponentVersion": "1.0.0",
        "ComponentDependencies": {
            "aws.greengrass.Nucleus": {
                "VersionRequirement": nucleus_requirement,
                "DependencyType": "SOFT",
            }
        },
        "Manifests": [{"Platform": {"os": "linux"}}],
    }
    cloud.components[("app", "1.0.0")] = ComponentVersion("app", "1.0.0", "arn", recipe)
    cloud.deployments.append(
        {"TargetArn": "arn:x:thinggroup/g", "Components": {"app": {"ComponentVersion": "1.0.0"}}}
    )
    return cloud


def test_the_devices_nucleus_must_fall_inside_every_nucleus_range() -> None:
    """The running nucleus is the only local candidate; outside a component's range the cloud
    would offer another minor version, which ``checkNonExplicitNucleusUpdate`` refuses. The
    message names the device's nucleus (``--nucleus-version``), the component and its range."""
    resolution = resolve_deployment(_cloud(">=2.0.0 <2.19.0"), "linux/amd64", "2.18.2")
    assert resolution.nucleus_version == "2.18.2"
    with pytest.raises(DeploymentFailed) as failed:
        resolve_deployment(_cloud(">=2.0.0 <2.13.0"), "linux/amd64", "2.18.2")
    message = str(failed.value)
    assert "nucleus 2.18.2 (--nucleus-version)" in message
    assert "app requires >=2.0.0 <2.13.0" in message
    # a caret range on the nucleus, as semver4j reads it
    with pytest.raises(DeploymentFailed, match=r"app requires \^2.12.0"):
        resolve_deployment(_cloud("^2.12.0 <2.13.0"), "linux/amd64", "2.18.2")


def test_all_and_any_are_labels_for_other_reported_keys() -> None:
    """A key the device does report besides os/architecture (``platformOverride`` in the
    nucleus configuration adds any: ``PlatformResolver.getCurrentPlatform``): ``all``/``any`` are
    compared as labels there, only ``*`` is a wildcard."""
    assert attribute_satisfied("runtime", "all", "all")
    assert not attribute_satisfied("runtime", "aws_nucleus_classic", "all")
    assert not attribute_satisfied("runtime", "aws_nucleus_classic", "any")
    assert attribute_satisfied("runtime", "aws_nucleus_classic", "*")
    assert attribute_satisfied("os", "linux", "any")
    assert attribute_satisfied("architecture", "amd64", "/amd64|x86_64/")
    assert not attribute_satisfied("architecture", "amd64", "/amd/")  # the whole label
