"""``device_sim --brought-model``: the user's own archive at the stage's ``model_artifact_uri``
instead of a stand-in (issue 18, block 1: "every step says ok, but the simulator writes its own
stand-in at that URI and the device predicts class-0..class-9 with random weights").

Resolve-only runs (deploy, provision, resolve, download): what the device downloads is what the
stage's own packaging handler built from the archive the simulated account holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from device_sim.__main__ import main
from device_sim.brought import BroughtModel, read_brought_model
from tests.own_model import LABELS, labels_json, tar_gz, traced_resnet18
from tests.sim.conftest import Run, run_device


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("own")
    pth = traced_resnet18(folder / "src" / "model.pth")
    return tar_gz(folder / "model.tar.gz", {"model.pth": pth, "labels.json": labels_json()})


@pytest.fixture(scope="module")
def brought(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> BroughtModel:
    return read_brought_model(archive, tmp_path_factory.mktemp("read"), (1, 3, 224, 224))


def _resolve(tmp_path: Path, assembly: Path, **options: object) -> Run:
    """The variant.DLR stage (a brought model, a jetson_nano Neo class: aarch64) deployed,
    provisioned, resolved and downloaded; no lifecycle."""
    return run_device(
        tmp_path / "gg", assembly, "dev", platform="linux/aarch64", run_lifecycle=False, **options
    )


def _downloaded_labels(root: Path) -> list[str]:
    found = sorted(root.glob("packages/artifacts-unarchived/*Model/*/*/labels.json"))
    assert len(found) == 1, found
    raw = json.loads(found[0].read_text())
    return list(raw) if isinstance(raw, list) else [raw[str(i)] for i in range(len(raw))]


def test_the_users_archive_is_what_the_stage_packages(
    tmp_path: Path, variant_dlr_assembly: Path, brought: BroughtModel, archive: Path
) -> None:
    run = _resolve(tmp_path, variant_dlr_assembly, brought_model=brought)
    assert run.report.ok, run.report.steps
    assert _downloaded_labels(tmp_path / "gg") == LABELS
    notes = "\n".join(run.report.notes)
    assert "s3://my-models/vgg16/model.tar.gz: holds your archive (--brought-model)" in notes
    assert "STAND-IN" not in notes
    # a neo class cannot run the user's model here, and says so
    assert "run a stand-in compiled model with your 4 labels" in notes


def test_without_it_the_stand_in_is_said_plainly(
    tmp_path: Path, variant_dlr_assembly: Path
) -> None:
    run = _resolve(tmp_path, variant_dlr_assembly)
    assert run.report.ok, run.report.steps
    assert _downloaded_labels(tmp_path / "gg")[0] == "class-0"
    notes = "\n".join(run.report.notes)
    assert "holds a STAND-IN" in notes and "give --brought-model model.tar.gz" in notes


def test_a_stage_that_trains_its_own_model_refuses_a_brought_one(
    tmp_path: Path, dev_assembly: Path, brought: BroughtModel
) -> None:
    run = run_device(tmp_path / "gg", dev_assembly, "dev", brought_model=brought)
    assert run.report.failure is not None
    assert run.report.failure.step == "deploy stacks"
    assert "trains its own model (no model_artifact_uri)" in run.report.failure.reason


def test_the_command_checks_the_archive_first(
    tmp_path: Path,
    variant_dlr_assembly: Path,
    archive: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wrong = tar_gz(
        tmp_path / "wrong.tar.gz",
        {"model.pth": archive.parent / "src" / "model.pth", "labels.json": labels_json(["a"])},
    )
    argv = ["--assembly", str(variant_dlr_assembly), "--root", str(tmp_path / "gg")]
    argv += ["--platform", "linux/aarch64"]
    assert main([*argv, "--brought-model", str(wrong), "--resolve-only"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "labels.json names 1 class and the model scores 4" in err[0]
    both = ["--brought-model", str(archive), "--onnx-model", str(tmp_path)]
    assert main([*argv, *both]) == 2
    assert "give one" in capsys.readouterr().err


def test_neo_refuses_an_archive_without_a_pytorch_model(
    tmp_path: Path, variant_dlr_assembly: Path
) -> None:
    """An ONNX-only archive on a stage with a neo class: the compilation job fails, as Neo's
    would (the review found every step "ok" and predictions published)."""
    import torch

    folder = tmp_path / "onnxonly"
    folder.mkdir()
    model = torch.nn.Sequential(
        torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(12, 3)
    )
    torch.onnx.export(
        model.eval(),
        (torch.zeros(1, 3, 224, 224),),
        str(folder / "model.onnx"),
        input_names=["input0"],
        opset_version=17,
        dynamo=False,
    )
    brought = read_brought_model(folder, tmp_path / "read", (1, 3, 224, 224))
    run = _resolve(tmp_path, variant_dlr_assembly, brought_model=brought)
    assert run.report.failure is not None and run.report.failure.step == "deploy stacks"
    assert "holds no .pth or .pt model at its root (files: model.onnx)" in run.report.failure.reason
