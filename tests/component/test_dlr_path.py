"""The DLR path under the real ``libdlr.so`` (dlr 1.6.0) on the tiny Neo-layout model.

Predictions must equal the model's numpy reference: exactly (up to float rounding) for ``.npy``
inputs; for images, on a tensor made by an independent implementation of the documented
preprocessing (torchvision's ``Resize``/``CenterCrop``/``ToTensor``/``Normalize`` on PIL). The
component resizes only the crop window, which moves a few pixels by one grey level, and decodes
large JPEGs at reduced size (``Image.draft``); the tolerances below allow exactly that, on a
model whose sharp softmax turns one grey level into about 1e-3 of score.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from torchvision import transforms

from tests.component.harness import (
    NUM_CLASSES,
    Folders,
    TinyPackage,
    photo,
    random_tensor,
    run_once,
)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def torchvision_reference(path: Path, size: int = 32) -> np.ndarray:
    """CONTRACTS.md preprocessing, written independently of the component."""
    pipeline = transforms.Compose(
        [
            transforms.Resize(round(size * 256 / 224)),
            transforms.CenterCrop(size),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
    with Image.open(path) as image:
        return pipeline(image.convert("RGB")).numpy()[None].astype(np.float32)


def test_npy_predictions_equal_the_numpy_reference(folders: Folders, tiny_package: TinyPackage):
    tensors = {f"t{i}.npy": random_tensor(i) for i in range(5)}
    tensors["unbatched.npy"] = random_tensor(99)[0]  # (3, H, W) is accepted too
    for name, tensor in tensors.items():
        np.save(folders.input / name, tensor)

    messages = run_once(folders, tiny_package.model_dir, top_k=NUM_CLASSES)

    assert sorted(m["input"] for m in messages) == sorted(tensors)
    for message in messages:
        x = tensors[message["input"]].reshape(1, 3, 32, 32)
        expected = tiny_package.classifier.predict(x)[0]
        assert message["runtime"] == "dlr"
        assert message["model"] == "tiny-neo-1"
        assert message["latency_ms"] > 0
        top = message["top"]
        assert [t["index"] for t in top] == list(np.argsort(-expected, kind="stable"))
        for entry in top:
            assert entry["label"] == tiny_package.labels[entry["index"]]
            assert entry["score"] == pytest.approx(float(expected[entry["index"]]), abs=1e-5)
    assert folders.names(folders.processed) == sorted(tensors)
    assert folders.names(folders.input) == []


def test_top_k_limits_the_classes_reported(folders: Folders, tiny_package: TinyPackage):
    np.save(folders.input / "x.npy", random_tensor(3))
    (message,) = run_once(folders, tiny_package.model_dir, top_k=3)
    assert len(message["top"]) == 3
    scores = [t["score"] for t in message["top"]]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize(
    ("name", "fmt", "size", "atol"),
    [
        ("small.png", "PNG", (96, 72), 5e-3),
        ("grey.png", "PNG", (50, 64), 5e-3),  # portrait, converted from L mode below
        ("small.jpg", "JPEG", (96, 72), 5e-3),  # too small for draft: plain decode
        # 640x480 needs only 49x37: decoded at 1/8 scale by libjpeg (draft), then resized.
        ("large.jpg", "JPEG", (640, 480), 0.03),
    ],
)
def test_image_predictions_equal_the_reference_on_independently_preprocessed_pixels(
    folders: Folders, tiny_package: TinyPackage, name: str, fmt: str, size, atol: float
):
    image = photo(seed=len(name), size=size)
    if name.startswith("grey"):
        image = image.convert("L")
    path = folders.root / name
    image.save(path, fmt, **({"quality": 92} if fmt == "JPEG" else {}))
    (folders.input / name).write_bytes(path.read_bytes())

    (message,) = run_once(folders, tiny_package.model_dir, top_k=NUM_CLASSES)

    expected = tiny_package.classifier.predict(torchvision_reference(path))[0]
    got = np.zeros(NUM_CLASSES)
    for entry in message["top"]:
        got[entry["index"]] = entry["score"]
    assert message["top"][0]["index"] == int(np.argmax(expected))
    np.testing.assert_allclose(got, expected, atol=atol)
    assert folders.names(folders.processed) == [name]
