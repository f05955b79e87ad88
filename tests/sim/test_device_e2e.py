"""The whole simulated device on the synthesized dev and prod stages (linux/amd64): the real
inference component on the real libdlr.so, in the venv its runtime component really installs,
talking to device_sim.ipc over the event-stream protocol.

Two kinds of test:

* the device as the templates are today, with no help: each fails today at one of the known
  defects of issue 8 and names the denied call or failed step; they are strict xfails until the
  fixes (branch fix8) are merged, when they must pass;
* the device with test-only grants standing in for the fixes of defects 1 and 2
  (``tests/sim/grants.py``), so that the later steps run on today's templates.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.sim.conftest import Run, run_device
from tests.sim.grants import grant_installer_tes_policies

FIX8 = "issue 8 defect {}, fixed on branch fix8"


def _failed_steps(run: Run) -> list[str]:
    return [f"{step}: {detail}" for step, ok, detail in run.report.steps if not ok]


# ---------------------------------------------------------------- today's templates, no help
@pytest.mark.xfail(strict=True, reason=FIX8.format(1))
def test_defect1_installer_policy_lets_the_device_provision(
    tmp_path: Path, dev_assembly: Path
) -> None:
    """DeviceProvisioningHelper.setupIoTRoleForTes: iot:GetPolicy on
    GreengrassTESCertificatePolicy<alias> (only not-found is caught)."""
    run = run_device(tmp_path / "gg", dev_assembly, "dev", run_lifecycle=False)
    assert run.report.provision is not None, _failed_steps(run)


@pytest.mark.xfail(strict=True, reason=FIX8.format(2))
def test_defect2_token_exchange_role_can_download(tmp_path: Path, dev_assembly: Path) -> None:
    """S3Downloader.getRegionClientForBucket: s3:GetBucketLocation before every GetObject."""
    run = run_device(
        tmp_path / "gg",
        dev_assembly,
        "dev",
        run_lifecycle=False,
        cloud_patch=grant_installer_tes_policies,
    )
    assert ("download artifacts", True) in [(s, ok) for s, ok, _ in run.report.steps], (
        _failed_steps(run)
    )


@pytest.mark.xfail(strict=True, reason=FIX8.format(3))
def test_defect3_publish_is_authorized_on_a_default_nucleus(default_nucleus_run: Run) -> None:
    """accessControl resources with {iot:thingName} stay literal when
    interpolateComponentConfiguration is false (KernelConfigResolver, DeviceConfiguration)."""
    assert default_nucleus_run.report.ok, _failed_steps(default_nucleus_run)


@pytest.mark.xfail(strict=True, reason=FIX8.format(5))
def test_defect5_offline_reboot_runs_the_component(granted_dev_run: Run) -> None:
    """Lifecycle.java runs Install at every launch; the runtime's Install deletes its venv and
    needs PyPI."""
    assert granted_dev_run.report.ok, _failed_steps(granted_dev_run)


@pytest.mark.xfail(strict=True, reason=FIX8.format("1, 2, 3 and 5"))
@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_whole_device_with_no_help(
    tmp_path: Path,
    stage: str,
    request: pytest.FixtureRequest,
    wheelhouse: Path | None,
    sample_images: Path,
) -> None:
    assembly = request.getfixturevalue(f"{stage}_assembly")
    run = run_device(
        tmp_path / "gg",
        assembly,
        stage,
        images=sample_images,
        wheelhouse=wheelhouse,
        wait_seconds=60,
    )
    assert run.report.ok, _failed_steps(run)
    assert len(run.report.published) == 2 * len(list(sample_images.iterdir()))


# ---------------------------------------------------------------- what defects 3 and 5 look like
# These two pin the exact shape of today's failures (defects 1 and 2 are pinned by the unit tests
# in test_provision.py and test_download_lifecycle.py). Delete them when the fix8 branch is
# merged and the strict xfails above are removed: they describe the templates before the fixes.
def test_today_default_nucleus_refuses_the_publish(default_nucleus_run: Run) -> None:
    report = default_nucleus_run.report
    assert report.published == []
    assert report.denied, _failed_steps(default_nucleus_run)
    assert report.denied[0].startswith(
        "accessControl: Not Authorized: principal com.example.edgeai.dev.DlrInference"
    )
    effective = json.loads((default_nucleus_run.root / "config/effectiveConfig.json").read_text())
    access = effective["services"]["com.example.edgeai.dev.DlrInference"]["configuration"][
        "accessControl"
    ]["aws.greengrass.ipc.mqttproxy"]
    assert next(iter(access.values()))["resources"] == ["edge-ai/{iot:thingName}/predictions"]


def test_today_offline_reboot_breaks_the_runtime(granted_dev_run: Run) -> None:
    report = granted_dev_run.report
    assert report.failure is not None and report.failure.step == "boot 2 (reboot, offline)"
    assert report.failure.reason.startswith("com.example.edgeai.dev.DlrRuntime: Install failed")
    assert "com.example.edgeai.dev.DlrInference: not started" in report.failure.reason
    assert any(n.endswith("network refused with unshare -n") or "proxy" in n for n in report.notes)


# ---------------------------------------------------------------- the device that works
@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_first_boot_installs_runs_and_publishes(
    stage: str, request: pytest.FixtureRequest, sample_images: Path
) -> None:
    run: Run = request.getfixturevalue(f"granted_{stage}_run")
    steps = {step: ok for step, ok, _ in run.report.steps}
    assert steps[f"boot 1: com.example.edgeai.{stage}.DlrRuntime Install"]
    assert steps["boot 1: publish"]
    lines = (run.root / "mqtt/published.jsonl").read_text().splitlines()
    messages = [json.loads(line) for line in lines]
    images = sorted(p.name for p in sample_images.iterdir())
    first_boot = sorted(
        m["payload"]["input"] for m in messages if m["payload"]["input"].startswith("boot1-")
    )
    assert first_boot == [f"boot1-{n}" for n in images]
    # once the reboot works (issue 8 defect 5), the second boot's inputs follow
    assert all(m["payload"]["input"].startswith(("boot1-", "boot2-")) for m in messages)
    thing = f"edge-ai-{stage}-sim-1"
    for message in messages:
        assert message["topic"] == f"edge-ai/{thing}/predictions"
        assert message["client_id"] == thing
        assert message["qos"] == "1"
        assert message["payload"]["runtime"] == "dlr"
        top = message["payload"]["top"]
        assert len(top) == 5 and all(t["label"] == f"class-{t['index']}" for t in top)
        assert abs(sum(t["score"] for t in top) - 1.0) < 1e-3  # softmax over 10 classes, top 5
    # the model the device ran is the package the packaging handler built
    metadata = json.loads(
        next(
            (run.root / "packages/artifacts-unarchived").glob(
                f"com.example.edgeai.{stage}.Model/*/*/metadata.json"
            )
        ).read_text()
    )
    assert {m["payload"]["model"] for m in messages} == {metadata["model_id"]}


def test_component_environment_is_the_nucleus_one(granted_dev_run: Run) -> None:
    environ = granted_dev_run.root / "work/com.example.edgeai.dev.DlrInference"
    assert environ.is_dir()
    log = (granted_dev_run.root / "logs/com.example.edgeai.dev.DlrInference.log").read_text()
    assert "--- boot 1: Run ---" in log
    recipe_dir = granted_dev_run.root / "packages/recipes"
    assert any(
        p.name.startswith("com.example.edgeai.dev.DlrInference-") for p in recipe_dir.iterdir()
    )
