"""An int8 device class on the simulated device (issue 16): the training stand-in quantizes the
real ONNX model with the training job's own code (ONNX Runtime static QDQ), the stage's
packaging packages ``model.int8.onnx`` after checking its gate record, and the inference
component runs the int8 model on the device and publishes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.conftest import PretrainedExport
from tests.infra.conftest import synthesize
from tests.sim.conftest import Run, reachable_dir, run_device

INT8_GROUP = "EdgeAiDevInt8"
NS = "com.example.edgeai.dev"


@pytest.fixture(scope="module")
def int8_run(
    tmp_path_factory: pytest.TempPathFactory,
    reachable_base: Path,
    wheelhouse: Path | None,
    sample_images: Path,
    pretrained_export: PretrainedExport,
) -> Run:
    assembly = synthesize(
        tmp_path_factory.mktemp("sim-int8"),
        training_data_uri="s3://my-data/train/",
        hyperparameters={"val-fraction": "0.2"},
        device_classes={
            "small": {"thing_group": INT8_GROUP, "build": "onnx", "quantize": "int8"},
        },
    ).assembly_dir
    return run_device(
        reachable_dir(reachable_base, "int8") / "gg",
        assembly,
        "dev",
        thing_group=INT8_GROUP,
        reboot=False,
        wait_seconds=90,
        wheelhouse=wheelhouse,
        images=sample_images,
        onnx_model=pretrained_export.onnx_dir,
    )


def test_the_device_runs_the_gated_int8_model(int8_run: Run) -> None:
    assert int8_run.report.ok, int8_run.report.steps
    assert int8_run.report.published
    (package,) = (int8_run.root / "packages/artifacts-unarchived").glob(f"{NS}.small.Model/*/*")
    metadata = json.loads((package / "metadata.json").read_text())
    record = metadata["int8"]
    model = (package / "model" / "model.onnx").read_bytes()
    assert hashlib.sha256(model).hexdigest() == record["sha256"]  # the int8 file, renamed
    assert b"QuantizeLinear" in model and record["size_bytes"] < record["fp32_size_bytes"] / 2
    assert metadata["precision"] == "int8" and record["stand_in"]
    notes = "\n".join(int8_run.report.notes)
    assert "quantized model.onnx to int8 with the training code" in notes
