"""Cold start (issue 16): the first load of an ONNX model writes ONNX Runtime's optimized
graph into the component's state folder; the next load (a restart, the next boot) opens it
with graph optimizations off. The outputs are the model's either way; a damaged cache file is
replaced, never trusted; the cache keeps at most a few models."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from edge_inference.model import OPTIMIZED_KEEP, OnnxRunner, optimized_model_path


@pytest.fixture(scope="module")
def resnet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real CNN (ResNet-18, random weights), where ORT_ENABLE_ALL fuses Conv+BN+ReLU."""
    import torch
    import torchvision

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("resnet") / "model.onnx"
    torch.onnx.export(
        torchvision.models.resnet18(num_classes=5).eval(),
        (torch.zeros(1, 3, 64, 64),),
        str(path),
        input_names=["input0"],
        output_names=["output0"],
        opset_version=17,
        dynamo=False,
    )
    return path


def _probe() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)


def test_the_second_load_uses_the_optimized_model_and_computes_the_same(
    tmp_path: Path, resnet: Path
) -> None:
    import onnxruntime as ort

    cache = tmp_path / "optimized-models"
    first = OnnxRunner(resnet, "input0", cache_dir=cache)
    cached = optimized_model_path(cache, resnet, ort.__version__)
    assert first.startup == "optimized" and cached.is_file()
    assert not list(cache.glob(".*partial"))  # renamed into place
    second = OnnxRunner(resnet, "input0", cache_dir=cache)
    assert second.startup == "cached"
    plain = OnnxRunner(resnet, "input0")
    assert plain.startup == "uncached"
    np.testing.assert_allclose(second.run(_probe()), plain.run(_probe()), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(first.run(_probe()), plain.run(_probe()), rtol=1e-4, atol=1e-5)


def test_a_damaged_cache_file_is_replaced(tmp_path: Path, resnet: Path) -> None:
    import onnxruntime as ort

    cache = tmp_path / "optimized-models"
    OnnxRunner(resnet, "input0", cache_dir=cache)
    cached = optimized_model_path(cache, resnet, ort.__version__)
    cached.write_bytes(cached.read_bytes()[:1000])  # a power cut mid-copy, a bad disk
    runner = OnnxRunner(resnet, "input0", cache_dir=cache)
    assert runner.startup == "optimized"
    assert OnnxRunner(resnet, "input0", cache_dir=cache).startup == "cached"


def test_another_model_gets_its_own_entry_and_the_cache_is_bounded(
    tmp_path: Path, resnet: Path
) -> None:
    cache = tmp_path / "optimized-models"
    models = []
    for index in range(OPTIMIZED_KEEP + 2):
        copy = tmp_path / f"m{index}" / "model.onnx"
        copy.parent.mkdir()
        # the same graph with a different doc string: another model's bytes
        data = resnet.read_bytes() + b""
        import onnx

        model = onnx.load_from_string(data)
        model.doc_string = f"model {index}"
        onnx.save(model, str(copy))
        models.append(copy)
        OnnxRunner(copy, "input0", cache_dir=cache)
    kept = list(cache.glob("*.onnx"))
    assert len(kept) == OPTIMIZED_KEEP
    # the newest models are the ones kept: the last one loads from the cache
    assert OnnxRunner(models[-1], "input0", cache_dir=cache).startup == "cached"
    assert OnnxRunner(models[0], "input0", cache_dir=cache).startup == "optimized"


def test_an_unwritable_cache_folder_only_costs_the_cache(tmp_path: Path, resnet: Path) -> None:
    """A cache path that cannot be a folder (a file is there; the same path as a full or
    read-only disk: mkdir fails) loads the model uncached."""
    cache = tmp_path / "optimized-models"
    cache.write_text("not a folder")
    runner = OnnxRunner(resnet, "input0", cache_dir=cache)
    assert runner.startup == "uncached" and runner.run(_probe()).shape == (1, 5)


def test_a_cache_file_damaged_in_place_is_not_used(tmp_path: Path, resnet: Path) -> None:
    """The hostile review: bytes zeroed in the middle of the cached graph still parsed and
    changed the scores, silently, on every start. The sidecar digest catches it."""
    import onnxruntime as ort

    cache = tmp_path / "optimized-models"
    OnnxRunner(resnet, "input0", cache_dir=cache)
    cached = optimized_model_path(cache, resnet, ort.__version__)
    data = bytearray(cached.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = bytes(4096)
    cached.write_bytes(bytes(data))
    runner = OnnxRunner(resnet, "input0", cache_dir=cache)
    assert runner.startup == "optimized"
    plain = OnnxRunner(resnet, "input0")
    np.testing.assert_allclose(runner.run(_probe()), plain.run(_probe()), rtol=1e-4, atol=1e-5)


def test_a_cache_that_cannot_be_written_leaves_the_model_running(
    tmp_path: Path, resnet: Path
) -> None:
    """The review: on a full disk ONNX Runtime's write of the optimized graph failed the whole
    load (INVALID_PROTOBUF), and each restart left another partial file. Here the partial
    file's path is taken by a folder, so the write fails as on a full disk."""
    import onnxruntime as ort

    cache = tmp_path / "optimized-models"
    cached = optimized_model_path(cache, resnet, ort.__version__)
    cache.mkdir()
    (cache / f".{cached.stem}.{os.getpid()}.partial").mkdir()
    runner = OnnxRunner(resnet, "input0", cache_dir=cache)
    assert runner.startup == "uncached" and runner.run(_probe()).shape == (1, 5)
    (cache / f".{cached.stem}.{os.getpid()}.partial").rmdir()
    (cache / ".crashed.123.partial").write_bytes(b"left by a crash")
    assert OnnxRunner(resnet, "input0", cache_dir=cache).startup == "optimized"
    assert not list(cache.glob(".*.partial"))
