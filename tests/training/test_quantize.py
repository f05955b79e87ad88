"""int8 by ONNX Runtime static quantization (QDQ, per-channel, ``quant_pre_process`` first) and
the accuracy gate (edge_training/quantize.py; the settings follow ONNX Runtime's "Quantize ONNX
Models" guide, https://onnxruntime.ai/docs/performance/model-optimizations/quantization.html).

- ``train.py --quantize int8`` really quantizes a small trained model, calibrated on a few
  training images, and records FP32/int8 top-1, drop and agreement in metadata.json; the test
  recomputes them from the two ONNX files on the held-out images;
- the gate passes a well-calibrated model and fails one whose calibration is broken, naming
  both top-1 numbers; a failed gate ends train.py with exit 2 and keeps what was written;
- wrong int8 inputs are refused before any training;
- the training requirements give every training image's Python one onnxruntime and one onnx.
"""

import json
import logging
import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from onnx import numpy_helper
from packaging.requirements import Requirement

from tests.conftest import TRAINING_SRC


@pytest.fixture(scope="module")
def quantize_module(train_entry_point):
    from edge_training import quantize

    return quantize


def _no_sm_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("SM_"):
            monkeypatch.delenv(name)


def _train_args(small_digits: Path, tmp_path: Path, *extra: str) -> list[str]:
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
        "--val-fraction", "0.25",
        "--export-onnx", "true",
        "--quantize", "int8",
        "--int8-calibration-images", "6",
        *extra,
    ]  # fmt: skip


def _val_tensors(training_modules, small_digits: Path):
    """The held-out images train.py uses (the same split and preprocessing), as tensors."""
    data = training_modules.data
    classes, samples = data.scan_image_folder(str(small_digits), "train")
    _, held_out = data.split_holdout(samples, 0.25, 0)
    transform = data.eval_transform((1, 3, 32, 32), 37)
    tensors = [transform(data.open_rgb(path)).unsqueeze(0).numpy() for path, _ in held_out]
    return tensors, [classes.index(name) for _, name in held_out]


def _top1(path: Path, tensors) -> list[int]:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [int(np.argmax(session.run(None, {"input0": t})[0])) for t in tensors]


def _zero_point_types(model: onnx.ModelProto) -> dict[str, set[int]]:
    """QuantizeLinear zero-point element types, for activations and for weights."""
    initializers = {i.name: i for i in model.graph.initializer}
    found: dict[str, set[int]] = {"activations": set(), "weights": set()}
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and len(node.input) > 2:
            found["activations"].add(initializers[node.input[2]].data_type)
        if node.op_type == "DequantizeLinear" and node.input[0] in initializers:
            found["weights"].add(initializers[node.input[0]].data_type)
    return found


@pytest.mark.parametrize(
    ("int8_format", "activation_type"),
    [("s8s8", onnx.TensorProto.INT8), ("u8s8-reduce-range", onnx.TensorProto.UINT8)],
)
def test_train_py_writes_a_qdq_int8_model_and_its_numbers(
    train_entry_point, training_modules, small_digits, tmp_path, monkeypatch, caplog,
    int8_format, activation_type,
):  # fmt: skip
    _no_sm_env(monkeypatch)
    with caplog.at_level(logging.INFO):
        code = train_entry_point.main(
            _train_args(small_digits, tmp_path, "--int8-format", int8_format)
        )
    assert code == 0, caplog.text
    output = tmp_path / "output"
    fp32_path, int8_path = output / "model.onnx", output / "model.int8.onnx"
    assert "calibrated on 6 training images" in caplog.text

    model = onnx.load(str(int8_path))
    ops = {node.op_type for node in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops  # QDQ format
    types = _zero_point_types(model)
    assert types["activations"] == {activation_type}
    # weights int8; biases, where ONNX Runtime quantizes them, int32 (scale = input scale x
    # weight scale, onnxruntime/quantization/base_quantizer.py quantize_bias_static_impl)
    assert types["weights"] - {onnx.TensorProto.INT32} == {onnx.TensorProto.INT8}
    # Per-channel: a weight's DequantizeLinear carries one scale per output channel.
    initializers = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    weight_scales = [
        initializers[node.input[1]]
        for node in model.graph.node
        if node.op_type == "DequantizeLinear" and initializers.get(node.input[0]) is not None
        and initializers[node.input[0]].ndim == 4
    ]  # fmt: skip
    assert weight_scales and all(scale.size > 1 for scale in weight_scales)
    assert int8_path.stat().st_size < fp32_path.stat().st_size / 2

    record = json.loads((output / "metadata.json").read_text())["int8"]
    tensors, targets = _val_tensors(training_modules, small_digits)
    fp32, int8 = _top1(fp32_path, tensors), _top1(int8_path, tensors)
    count = len(targets)
    assert record["validation_images"] == count == 6
    assert record["fp32_top1"] == pytest.approx(100 * np.mean(np.equal(fp32, targets)), abs=1e-3)
    assert record["int8_top1"] == pytest.approx(100 * np.mean(np.equal(int8, targets)), abs=1e-3)
    assert record["top1_agreement"] == pytest.approx(100 * np.mean(np.equal(fp32, int8)), abs=1e-3)
    assert record["top1_drop"] == pytest.approx(record["fp32_top1"] - record["int8_top1"])
    assert record["calibration_images"] == 6
    assert record["reduce_range"] is (int8_format == "u8s8-reduce-range")
    assert record["per_channel"] is True and record["quant_format"] == "QDQ"
    assert record["size_bytes"] == int8_path.stat().st_size
    assert record["passed"] is True


class ChannelMeans(torch.nn.Module):
    """Top-1 = the brightest channel: a model whose FP32 top-1 on ``_channel_images`` is 100%."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 1)
        self.head = torch.nn.Linear(3, 3)
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(3).reshape(3, 3, 1, 1))
            self.conv.bias.zero_()
            self.head.weight.copy_(torch.eye(3))
            self.head.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x)).mean(dim=(2, 3)))


def _channel_images(count: int, seed: int) -> tuple[list[np.ndarray], list[int]]:
    rng = np.random.default_rng(seed)
    tensors, targets = [], []
    for index in range(count):
        target = index % 3
        image = rng.uniform(0.0, 0.3, size=(1, 3, 8, 8)).astype(np.float32)
        image[0, target] += 0.6
        tensors.append(image)
        targets.append(target)
    return tensors, targets


@pytest.fixture(scope="module")
def channel_model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("channel") / "model.onnx"
    torch.onnx.export(
        ChannelMeans().eval(), (torch.zeros(1, 3, 8, 8),), str(path),
        input_names=["input0"], output_names=["output0"], opset_version=13, dynamo=False,
    )  # fmt: skip
    return path


def test_the_gate_passes_a_well_calibrated_model(quantize_module, channel_model, tmp_path):
    calibration, _ = _channel_images(12, seed=1)
    int8_path = tmp_path / "model.int8.onnx"
    settings = quantize_module.settings_for("s8s8")
    quantize_module.quantize_model(str(channel_model), str(int8_path), calibration, settings)
    tensors, targets = _channel_images(30, seed=2)
    report = quantize_module.compare(str(channel_model), str(int8_path), tensors, targets)
    assert report.fp32_top1 == 100.0
    assert report.top1_drop <= 1.0
    quantize_module.enforce(report, 1.0)  # does not raise


def test_the_gate_fails_a_broken_calibration_naming_both_numbers(
    quantize_module, channel_model, tmp_path
):
    """Calibrated on images 1000x too dark, every activation saturates: int8 cannot tell the
    channels apart and its top-1 collapses."""
    calibration, _ = _channel_images(12, seed=1)
    broken = [tensor * 1e-3 for tensor in calibration]
    int8_path = tmp_path / "model.int8.onnx"
    settings = quantize_module.settings_for("s8s8")
    quantize_module.quantize_model(str(channel_model), str(int8_path), broken, settings)
    tensors, targets = _channel_images(30, seed=2)
    report = quantize_module.compare(str(channel_model), str(int8_path), tensors, targets)
    assert report.fp32_top1 == 100.0
    assert report.top1_drop > 1.0
    with pytest.raises(quantize_module.Int8GateError) as failure:
        quantize_module.enforce(report, 1.0)
    message = str(failure.value)
    assert f"int8 top-1 {report.int8_top1:.2f}%" in message
    assert "FP32 top-1 100.00%" in message
    assert "max_int8_top1_drop is 1" in message


def test_a_failed_gate_ends_train_py_with_both_numbers_and_keeps_its_outputs(
    train_entry_point, quantize_module, small_digits, tmp_path, monkeypatch, caplog
):
    """The drop is forced (a stand-in ``compare``): what is under test is the wiring, exit 2,
    the log line, metadata.json and the FP32 files left in place."""
    _no_sm_env(monkeypatch)
    forced = quantize_module.Int8Report(
        fp32_top1=90.0, int8_top1=80.0, top1_drop=10.0, top1_agreement=85.0, validation_images=6
    )
    monkeypatch.setattr(quantize_module, "compare", lambda *args, **kwargs: forced)
    code = train_entry_point.main(
        _train_args(small_digits, tmp_path, "--max-int8-top1-drop", "2.5")
    )
    assert code == 2
    assert (
        "int8 accuracy gate failed: int8 top-1 80.00% vs FP32 top-1 90.00% on 6 validation "
        "images: a drop of 10.00 points (agreement 85.00%), max_int8_top1_drop is 2.5"
    ) in caplog.text
    record = json.loads((tmp_path / "output" / "metadata.json").read_text())["int8"]
    assert record["passed"] is False and record["max_top1_drop"] == 2.5
    assert (tmp_path / "model" / "model.pth").is_file()
    assert (tmp_path / "output" / "model.onnx").is_file()


@pytest.mark.parametrize(
    ("drop", "extra", "message"),
    [
        ("--val-fraction", "0", "needs a validation channel or --val-fraction > 0"),
        ("--export-onnx", "false", "--quantize int8 needs --export-onnx true"),
        ("--max-int8-top1-drop", "-1", "--max-int8-top1-drop must be 0-100 points"),
        ("--int8-calibration-images", "0", "--int8-calibration-images must be >= 1"),
        ("--quantize", "int4", "invalid choice: 'int4'"),
        ("--int8-format", "u8u8", "invalid choice: 'u8u8'"),
    ],
)
def test_wrong_int8_inputs_are_refused_before_training(
    train_entry_point, small_digits, tmp_path, monkeypatch, caplog, drop, extra, message
):
    _no_sm_env(monkeypatch)
    args = _train_args(small_digits, tmp_path)
    if drop in args:
        args[args.index(drop) + 1] = extra
    else:
        args += [drop, extra]
    assert train_entry_point.main(args) == 2
    assert message in caplog.text
    assert "epoch=" not in caplog.text
    assert not (tmp_path / "model").exists()


def test_without_a_train_channel_int8_is_refused(train_entry_point, tmp_path, monkeypatch, caplog):
    _no_sm_env(monkeypatch)
    args = ["--model-dir", str(tmp_path / "model"), "--output-data-dir", str(tmp_path / "out"),
            "--export-onnx", "true", "--quantize", "int8"]  # fmt: skip
    assert train_entry_point.main(args) == 2
    assert "it needs a train channel" in caplog.text


# The Pythons of the SageMaker PyTorch training images the pipeline uses
# (edge_constructs/training_job/images.py TAGS: py36, py38, py39, py310) and this venv's.
IMAGE_PYTHONS = ("3.6", "3.8", "3.9", "3.10", "3.11")


@pytest.mark.parametrize("python", IMAGE_PYTHONS)
def test_training_requirements_give_each_image_python_one_onnxruntime(python):
    """SageMaker's training toolkit pip-installs ``requirements.txt`` from the source dir before
    running the script (sagemaker-training-toolkit ``entry_point.py`` ``install``:
    ``modules.has_requirements`` / ``install_requirements``). pip evaluates the markers."""
    lines = (TRAINING_SRC / "requirements.txt").read_text().splitlines()
    requirements = [Requirement(line) for line in lines if line.strip() and line[0] != "#"]
    env = {"python_version": python, "python_full_version": python + ".0"}
    chosen = {
        r.name: str(r.specifier) for r in requirements if r.marker is None or r.marker.evaluate(env)
    }
    applying = [r.name for r in requirements if r.marker is None or r.marker.evaluate(env)]
    assert sorted(applying) == ["onnx", "onnxruntime"], (python, applying)
    assert all(spec.startswith("==") for spec in chosen.values()), chosen


def test_the_dev_venv_runs_the_pins_its_python_gets():
    lines = (TRAINING_SRC / "requirements.txt").read_text().splitlines()
    pins = {
        r.name: str(r.specifier)[2:]
        for r in (Requirement(line) for line in lines if line.strip() and line[0] != "#")
        if r.marker is None or r.marker.evaluate()
    }
    assert pins == {"onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__}


def test_the_gate_streams_its_validation_images(quantize_module, channel_model, tmp_path):
    """The second review: every validation tensor was held in memory at once (about 0.5 MB per
    224x224 image: 50,000 images would not fit a training instance). ``compare`` takes them
    one at a time from any iterable, and gives what it gives for a list."""
    calibration, _ = _channel_images(12, seed=1)
    int8_path = tmp_path / "model.int8.onnx"
    settings = quantize_module.settings_for("s8s8")
    quantize_module.quantize_model(str(channel_model), str(int8_path), calibration, settings)
    tensors, targets = _channel_images(30, seed=2)
    listed = quantize_module.compare(str(channel_model), str(int8_path), tensors, targets)
    alive = []

    def one_at_a_time():
        for tensor in tensors:
            alive.append(tensor)
            yield tensor
            alive.pop()  # the consumer asks for the next only when done with this one

    streamed = quantize_module.compare(str(channel_model), str(int8_path), one_at_a_time(), targets)
    assert streamed == listed and streamed.validation_images == 30
    with pytest.raises(quantize_module.TrainingInputError, match="needs validation images"):
        quantize_module.compare(str(channel_model), str(int8_path), iter(()), [])
