"""Every device class of the three-class configuration (``tests/infra/conftest.py``
``THREE_CLASSES``) on the simulated device, each for its own platform (issue 10: "each class's
deployment resolves, installs and runs for its own platform"):

* ``gateway`` (Neo ``LINUX/X86_64``, DLR) on linux/amd64: provision into its group, resolve,
  download, the runtime's real ``pip install`` of ``requirements.txt``, the inference component
  on the real ``libdlr.so``, publishes;
* ``onnx`` (the training job's ONNX export, ONNX Runtime) on linux/amd64: the same, with
  ``requirements-onnx.txt`` and the real ONNX model that the training stand-in put into
  ``output/output.tar.gz`` (the ImageNet-pretrained EfficientNet-Lite0 export,
  ``tests/conftest.py`` ``pretrained_export``), whose labels the published top-k carries;
* ``jetson`` (Neo ``jetson_nano``) on linux/aarch64: the aarch64 manifests resolve, their
  artifacts download and the recipes interpolate for aarch64. Its lifecycle then runs on this
  x86_64 host: ``pip`` installs x86_64 wheels (``dlr==1.6.0`` by the ``platform_machine``
  marker, not the device's ``dlr==1.10.0``) and the stand-in model is the x86_64 one. That
  run proves the recipes' scripts and the component's wiring work, and nothing about ARM;
* the canary ring: a device in the canary group gets the canary deployment (this synth's
  versions), a device in the fleet group gets the promoted release (``JETSON_RELEASE``).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from device_sim.assembly import Cloud, ComponentVersion
from tests.conftest import PretrainedExport
from tests.infra.conftest import JETSON_RELEASE
from tests.sim.conftest import Run, reachable_dir, run_device

GATEWAY, JETSON, ONNX = "EdgeAiDevGateways", "EdgeAiDevJetsons", "EdgeAiDevOnnx"
JETSON_CANARY = "EdgeAiDevJetsonsCanary"
NS = "com.example.edgeai.dev"


def _failed(run: Run) -> list[str]:
    return [f"{step}: {detail}" for step, ok, detail in run.report.steps if not ok]


def _class_run(
    base: Path,
    assembly: Path,
    group: str,
    *,
    platform: str = "linux/amd64",
    **options: Any,
) -> Run:
    return run_device(
        reachable_dir(base, group) / "gg",
        assembly,
        "dev",
        thing_group=group,
        platform=platform,
        reboot=False,
        wait_seconds=90,
        **options,
    )


@pytest.fixture(scope="module")
def gateway_run(
    reachable_base: Path,
    three_classes_assembly: Path,
    wheelhouse: Path | None,
    sample_images: Path,
    pretrained_export: PretrainedExport,
) -> Run:
    return _class_run(
        reachable_base,
        three_classes_assembly,
        GATEWAY,
        wheelhouse=wheelhouse,
        images=sample_images,
        onnx_model=pretrained_export.onnx_dir,
    )


@pytest.fixture(scope="module")
def onnx_run(
    reachable_base: Path,
    three_classes_assembly: Path,
    wheelhouse: Path | None,
    sample_images: Path,
    pretrained_export: PretrainedExport,
) -> Run:
    return _class_run(
        reachable_base,
        three_classes_assembly,
        ONNX,
        wheelhouse=wheelhouse,
        images=sample_images,
        onnx_model=pretrained_export.onnx_dir,
    )


@pytest.fixture(scope="module")
def jetson_run(
    reachable_base: Path,
    three_classes_assembly: Path,
    wheelhouse: Path | None,
    sample_images: Path,
    pretrained_export: PretrainedExport,
) -> Run:
    return _class_run(
        reachable_base,
        three_classes_assembly,
        JETSON_CANARY,
        platform="linux/aarch64",
        wheelhouse=wheelhouse,
        images=sample_images,
        onnx_model=pretrained_export.onnx_dir,
    )


def _steps(run: Run) -> dict[str, bool]:
    return {step: ok for step, ok, _ in run.report.steps}


@pytest.mark.parametrize(
    ("fixture", "runtime", "component"),
    [("gateway_run", "dlr", f"{NS}.gateway"), ("onnx_run", "onnx", f"{NS}.onnx")],
)
def test_x86_64_class_installs_runs_and_publishes(
    fixture: str,
    runtime: str,
    component: str,
    request: pytest.FixtureRequest,
    sample_images: Path,
    pretrained_export: PretrainedExport,
) -> None:
    run: Run = request.getfixturevalue(fixture)
    assert run.report.ok, _failed(run)
    resolution = run.report.resolution
    assert resolution is not None
    kind = "Dlr" if runtime == "dlr" else "Onnx"
    # only this class's components: the deployment of the device's own group
    ours = {n for n in resolution.components if n.startswith(NS)}
    assert ours == {
        f"{component}.Model",
        f"{component}.{kind}Runtime",
        f"{component}.{kind}Inference",
    }
    assert _steps(run)[f"boot 1: {component}.{kind}Runtime Install"]
    thing = "edge-ai-dev-sim-1"
    messages = run.report.published
    assert sorted(m["payload"]["input"] for m in messages) == sorted(
        f"boot1-{p.name}" for p in sample_images.iterdir()
    )
    labels = set(json.loads((pretrained_export.onnx_dir / "labels.json").read_text()).values())
    for message in messages:
        assert message["topic"] == f"edge-ai/{thing}/predictions"
        assert message["payload"]["runtime"] == runtime
        top = message["payload"]["top"]
        assert len(top) == 5
        # the labels the training stand-in put into model.tar.gz: the ONNX model's own
        assert {t["label"] for t in top} <= labels


def test_onnx_class_runs_the_onnx_model_from_the_training_output(onnx_run: Run) -> None:
    """The package the device unpacked holds the ONNX model of output/output.tar.gz, and the
    venv the runtime component built has onnxruntime (requirements-onnx.txt), not dlr."""
    unarchived = onnx_run.root / "packages/artifacts-unarchived"
    models = list(unarchived.glob(f"{NS}.onnx.Model/*/*/model/model.onnx"))
    assert len(models) == 1, list(unarchived.rglob("*"))
    venvs = list((onnx_run.root / "work").glob(f"{NS}.onnx.OnnxRuntime/**/site-packages"))
    assert venvs, list((onnx_run.root / "work").rglob("site-packages"))
    installed = {p.name.split("-")[0].lower() for p in venvs[0].iterdir()}
    assert "onnxruntime" in installed and "dlr" not in installed


def test_jetson_class_resolves_downloads_and_interpolates_for_aarch64(jetson_run: Run) -> None:
    resolution = jetson_run.report.resolution
    assert resolution is not None, _failed(jetson_run)
    assert resolution.platform == "linux/aarch64"
    for name in (f"{NS}.jetson.Model", f"{NS}.jetson.DlrInference", f"{NS}.jetson.DlrRuntime"):
        manifest = resolution.components[name].manifest
        assert manifest is not None
        assert manifest["Platform"]["architecture"] == "aarch64", (name, manifest["Platform"])
    steps = _steps(jetson_run)
    assert steps["download artifacts"] and steps["interpolate"]
    effective = json.loads((jetson_run.root / "config/effectiveConfig.json").read_text())
    run_script = json.dumps(effective["services"][f"{NS}.jetson.DlrInference"]["lifecycle"])
    assert "{artifacts:" not in run_script and str(jetson_run.root) in run_script
    assert any("proves nothing about them on linux/aarch64" in n for n in jetson_run.report.notes)


def test_jetson_lifecycle_runs_on_this_x86_64_host(jetson_run: Run) -> None:
    """What it proves: the aarch64 recipes' scripts install and run the component end to end.
    What it does not: anything about an ARM CPU (x86_64 wheels and stand-in model here)."""
    assert jetson_run.report.ok, _failed(jetson_run)
    assert {m["payload"]["runtime"] for m in jetson_run.report.published} == {"dlr"}


# ---------------------------------------------------------------- the canary ring
def retain_release(release: dict[str, dict[str, Any]]):  # type: ignore[no-untyped-def]
    """Put the promoted release's component versions into the simulated account, as an earlier
    deploy left them: Greengrass keeps component versions (they are retained), and the release
    names them. Each is this synth's recipe of that component under the release's version, its
    dependencies on the release's other components pinned to their release versions."""
    versions = {name: pin["version"] for name, pin in release.items()}

    def patch(cloud: Cloud) -> None:
        for name, version in versions.items():
            latest = [c for (n, _), c in cloud.components.items() if n == name]
            if not latest:
                continue  # a public component (LogManager)
            recipe = copy.deepcopy(latest[0].recipe)
            recipe["ComponentVersion"] = version
            for dep, spec in recipe.get("ComponentDependencies", {}).items():
                if dep in versions:
                    spec["VersionRequirement"] = f"={versions[dep]}"
            cloud.components[(name, version)] = ComponentVersion(
                name, version, latest[0].arn.rsplit(":", 1)[0] + f":{version}", recipe
            )

    return patch


def _ring_device(
    tmp_path: Path, assembly: Path, group: str, onnx_model: Path | None, **options: Any
) -> Run:
    return run_device(
        tmp_path / group,
        assembly,
        "dev",
        thing_group=group,
        platform="linux/aarch64",
        run_lifecycle=False,
        onnx_model=onnx_model,
        **options,
    )


def test_canary_group_device_gets_the_canary_deployment(
    tmp_path: Path, three_classes_assembly: Path, pretrained_export: PretrainedExport
) -> None:
    run = _ring_device(tmp_path, three_classes_assembly, JETSON_CANARY, pretrained_export.onnx_dir)
    resolution = run.report.resolution
    assert resolution is not None, _failed(run)
    assert resolution.deployment_name == "edge-ai-dev-jetson-edge-inference-canary"
    assert resolution.thing_group == JETSON_CANARY
    assert run.report.provision is not None
    for name, pin in JETSON_RELEASE.items():
        if name.startswith(NS):
            assert resolution.components[name].version != pin["version"]  # this synth's


def test_fleet_group_device_gets_the_promoted_release(
    tmp_path: Path, three_classes_assembly: Path, pretrained_export: PretrainedExport
) -> None:
    run = _ring_device(
        tmp_path,
        three_classes_assembly,
        JETSON,
        pretrained_export.onnx_dir,
        cloud_patch=retain_release(JETSON_RELEASE),
    )
    resolution = run.report.resolution
    assert resolution is not None, _failed(run)
    assert resolution.deployment_name == "edge-ai-dev-jetson-edge-inference"
    assert {n: c.version for n, c in resolution.components.items() if n in JETSON_RELEASE} == {
        n: p["version"] for n, p in JETSON_RELEASE.items()
    }
    inference = resolution.components[f"{NS}.jetson.DlrInference"]
    assert inference.configuration["TopK"] == 5  # the release's merge


def test_a_group_no_deployment_targets_fails_naming_it(
    tmp_path: Path, three_classes_assembly: Path, pretrained_export: PretrainedExport
) -> None:
    run = _ring_device(tmp_path, three_classes_assembly, "NoSuchGroup", pretrained_export.onnx_dir)
    assert run.report.failure is not None
    assert "--thing-group NoSuchGroup" in str(run.report.failure)


def test_a_stage_with_an_onnx_class_and_no_onnx_model_fails_naming_it(
    tmp_path: Path, three_classes_assembly: Path, pretrained_export: PretrainedExport
) -> None:
    run = _ring_device(tmp_path, three_classes_assembly, ONNX, None)
    assert run.report.failure is not None and run.report.failure.step == "deploy stacks"
    assert "ONNX device class" in str(run.report.failure)
    assert "--onnx-model" in str(run.report.failure)
