"""The main job's int8 step (``main_job.int8``) on the tiny ONNX model: agreement counted from
the two runs, a model that cannot be quantized reported (not raised, the device's results
stand), the cache reused only for the same inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from main_job import int8 as int8_step
from main_job.int8 import ModelRun, compare_int8, int8_lines
from stand_ins.neo_model import build_tiny_classifier
from tests.component.harness import encode, photo, write_tiny_onnx


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-onnx")
    classifier = build_tiny_classifier(folder / "neo", input_shape=(1, 3, 32, 32), seed=3)
    write_tiny_onnx(classifier, folder / "model.onnx", batch="batch")
    shutil.rmtree(folder / "neo")
    (folder / "labels.json").write_text(json.dumps([f"c{i}" for i in range(10)]))
    metadata = {"model_id": "tiny", "input_shape": [1, 3, 32, 32], "resize_shorter": 36}
    (folder / "metadata.json").write_text(json.dumps(metadata))
    return folder


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for seed in range(3):
        (folder / f"p{seed}.jpg").write_bytes(encode(photo(seed, (64, 48)), "JPEG"))
    return folder


def test_both_models_classify_every_photo(tiny_onnx: Path, photos: Path, tmp_path: Path):
    view = compare_int8(tiny_onnx, photos, tmp_path / "cache", tmp_path / "work")
    assert view.problem is None, view.problem
    fp32, int8 = view.runs
    assert set(fp32.top1) == set(int8.top1) == {"p0.jpg", "p1.jpg", "p2.jpg"}
    assert not (tmp_path / "work").exists()
    metadata = json.loads(next((tmp_path / "cache" / "int8").glob("*/metadata.json")).read_text())
    assert metadata["precision"] == "int8" and metadata["model_id"] == "tiny"
    again = compare_int8(tiny_onnx, photos, tmp_path / "cache", tmp_path / "work")
    assert again.reused and not view.reused


def test_agreement_counts_only_photos_both_models_classified():
    view = int8_step.Int8View(
        runs=[
            ModelRun("FP32", 400, {"a": "cat", "b": "dog", "c": "owl"}, [1.0]),
            ModelRun("int8", 100, {"a": "cat", "b": "fox"}, [2.0], {"c": "boom"}),
        ]
    )
    assert view.agreement == (1, 2)
    lines = "\n".join(int8_lines(view))
    assert "1 of 2 photos (50%)" in lines and "4.0x smaller" in lines
    assert "b: FP32 'dog', int8 'fox'" in lines and "1 failed" in lines


def test_a_model_that_cannot_be_quantized_is_reported_not_raised(
    tiny_onnx: Path, photos: Path, tmp_path: Path
):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_onnx, broken)
    (broken / "model.onnx").write_bytes(b"not an onnx model")
    view = compare_int8(broken, photos, tmp_path / "cache", tmp_path / "work")
    assert view.problem is not None and "int8 quantization failed" in view.problem
    assert int8_lines(view) == [f"not measured: {view.problem}"]
    assert not list((tmp_path / "cache" / "int8").glob("[!.]*"))  # nothing half-built kept


def test_a_component_failure_is_reported_naming_the_model(
    tiny_onnx: Path, photos: Path, tmp_path: Path
):
    """The component refuses labels.json with 3 names for a 10-class model: the step says which
    model's run failed and why, in one line."""
    mislabelled = tmp_path / "mislabelled"
    shutil.copytree(tiny_onnx, mislabelled)
    (mislabelled / "labels.json").write_text(json.dumps(["a", "b", "c"]))
    view = compare_int8(mislabelled, photos, tmp_path / "cache", tmp_path / "work")
    assert view.problem is not None
    assert view.problem.startswith("the inference component on the FP32 model:"), view.problem
    assert "labels.json names 3 classes" in view.problem


def test_a_cache_that_cannot_be_written_is_one_readable_line(
    tiny_onnx: Path, photos: Path, tmp_path: Path
):
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "int8").write_text("a file where the cache folder goes")
    view = compare_int8(tiny_onnx, photos, tmp_path / "cache", tmp_path / "work")
    assert view.problem == f"{tmp_path / 'cache' / 'int8'}: File exists"
