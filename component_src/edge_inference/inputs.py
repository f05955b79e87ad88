"""Turn an input file into the model's input tensor, or say why it cannot be used.

Images (``.jpg``, ``.jpeg``, ``.png``) are preprocessed as ``docs/CONTRACTS.md`` says, with
torchvision's conventions (``Resize(resize_shorter)`` then ``CenterCrop``): decode, turn upright
by the EXIF orientation, convert to 8-bit RGB (16-bit grayscale keeps its high byte, as PIL does
for 16-bit colour), resize the shorter side to ``resize_shorter`` (bilinear, antialiased; the
longer side is ``int(resize_shorter * long / short)``), center-crop to ``H x W`` (offset
``round((size - crop) / 2)``), ``x * scale``, ``(x - mean) / std``, HWC -> CHW, batch axis,
float32. Two shortcuts keep this cheap without changing the result beyond rounding: a JPEG is
decoded straight to a reduced size with libjpeg's DCT scaling (``Image.draft``), never below the
size the resize needs; and only the cropped region is resized (``resize(box=...)``).

``.npy`` tensors must be float32 of the model's input shape, with or without the batch axis.
They are read with ``allow_pickle=False`` and memory-mapped first, so a bogus header claiming a
huge array is rejected before anything is read.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Tuple

import numpy as np

from edge_inference.model import ModelInfo

if TYPE_CHECKING:
    from PIL import Image

LOG = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
TENSOR_SUFFIXES = (".npy",)
SUPPORTED_SUFFIXES = IMAGE_SUFFIXES + TENSOR_SUFFIXES
IMAGE_FORMATS = ("JPEG", "PNG")


ORIENTATION_TAG = 0x0112  # EXIF 2.32 "Orientation": 1 upright ... 8
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
# Orientation -> PIL.Image.Transpose value that shows the image upright (as
# PIL.ImageOps.exif_transpose, which training uses); 5-8 swap width and height.
_UPRIGHT = {2: 0, 3: 3, 4: 1, 5: 5, 6: 4, 7: 6, 8: 2}


class BadInput(Exception):
    """This input cannot be used; the message is the reason recorded with it."""


def exif_orientation(img: Image.Image) -> int:
    """The EXIF orientation (1-8; 1 when absent or invalid)."""
    try:
        value = img.getexif().get(ORIENTATION_TAG, 1)
    except Exception:  # a broken EXIF block must not fail an otherwise good image
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def to_rgb8(img: Image.Image) -> Image.Image:
    """8-bit RGB. 16-bit grayscale (``I;16``/``I``) keeps its high byte; PIL's own convert
    clips it at 255, which turns a 16-bit PNG almost white."""
    if img.mode in SIXTEEN_BIT_MODES:
        from PIL import Image as PilImage

        deep = np.clip(np.asarray(img), 0, 65535).astype(np.uint32)
        return PilImage.fromarray((deep >> 8).astype(np.uint8), "L").convert("RGB")
    return img.convert("RGB") if img.mode != "RGB" else img


def resized_size(width: int, height: int, shorter: int) -> Tuple[int, int]:
    """Size after resizing the shorter side to ``shorter`` (torchvision's rounding)."""
    if width <= height:
        return shorter, int(shorter * height / width)
    return int(shorter * width / height), shorter


class InputDecoder:
    """Loads one input file into a tensor shaped like the model's input (C-contiguous float32)."""

    def __init__(
        self, info: ModelInfo, max_image_pixels: int, *, limit_name: str = "MaxImagePixels"
    ) -> None:
        """``limit_name`` is how errors name the limit (the configuration key, or a flag)."""
        self.info = info
        self.max_image_pixels = max_image_pixels
        self.limit_name = limit_name
        self._pil = self._import_pillow(max_image_pixels)
        channel_scale = np.array([info.scale / s for s in info.std], dtype=np.float32)
        channel_shift = np.array([m / s for m, s in zip(info.mean, info.std)], dtype=np.float32)
        if info.channel_order == "BGR":
            channel_scale, channel_shift = channel_scale[::-1].copy(), channel_shift[::-1].copy()
        self._chw = info.layout == "NCHW"
        shape = (3, 1, 1) if self._chw else (1, 1, 3)
        self._scale = channel_scale.reshape(shape)
        self._shift = channel_shift.reshape(shape)
        self._bgr = info.channel_order == "BGR"
        self.shape = tuple(info.input_shape)

    @staticmethod
    def _import_pillow(max_image_pixels: int) -> Optional[Any]:
        """PIL, set up strictly; None where Pillow is missing (``variant.DLR``'s environment
        lacks it): ``.npy`` inputs still work there, images fail with that reason."""
        try:
            import PIL.Image
            import PIL.ImageFile
        except ImportError:
            LOG.warning("Pillow is not installed: JPEG/PNG inputs will fail, .npy inputs work")
            return None
        # A truncated image must fail, not decode with a grey bottom half; and PIL's own
        # decompression-bomb guard (an error above twice this) must agree with MaxImagePixels.
        PIL.ImageFile.LOAD_TRUNCATED_IMAGES = False
        PIL.Image.MAX_IMAGE_PIXELS = max_image_pixels
        # Between 1x and 2x PIL only warns; the check after opening rejects those images.
        warnings.filterwarnings("ignore", category=PIL.Image.DecompressionBombWarning)
        return PIL.Image

    def load(self, path: Path) -> np.ndarray:
        """The tensor for ``path``; raises :class:`BadInput` with the reason."""
        suffix = path.suffix.lower()
        if suffix not in SUPPORTED_SUFFIXES:
            raise BadInput(
                f"unsupported file type {suffix or '(none)'!r}; "
                f"expected one of {', '.join(SUPPORTED_SUFFIXES)}"
            )
        try:
            size = os.stat(path).st_size
        except OSError as err:
            raise BadInput(f"cannot read file: {err}") from err
        if size == 0:
            raise BadInput("empty file (0 bytes)")
        if suffix in TENSOR_SUFFIXES:
            return self._load_tensor(path)
        return self._load_image(path)

    def _load_tensor(self, path: Path) -> np.ndarray:
        self._check_npy_header(path)
        try:
            array = np.load(str(path), mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise BadInput(f"not a valid .npy tensor: {err}") from err
        if not isinstance(array, np.ndarray):  # an .npz archive named .npy
            raise BadInput("not a .npy tensor (an .npz archive?)")
        if array.dtype.kind != "f" or array.dtype.itemsize != 4:
            raise BadInput(f"tensor dtype is {array.dtype}, expected float32")
        if array.shape not in (self.shape, self.shape[1:]):
            raise BadInput(
                f"tensor shape is {array.shape}, expected {self.shape} or {self.shape[1:]}"
            )
        try:
            tensor = np.array(array, dtype=np.float32, order="C").reshape(self.shape)
        except (ValueError, OSError) as err:
            raise BadInput(f"cannot read tensor data: {err}") from err
        if not np.isfinite(tensor).all():  # the result would carry NaN, which is not JSON
            raise BadInput("tensor holds NaN or Inf values")
        return tensor

    @staticmethod
    def _check_npy_header(path: Path) -> None:
        """Refuse anything that is not a plain ``.npy`` array before numpy parses further."""
        npy_format = np.lib.format
        with open(path, "rb") as handle:
            try:
                version = npy_format.read_magic(handle)
            except ValueError as err:
                raise BadInput("not a .npy file (no NPY header; pickled data is refused)") from err
            try:
                if version == (1, 0):
                    _, _, dtype = npy_format.read_array_header_1_0(handle)
                elif version == (2, 0):
                    _, _, dtype = npy_format.read_array_header_2_0(handle)
                else:
                    return  # newer header versions: np.load checks them
            except ValueError as err:
                raise BadInput(f"invalid .npy header: {err}") from err
        if dtype.hasobject:
            raise BadInput("tensor holds Python objects (pickled data is refused)")

    def _load_image(self, path: Path) -> np.ndarray:
        pil = self._pil
        if pil is None:
            raise BadInput("Pillow is not installed on this device; only .npy inputs work")
        info = self.info
        try:
            with pil.open(path) as img:
                if img.format not in IMAGE_FORMATS:
                    raise BadInput(f"unsupported image format {img.format}; expected JPEG or PNG")
                width, height = img.size
                pixels = width * height
                if pixels > self.max_image_pixels:
                    raise BadInput(
                        f"image is {width}x{height} = {pixels} pixels, more than "
                        f"{self.limit_name}={self.max_image_pixels}"
                    )
                orientation = exif_orientation(img)
                turned = orientation >= 5  # width and height swap when upright
                if turned:
                    width, height = height, width
                new_w, new_h = resized_size(width, height, info.resize_shorter)
                if img.format == "JPEG":
                    # DCT-domain downscale by 1/2, 1/4 or 1/8 to no less than (new_w, new_h),
                    # asked in the stored (not yet upright) orientation.
                    img.draft("RGB", (new_h, new_w) if turned else (new_w, new_h))
                rgb = to_rgb8(img)
                rgb.load()
                if orientation != 1:
                    rgb = rgb.transpose(pil.Transpose(_UPRIGHT[orientation]))
                array = self._resize_crop(rgb, new_w, new_h)
        except BadInput:
            raise
        except pil.DecompressionBombError as err:
            # Above twice MAX_IMAGE_PIXELS PIL refuses while opening, quoting its doubled limit
            # ("Image size (N pixels) exceeds limit of 2*MAX pixels"): name the one that was set.
            found = re.search(r"\((\d+) pixels\)", str(err))
            size = f"{found.group(1)} pixels" if found else "too many pixels"
            raise BadInput(
                f"image is {size}, more than {self.limit_name}={self.max_image_pixels}"
            ) from err
        except pil.UnidentifiedImageError as err:
            raise BadInput("not a JPEG or PNG image (PIL cannot identify it)") from err
        except (OSError, SyntaxError, ValueError) as err:
            # PIL reports truncated or corrupt data as OSError, bad PNG chunks as SyntaxError.
            raise BadInput(f"cannot decode image: {err}") from err
        return self._normalize(array)

    def _resize_crop(self, img: Image.Image, new_w: int, new_h: int) -> np.ndarray:
        crop_w, crop_h = self.info.width, self.info.height
        left = round((new_w - crop_w) / 2.0)
        top = round((new_h - crop_h) / 2.0)
        # The crop window in the (possibly draft-reduced) decoded image's coordinates.
        sx, sy = img.width / new_w, img.height / new_h
        box = (left * sx, top * sy, (left + crop_w) * sx, (top + crop_h) * sy)
        if img.size == (crop_w, crop_h) and box == (0.0, 0.0, float(crop_w), float(crop_h)):
            return np.asarray(img)
        bilinear = self._pil.BILINEAR  # type: ignore[union-attr]
        return np.asarray(img.resize((crop_w, crop_h), bilinear, box=box))

    def _normalize(self, hwc: np.ndarray) -> np.ndarray:
        """uint8 HWC -> float32 in the model's layout: one multiply and one subtract, in place."""
        if self._bgr:
            hwc = hwc[:, :, ::-1]
        out = np.empty(self.shape, dtype=np.float32)
        view = out[0]
        source = hwc.transpose(2, 0, 1) if self._chw else hwc
        np.multiply(source, self._scale, out=view)
        np.subtract(view, self._shift, out=view)
        return out
