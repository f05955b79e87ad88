"""The drift baseline train.py writes into metadata.json (training_src/edge_training/baseline.py):
on a real small training run, its counts are what the exported model answers on the held-out
images, bucketed exactly as the device buckets them (device_contract.messages)."""

import json
import logging
import os
from collections import Counter
from pathlib import Path

import numpy as np
import onnxruntime

from device_contract import messages


def _no_sm_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("SM_"):
            monkeypatch.delenv(name)


def _args(small_digits: Path, tmp_path: Path, *extra: str) -> list[str]:
    return [
        "--train", str(small_digits),
        "--model-dir", str(tmp_path / "model"),
        "--output-data-dir", str(tmp_path / "output"),
        "--checkpoint-dir", str(tmp_path / "checkpoints"),
        "--arch", "squeezenet1_1",
        "--input-shape", "1,3,32,32",
        "--pretrained", "false",
        "--epochs", "1",
        "--batch-size", "8",
        "--export-onnx", "true",
        *extra,
    ]  # fmt: skip


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max())
    return shifted / shifted.sum()


def test_the_baseline_is_the_exported_models_answers_on_the_held_out_images(
    train_entry_point, training_modules, small_digits, tmp_path, monkeypatch, caplog
):
    _no_sm_env(monkeypatch)
    with caplog.at_level(logging.INFO):
        code = train_entry_point.main(_args(small_digits, tmp_path, "--val-fraction", "0.25"))
    assert code == 0, caplog.text
    output = tmp_path / "output"
    record = json.loads((output / "metadata.json").read_text())["baseline"]

    # What the device would compute: model.onnx on the held-out images, top-1 of the softmax,
    # bucketed by device_contract's own function.
    data = training_modules.data
    classes, samples = data.scan_image_folder(str(small_digits), "train")
    _, held_out = data.split_holdout(samples, 0.25, 0)
    transform = data.eval_transform((1, 3, 32, 32), 37)
    session = onnxruntime.InferenceSession(
        str(output / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    buckets: Counter[str] = Counter()
    predicted: Counter[str] = Counter()
    for path, _ in held_out:
        tensor = transform(data.open_rgb(path)).unsqueeze(0).numpy()
        scores = _softmax(session.run(None, {"input0": tensor})[0][0])
        buckets[messages.confidence_bucket(float(scores.max()))] += 1
        predicted[classes[int(scores.argmax())]] += 1

    assert record["images"] == len(held_out) == 6
    assert list(record["confidence"]) == list(messages.confidence_buckets())
    assert record["confidence"] == {name: buckets[name] for name in messages.confidence_buckets()}
    assert record["classes"] == dict(predicted)
    assert sum(record["classes"].values()) == record["images"]
    assert record["confidence_edges"] == list(messages.CONFIDENCE_EDGES)


def test_without_validation_images_no_baseline_is_written(
    train_entry_point, small_digits, tmp_path, monkeypatch, caplog
):
    _no_sm_env(monkeypatch)
    with caplog.at_level(logging.INFO):
        code = train_entry_point.main(_args(small_digits, tmp_path))
    assert code == 0, caplog.text
    assert "baseline" not in json.loads((tmp_path / "output" / "metadata.json").read_text())
    assert "no drift baseline" in caplog.text


def test_training_buckets_are_the_devices(train_entry_point):
    """training_src cannot import device_contract in the SageMaker container: its copy of the
    bucket edges must equal the device's, or the fleet's counts and the baseline's differ."""
    from edge_training import baseline

    assert tuple(baseline.CONFIDENCE_EDGES) == messages.CONFIDENCE_EDGES
    assert baseline.bucket_names() == list(messages.confidence_buckets())
    for score in (0.0, 0.49, 0.5, 0.69, 0.7, 0.89, 0.9, 1.0):
        name = baseline.bucket_names()[baseline.bucket_of(score)]
        assert name == messages.confidence_bucket(score)
