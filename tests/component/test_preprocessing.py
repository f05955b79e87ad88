"""The device's tensor, compared directly with torchvision's ``Resize`` + ``CenterCrop`` +
``ToTensor`` + ``Normalize`` (what training uses, ``edge_training.data.eval_transform``), not
only through a model's output: odd aspect ratios, BGR and NHWC models, a non-square model, 16-bit
PNGs and all eight EXIF orientations (issue 9, defect 10 and "one preprocessing contract").

PNG inputs are lossless, so the two must agree to rounding: PIL's ``resize(box=...)`` of the
crop samples the same source pixels as a resize of the whole image followed by the crop, but
PIL resamples in two passes with an 8-bit intermediate, so a pixel may differ by up to two
8-bit levels, and on average by well under half of one. Noise images make any shifted, flipped
or channel-swapped pixel show (errors of 0.5 and more on average)."""

from __future__ import annotations

import importlib
import io
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator, Tuple

import numpy as np
import pytest
from edge_inference.inputs import InputDecoder
from edge_inference.model import ModelInfo
from PIL import Image
from torchvision import transforms

from tests.component.harness import ROOT, photo

# One 8-bit level after normalization, with the smallest std used here, plus float slack.
ONE_LEVEL = 1.0 / 255.0 / 0.2 + 1e-5
# Orientation -> the transpose that shows the image upright (EXIF 2.32, tag 0x0112).
UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# ... and the one that produces the stored pixels from the upright image.
STORED = {**UPRIGHT, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


@pytest.fixture(scope="module")
def training() -> Iterator[ModuleType]:
    """``edge_training.data`` from ``training_src`` (the training side of the contract)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(ROOT / "training_src"))
        yield importlib.import_module("edge_training.data")


def noise(size: Tuple[int, int], seed: int) -> Image.Image:
    width, height = size
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def save_png(image: Image.Image, path: Path, **params: Any) -> Path:
    image.save(path, "PNG", **params)
    return path


def torchvision_nchw(image: Image.Image, info: ModelInfo) -> np.ndarray:
    """The reference: torchvision's pipeline on an upright RGB image, as NCHW RGB."""
    pipeline = transforms.Compose(
        [
            transforms.Resize(
                info.resize_shorter, interpolation=transforms.InterpolationMode.BILINEAR
            ),
            transforms.CenterCrop((info.height, info.width)),
            transforms.ToTensor(),
            transforms.Normalize(info.mean, info.std),
        ]
    )
    return pipeline(image.convert("RGB")).numpy()[None]


def as_nchw_rgb(tensor: np.ndarray, info: ModelInfo) -> np.ndarray:
    """The device tensor brought back to NCHW RGB, to compare with the reference."""
    if info.layout == "NHWC":
        tensor = tensor.transpose(0, 3, 1, 2)
    if info.channel_order == "BGR":
        tensor = tensor[:, ::-1]
    return tensor


def assert_same(device: np.ndarray, reference: np.ndarray) -> None:
    assert device.shape == reference.shape
    error = np.abs(device - reference)
    assert float(error.max()) <= 2 * ONE_LEVEL, f"max error {error.max():.4f}"
    assert float(error.mean()) < ONE_LEVEL / 2, f"mean error {error.mean():.5f}"


MODELS = {
    "rgb-nchw": ModelInfo("m", input_shape=(1, 3, 64, 64), resize_shorter=73),
    "bgr-nchw": ModelInfo("m", input_shape=(1, 3, 64, 64), channel_order="BGR", resize_shorter=73),
    "rgb-nhwc": ModelInfo("m", input_shape=(1, 64, 64, 3), layout="NHWC", resize_shorter=73),
    "bgr-nhwc": ModelInfo(
        "m", input_shape=(1, 64, 64, 3), layout="NHWC", channel_order="BGR", resize_shorter=80,
        mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3),
    ),
    "non-square": ModelInfo("m", input_shape=(1, 3, 48, 64), resize_shorter=70),
}  # fmt: skip
SIZES = [(97, 203), (203, 97), (333, 121), (64, 64), (65, 200), (150, 151)]


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_the_device_tensor_equals_torchvision(tmp_path: Path, model: str, size: Tuple[int, int]):
    info = MODELS[model]
    image = noise(size, seed=size[0] * 7 + size[1])
    path = save_png(image, tmp_path / "in.png")

    device = InputDecoder(info, 50_000_000).load(path)

    assert device.dtype == np.float32 and device.flags["C_CONTIGUOUS"]
    assert device.shape == info.input_shape
    assert_same(as_nchw_rgb(device, info), torchvision_nchw(image, info))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_applied_on_the_device_and_in_training(
    tmp_path: Path, training: ModuleType, orientation: int
):
    info = MODELS["rgb-nchw"]
    upright = noise((120, 90), seed=orientation)
    stored = upright.transpose(STORED[orientation]) if orientation in STORED else upright
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = save_png(stored, tmp_path / "in.png", exif=exif.tobytes())

    assert np.array_equal(np.asarray(training.open_rgb(str(path))), np.asarray(upright))
    device = InputDecoder(info, 50_000_000).load(path)
    assert_same(device, torchvision_nchw(upright, info))


def test_an_exif_rotated_jpeg_is_upright_on_the_device(tmp_path: Path):
    """JPEGs take the DCT-scaling shortcut (``draft``); its size request must follow the
    orientation. Lossy, so compared loosely: the wrong orientation is far off."""
    info = ModelInfo("m", input_shape=(1, 3, 64, 64), resize_shorter=73)
    upright = photo(5, (400, 260))
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    upright.transpose(STORED[6]).save(buffer, "JPEG", quality=95, exif=exif.tobytes())
    (tmp_path / "in.jpg").write_bytes(buffer.getvalue())

    device = InputDecoder(info, 50_000_000).load(tmp_path / "in.jpg")

    reference = torchvision_nchw(upright, info)
    assert float(np.abs(device - reference).mean()) < 0.05
    sideways = torchvision_nchw(upright.transpose(STORED[6]), info)
    assert float(np.abs(device - sideways).mean()) > 0.2


@pytest.mark.parametrize("reader", ["device", "training"])
def test_a_16_bit_png_keeps_its_brightness(tmp_path: Path, training: ModuleType, reader: str):
    rng = np.random.default_rng(3)
    deep = rng.integers(0, 65536, (90, 120), dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(deep).save(path)
    with Image.open(path) as check:
        assert check.mode.startswith("I")  # really a 16-bit grayscale PNG
    eight_bit = Image.fromarray((deep >> 8).astype(np.uint8), "L").convert("RGB")
    info = MODELS["rgb-nchw"]

    if reader == "training":
        assert np.array_equal(np.asarray(training.open_rgb(str(path))), np.asarray(eight_bit))
        tensor = training.eval_transform((1, 3, 64, 64), 73)(training.open_rgb(str(path)))
        assert_same(tensor.numpy()[None], torchvision_nchw(eight_bit, info))
    else:
        device = InputDecoder(info, 50_000_000).load(path)
        assert_same(device, torchvision_nchw(eight_bit, info))
