"""What one real training run (the ``trained_digits_model`` fixture) leaves behind."""

import hashlib
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import TRAINING_SRC, TrainedDigitsModel

pytestmark = pytest.mark.slow

EPOCH_LINE = re.compile(r"epoch=(\d+)((?: \w+=\S+)+)")
METRIC_FIELDS = {
    "train:loss": "train_loss",
    "train:accuracy": "train_acc",
    "validation:loss": "val_loss",
    "validation:accuracy": "val_acc",
}


def contract_preprocess(path: Path, metadata: dict) -> np.ndarray:
    """docs/CONTRACTS.md preprocessing with PIL + numpy only, as the device component does it.

    The crop offset is torchvision's: ``int(round((size - crop) / 2))``.
    """
    _, _, height, width = metadata["input_shape"]
    shorter = metadata["resize_shorter"]
    image = Image.open(path).convert("RGB")
    old_w, old_h = image.size
    if old_w <= old_h:
        new_w, new_h = shorter, int(shorter * old_h / old_w)
    else:
        new_w, new_h = int(shorter * old_w / old_h), shorter
    image = image.resize((new_w, new_h), Image.BILINEAR)
    top, left = round((new_h - height) / 2.0), round((new_w - width) / 2.0)
    pixels = np.asarray(image, dtype=np.float32)[top : top + height, left : left + width]
    pixels = pixels * np.float32(metadata["scale"])
    pixels = (pixels - np.float32(metadata["mean"])) / np.float32(metadata["std"])
    return pixels.transpose(2, 0, 1)[None].astype(np.float32)


def heldout_images(root: Path) -> list[tuple[Path, str]]:
    folders = sorted(root.iterdir())
    return [(image, folder.name) for folder in folders for image in sorted(folder.iterdir())]


@pytest.fixture(scope="module")
def metadata(trained_digits_model: TrainedDigitsModel) -> dict:
    return json.loads((trained_digits_model.onnx_dir / "metadata.json").read_text())


@pytest.fixture(scope="module")
def labels(trained_digits_model: TrainedDigitsModel) -> dict:
    return json.loads((trained_digits_model.model_dir / "labels.json").read_text())


@pytest.fixture(scope="module")
def traced(trained_digits_model: TrainedDigitsModel) -> torch.jit.ScriptModule:
    return torch.jit.load(str(trained_digits_model.model_dir / "model.pth"), map_location="cpu")


@pytest.fixture(scope="module")
def heldout(trained_digits_model, metadata, traced):
    """(inputs, true class names, traced-model logits) for every held-out image."""
    images = heldout_images(trained_digits_model.heldout_dir)
    inputs = [contract_preprocess(path, metadata) for path, _ in images]
    with torch.no_grad():
        logits = np.concatenate([traced(torch.from_numpy(x)).numpy() for x in inputs])
    return inputs, [name for _, name in images], logits


def test_traced_model_classifies_heldout_digits(heldout, labels):
    _, truth, logits = heldout
    predicted = [labels[str(index)] for index in logits.argmax(axis=1)]
    accuracy = float(np.mean([p == t for p, t in zip(predicted, truth, strict=True)]))
    print(f"held-out accuracy of model.pth: {accuracy:.4f} on {len(truth)} images")
    assert len(truth) >= 300
    assert accuracy > 0.85  # chance is 0.1; measured about 0.93


def test_model_dir_holds_exactly_model_and_labels(trained_digits_model):
    assert sorted(p.name for p in trained_digits_model.model_dir.iterdir()) == [
        "labels.json",
        "model.pth",
    ]


def test_model_pth_is_traced_float32_torchscript(trained_digits_model, traced):
    with zipfile.ZipFile(trained_digits_model.model_dir / "model.pth") as archive:
        names = archive.namelist()
    # TorchScript archives carry the model's code; torch.save of an eager module does not.
    assert any("/code/" in name for name in names)
    assert isinstance(traced, torch.jit.ScriptModule)
    assert not traced.training
    tensors = list(traced.parameters()) + list(traced.buffers())
    assert tensors
    assert {t.dtype for t in tensors if t.is_floating_point()} == {torch.float32}
    assert {t.device.type for t in tensors} == {"cpu"}
    with torch.no_grad():
        output = traced(torch.rand(*trained_digits_model.input_shape))
    assert tuple(output.shape) == (1, len(trained_digits_model.classes))
    assert output.dtype == torch.float32


def test_training_verified_the_traced_and_onnx_models_against_eager(trained_digits_model):
    assert "traced model.pth matches the eager model" in trained_digits_model.log
    assert "model.onnx matches the eager model" in trained_digits_model.log


def test_labels_map_index_to_class_folder(labels, trained_digits_model):
    assert labels == {str(i): name for i, name in enumerate(trained_digits_model.classes)}
    onnx_labels = json.loads((trained_digits_model.onnx_dir / "labels.json").read_text())
    assert onnx_labels == labels


def test_eval_preprocessing_is_the_contract(training_modules, trained_digits_model, metadata):
    """The training-time eval transform equals the PIL + numpy recipe in docs/CONTRACTS.md."""
    transform = training_modules.data.eval_transform(
        metadata["input_shape"], metadata["resize_shorter"]
    )
    for path, _ in heldout_images(trained_digits_model.heldout_dir)[::40]:
        expected = transform(Image.open(path).convert("RGB")).numpy()[None]
        np.testing.assert_allclose(contract_preprocess(path, metadata), expected, atol=1e-5)


def test_metric_definitions_parse_the_real_log(trained_digits_model):
    definitions = json.loads((TRAINING_SRC / "metric_definitions.json").read_text())
    assert sorted(d["Name"] for d in definitions) == sorted(METRIC_FIELDS)
    epochs = [
        dict(field.split("=") for field in fields.split())
        for _, fields in EPOCH_LINE.findall(trained_digits_model.log)
    ]
    assert len(epochs) == trained_digits_model.epochs
    for definition in definitions:
        captured = [float(v) for v in re.findall(definition["Regex"], trained_digits_model.log)]
        expected = [float(epoch[METRIC_FIELDS[definition["Name"]]]) for epoch in epochs]
        assert captured == expected, definition["Name"]
    final = epochs[-1]
    assert float(final["train_loss"]) < float(epochs[0]["train_loss"])
    assert 0.0 <= float(final["val_acc"]) <= 1.0


def test_onnx_dir_is_a_component_model_dir(trained_digits_model, metadata):
    onnx_dir = trained_digits_model.onnx_dir
    assert sorted(p.name for p in onnx_dir.iterdir()) == [
        "labels.json",
        "metadata.json",
        "model.onnx",
    ]
    model_sha = hashlib.sha256((trained_digits_model.model_dir / "model.pth").read_bytes())
    assert metadata["model_id"] == f"{trained_digits_model.arch}-{model_sha.hexdigest()[:12]}"
    assert metadata["input_shape"] == list(trained_digits_model.input_shape)
    assert metadata["resize_shorter"] == round(32 * 256 / 224) == 37
    assert metadata["input_name"] == "input0"
    assert metadata["mean"] == [0.485, 0.456, 0.406]
    assert metadata["std"] == [0.229, 0.224, 0.225]
    assert metadata["scale"] == pytest.approx(1 / 255)
    assert (metadata["layout"], metadata["channel_order"]) == ("NCHW", "RGB")


def test_onnx_model_matches_traced_model_on_heldout(trained_digits_model, heldout):
    onnxruntime = pytest.importorskip("onnxruntime")
    session = onnxruntime.InferenceSession(
        str(trained_digits_model.onnx_dir / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    (model_input,) = session.get_inputs()
    assert model_input.name == "input0"
    # a named batch axis (the component batches a backlog on it); ONNX Runtime reports a named
    # dimension as its name
    assert model_input.shape == ["batch", *trained_digits_model.input_shape[1:]]
    inputs, _, traced_logits = heldout
    onnx_logits = np.concatenate([session.run(None, {"input0": x})[0] for x in inputs])
    np.testing.assert_allclose(onnx_logits, traced_logits, rtol=1e-4, atol=1e-4)
    assert (onnx_logits.argmax(axis=1) == traced_logits.argmax(axis=1)).all()
    (batched,) = session.run(None, {"input0": np.concatenate(inputs[:16])})
    np.testing.assert_allclose(batched, onnx_logits[:16], rtol=1e-4, atol=1e-4)
