"""The whole simulated device on the synthesized dev and prod stages (linux/amd64): the real
inference component on the real libdlr.so, in the venv its runtime component really installs,
talking to device_sim.ipc over the event-stream protocol.

The device is a default one: nucleus 2.18.x with ``interpolateComponentConfiguration`` off (its
default, ``deployment/DeviceConfiguration.java``), no grants beyond what the templates give.
Each ``test_defect*`` test failed on the templates before issue 8's fixes, naming the denied
call or the failed step:

1. ``ProvisioningDenied: iot:GetPolicy on ...:policy/GreengrassTESCertificatePolicy<alias>``
   (``easysetup/DeviceProvisioningHelper.java``, ``setupIoTRoleForTes``);
2. ``S3 GetBucketLocation returns 403 Access Denied``
   (``componentmanager/builtins/S3Downloader.java``, ``getRegionClientForBucket``);
3. ``accessControl: Not Authorized ... on resource edge-ai/<thing>/predictions``: the literal
   ``{iot:thingName}`` in the policy (``componentmanager/KernelConfigResolver.java``);
5. ``boot 2 (reboot, offline): ...DlrRuntime Install: failed ... No matching distribution``
   (``lifecycle/Lifecycle.java`` runs Install at every launch unless Skipif says otherwise).
"""

from __future__ import annotations

import json
import os
import pwd
from pathlib import Path

import pytest

from device_sim import run_record
from tests.sim.conftest import Run, run_device


def _failed_steps(run: Run) -> list[str]:
    return [f"{step}: {detail}" for step, ok, detail in run.report.steps if not ok]


def test_defect1_installer_policy_lets_the_device_provision(
    tmp_path: Path, dev_assembly: Path
) -> None:
    """DeviceProvisioningHelper.setupIoTRoleForTes: iot:GetPolicy on
    GreengrassTESCertificatePolicy<alias> (only not-found is caught)."""
    run = run_device(tmp_path / "gg", dev_assembly, "dev", run_lifecycle=False)
    assert run.report.provision is not None, _failed_steps(run)


def test_defect2_token_exchange_role_can_download(tmp_path: Path, dev_assembly: Path) -> None:
    """S3Downloader.getRegionClientForBucket: s3:GetBucketLocation before every GetObject."""
    run = run_device(tmp_path / "gg", dev_assembly, "dev", run_lifecycle=False)
    assert ("download artifacts", True) in [(s, ok) for s, ok, _ in run.report.steps], (
        _failed_steps(run)
    )


def test_defect3_publish_is_authorized_on_a_default_nucleus(dev_run: Run) -> None:
    """accessControl resources with {iot:thingName} stay literal when
    interpolateComponentConfiguration is false (KernelConfigResolver, DeviceConfiguration)."""
    assert dev_run.report.denied == [], dev_run.report.denied
    assert any(m["payload"]["input"].startswith("boot1-") for m in dev_run.report.published)


def test_defect5_offline_reboot_runs_the_component(dev_run: Run) -> None:
    """Lifecycle.java runs Install at every launch; the runtime's Install must be skipped
    (Skipif) on a reboot with the network refused, and the component must run again."""
    assert dev_run.report.ok, _failed_steps(dev_run)
    reboot = [(step, ok) for step, ok, _ in dev_run.report.steps if step.startswith("boot 2 ")]
    assert ("boot 2 (reboot, offline): publish", True) in reboot, reboot
    assert any(m["payload"]["input"].startswith("boot2-") for m in dev_run.report.published)
    assert any("network refused" in n for n in dev_run.report.notes), dev_run.report.notes


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_whole_device_installs_runs_reboots_and_publishes(
    stage: str, request: pytest.FixtureRequest, sample_images: Path
) -> None:
    run: Run = request.getfixturevalue(f"{stage}_run")
    assert run.report.ok, _failed_steps(run)
    steps = {step: ok for step, ok, _ in run.report.steps}
    assert steps[f"boot 1: com.example.edgeai.{stage}.DlrRuntime Install"]
    lines = (run.root / "mqtt/published.jsonl").read_text().splitlines()
    messages = [json.loads(line) for line in lines]
    images = sorted(p.name for p in sample_images.iterdir())
    for boot in ("boot1-", "boot2-"):
        inputs = sorted(
            m["payload"]["input"] for m in messages if m["payload"]["input"].startswith(boot)
        )
        assert inputs == [f"{boot}{n}" for n in images]
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


def test_component_environment_is_the_nucleus_one(dev_run: Run) -> None:
    environ = dev_run.root / "work/com.example.edgeai.dev.DlrInference"
    assert environ.is_dir()
    log = (dev_run.root / "logs/com.example.edgeai.dev.DlrInference.log").read_text()
    assert "--- boot 1: Run ---" in log
    recipe_dir = dev_run.root / "packages/recipes"
    assert any(
        p.name.startswith("com.example.edgeai.dev.DlrInference-") for p in recipe_dir.iterdir()
    )


def test_components_run_as_ggc_user_and_own_only_their_files(dev_run: Run) -> None:
    """As root, the simulator runs the components as the installer's ggc_user:ggc_group
    (device_sim/run_with.py); they own what they ran with (RunWithPathOwnershipHandler
    .updateOwner), the model, which runs nothing, stays root's and world-readable."""
    if os.geteuid() != 0:
        pytest.skip("components run as the simulator's user when it is not root")
    ggc = pwd.getpwnam("ggc_user").pw_uid
    steps = {step: detail for step, _, detail in dev_run.report.steps}
    assert steps["component user"].startswith("ggc_user:ggc_group (uid ")
    root = dev_run.root
    inference = root / "work/com.example.edgeai.dev.DlrInference"
    runtime = root / "work/com.example.edgeai.dev.DlrRuntime"
    for work in (inference, runtime):
        assert work.stat().st_uid == ggc and oct(work.stat().st_mode & 0o777) == "0o700"
    assert (runtime / "venv/bin/python").lstat().st_uid == ggc  # built by pip as ggc_user
    assert (inference / "state").stat().st_uid == ggc  # made by the component itself
    model = next((root / "packages/artifacts-unarchived").glob("com.example.edgeai.dev.Model/*"))
    files = [p for p in model.rglob("*") if p.is_file()]
    assert files and all(p.stat().st_uid == 0 for p in files)


def test_the_first_boots_metrics_window_is_published_after_the_reboot(dev_run: Run) -> None:
    """The component writes its window in progress when Greengrass stops it (SIGTERM) and
    publishes it at its next start (issue 15): boot 1's window, counting boot 1's results,
    reaches IoT Core through the recipe's accessControl and the IoT policy (a denied publish
    would be in ``report.denied``, which must stay empty)."""
    from device_contract.messages import Metrics

    assert dev_run.report.denied == [], dev_run.report.denied
    assert dev_run.report.metrics, "no metrics window was published"
    boot1 = [m for m in dev_run.report.published if m["payload"]["input"].startswith("boot1-")]
    first = dev_run.report.metrics[0]
    window = Metrics.from_dict(first["payload"])
    prefix, thing, suffix = first["topic"].split("/")
    assert (prefix, suffix) == ("edge-ai", "metrics") and thing == window.thing
    assert window.processed + sum(c.count for c in window.failed) == len(boot1)
    assert all("metrics" not in m["topic"] for m in dev_run.report.published)


def test_the_run_record_tells_followers_the_stage_prefix_and_that_it_finished(
    dev_run: Run,
) -> None:
    """What ``edge_follow --local`` reads (device_sim/run_record.py): the stage's prefix from
    its PredictionsTopic output, and a finished run, so a late follower replays the log."""
    record = run_record.read_run_record(dev_run.root)
    assert record is not None
    assert record.stage == "dev" and record.topic_prefix == "edge-ai"
    assert record.finished and record.ok is dev_run.report.ok
    assert record.published == len(dev_run.report.published) > 0
