"""Deployment resolution (DependencyResolver, RecipeLoader platform selection,
KernelConfigResolver configuration merge) on hand-written inputs and on synthesized stages."""

from __future__ import annotations

from pathlib import Path

import pytest

from device_sim.assembly import Cloud, ComponentVersion, Env
from device_sim.deployment import (
    DeploymentFailed,
    configuration_to_apply,
    resolve_deployment,
    satisfies,
    select_manifest,
)
from tests.sim.conftest import run_device


@pytest.mark.parametrize(
    ("version", "requirement", "expected"),
    [
        ("2.18.2", ">=2.0.0 <2.13.0", False),
        ("2.12.6", ">=2.0.0 <2.13.0", True),
        ("1.0.5", "=1.0.5", True),
        ("1.0.5", "1.0.5", True),
        ("1.2.0", "^1.0.0", True),
        ("2.0.0", "^1.0.0", False),
        ("1.0.9", "~1.0.2", True),
        ("1.1.0", "~1.0.2", False),
        ("3.0.0", "<2.0.0 || >=3.0.0", True),
    ],
)
def test_npm_ranges(version: str, requirement: str, expected: bool) -> None:
    assert satisfies(version, requirement) is expected


def test_first_matching_manifest_wins() -> None:
    recipe = {
        "ComponentName": "c",
        "ComponentVersion": "1.0.0",
        "Manifests": [
            {"Platform": {"os": "linux", "architecture": "amd64"}, "Lifecycle": {"Run": "a"}},
            {
                "Platform": {"os": "linux", "architecture": "/aarch64|arm/"},
                "Lifecycle": {"Run": "b"},
            },
            {"Platform": {"os": "*"}, "Lifecycle": {"Run": "c"}},
        ],
    }
    assert select_manifest(recipe, "linux", "amd64")["Lifecycle"]["Run"] == "a"
    assert select_manifest(recipe, "linux", "aarch64")["Lifecycle"]["Run"] == "b"
    assert select_manifest(recipe, "windows", "amd64")["Lifecycle"]["Run"] == "c"
    with pytest.raises(DeploymentFailed, match="no manifest for platform linux/aarch64"):
        select_manifest({"Manifests": recipe["Manifests"][:1]}, "linux", "aarch64")


def test_configuration_reset_then_defaults_then_merge() -> None:
    running = {"accessControl": {"old": 1}, "TopK": 3, "Keep": "me"}
    defaults = {"accessControl": {"new": 2}, "TopK": 5, "Other": {"a": 1}}
    merged = configuration_to_apply(running, defaults, {"Other": {"b": 2}}, ["/accessControl"])
    # reset removed the stale accessControl; defaults do not overwrite running values
    assert merged == {
        "accessControl": {"new": 2},
        "TopK": 3,
        "Keep": "me",
        "Other": {"a": 1, "b": 2},
    }


def _cloud_with(components: dict[str, dict[str, object]], deployment: dict[str, object]) -> Cloud:
    cloud = Cloud(env=Env())
    for name, recipe in components.items():
        version = str(recipe["ComponentVersion"])
        cloud.components[(name, version)] = ComponentVersion(name, version, "arn", recipe)
    cloud.deployments.append(deployment)
    return cloud


def test_dependency_requirement_must_be_satisfied() -> None:
    app = {
        "ComponentName": "app",
        "ComponentVersion": "1.0.0",
        "ComponentDependencies": {"lib": {"VersionRequirement": ">=2.0.0"}},
        "Manifests": [{"Platform": {"os": "linux"}}],
    }
    lib = {
        "ComponentName": "lib",
        "ComponentVersion": "1.5.0",
        "Manifests": [{"Platform": {"os": "linux"}}],
    }
    cloud = _cloud_with(
        {"app": app, "lib": lib},
        {"TargetArn": "x/g", "Components": {"app": {"ComponentVersion": "1.0.0"}}},
    )
    with pytest.raises(DeploymentFailed, match=r"no version of lib satisfies \{'app': '>=2.0.0'\}"):
        resolve_deployment(cloud, "linux/amd64")


def test_unknown_platform_is_one_line() -> None:
    with pytest.raises(DeploymentFailed, match="unknown platform 'linux/riscv64'"):
        resolve_deployment(Cloud(env=Env()), "linux/riscv64")


# -------------------------------------------------------------- on synthesized stages
def test_dev_resolves_pinned_versions_for_amd64(tmp_path: Path, dev_assembly: Path) -> None:
    run = run_device(tmp_path / "gg", dev_assembly, "dev", run_lifecycle=False)
    assert run.report.ok, run.report.steps
    resolution = run.report.resolution
    assert resolution is not None
    names = resolution.order
    # dependencies first: the inference component after its model and runtime
    assert names.index("com.example.edgeai.dev.DlrInference") > names.index(
        "com.example.edgeai.dev.DlrRuntime"
    )
    inference = resolution.components["com.example.edgeai.dev.DlrInference"]
    model = resolution.components["com.example.edgeai.dev.Model"]
    assert inference.dependencies["com.example.edgeai.dev.Model"]["VersionRequirement"] == (
        "=" + model.version
    )
    unarchived = tmp_path / "gg/packages/artifacts-unarchived/com.example.edgeai.dev.Model"
    assert (unarchived / model.version).is_dir()


def test_x86_stage_has_no_manifest_for_aarch64(tmp_path: Path, dev_assembly: Path) -> None:
    run = run_device(
        tmp_path / "gg",
        dev_assembly,
        "dev",
        platform="linux/aarch64",
        run_lifecycle=False,
    )
    assert run.report.failure is not None
    assert run.report.failure.step == "resolve deployment"
    assert "com.example.edgeai.dev.DlrInference@" in run.report.failure.reason
    assert "no manifest for platform linux/aarch64" in run.report.failure.reason


def test_arm64_stage_resolves_downloads_interpolates_for_aarch64(
    tmp_path: Path, arm64_assembly: Path
) -> None:
    run = run_device(
        tmp_path / "gg",
        arm64_assembly,
        "dev",
        platform="linux/aarch64",
        run_lifecycle=False,
    )
    assert run.report.ok, run.report.steps
    services = run.report.services
    run_script = services["com.example.edgeai.dev.DlrInference"].lifecycle["Run"]["Script"]
    assert f"{tmp_path}/gg/work/com.example.edgeai.dev.DlrRuntime/venv/bin/python" in run_script
    assert "{" not in run_script  # every placeholder of the Run script resolved
    assert any("proves nothing about them on linux/aarch64" in n for n in run.report.notes)


def _drop_nucleus_pin(cloud: Cloud) -> None:
    for deployment in cloud.deployments:
        deployment["Components"].pop("aws.greengrass.Nucleus", None)


def test_variant_dlr_without_a_nucleus_pin_fails_on_todays_nucleus(
    tmp_path: Path, variant_dlr_assembly: Path
) -> None:
    """What synth now refuses (runtime_component=variant.DLR without nucleus_version): the
    device's 2.18.2 is outside variant.DLR's range and nothing asks for another nucleus."""
    run = run_device(
        tmp_path / "gg",
        variant_dlr_assembly,
        "dev",
        platform="linux/aarch64",
        run_lifecycle=False,
        cloud_patch=_drop_nucleus_pin,
    )
    assert run.report.failure is not None
    reason = run.report.failure.reason
    assert "running nucleus 2.18.2 (--nucleus-version) is outside a component's" in reason
    assert "variant.DLR requires >=2.0.0 <2.13.0" in reason


def test_variant_dlr_stage_pins_a_nucleus_inside_its_range(
    tmp_path: Path, variant_dlr_assembly: Path
) -> None:
    """With the pin synth requires, a new device's nucleus is changed explicitly."""
    run = run_device(
        tmp_path / "gg",
        variant_dlr_assembly,
        "dev",
        platform="linux/aarch64",
        run_lifecycle=False,
    )
    assert run.report.ok, run.report.steps
    assert run.report.resolution is not None
    assert run.report.resolution.nucleus_version == "2.12.6"
    assert any("explicit nucleus update" in n for n in run.report.notes), run.report.notes


def test_variant_dlr_on_an_older_nucleus(tmp_path: Path, variant_dlr_assembly: Path) -> None:
    run = run_device(
        tmp_path / "gg",
        variant_dlr_assembly,
        "dev",
        platform="linux/aarch64",
        nucleus_version="2.12.6",
        run_lifecycle=False,
    )
    assert run.report.ok, run.report.steps
    run_script = run.report.services["com.example.edgeai.dev.DlrInference"].lifecycle["Run"][
        "Script"
    ]
    # variant.DLR is a direct dependency: its configuration is interpolated into the launcher
    assert run_script.startswith(
        '. "../variant.DLR/greengrass_ml/greengrass_ml_dlr_venv/bin/activate"'
    )
    assert any("variant.DLR@" in n and "public component" in n for n in run.report.notes)
