"""Image-folder data sets (``<channel>/<class>/<image>``), checked up front, and transforms.

The layout is checked before training starts so that bad data ends with one clear line
(:class:`TrainingInputError`) instead of a traceback deep inside a ``DataLoader``.
"""

import logging
import os
import random
from typing import Dict, List, Tuple

import numpy as np
import torch
from PIL import Image, ImageOps
from torchvision import transforms

from .errors import TrainingInputError

LOGGER = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")

# (path, class name)
Sample = Tuple[str, str]

try:  # torchvision >= 0.9 has InterpolationMode; older ones take PIL constants.
    _BILINEAR = transforms.InterpolationMode.BILINEAR
except AttributeError:  # pragma: no cover - old torchvision only
    _BILINEAR = Image.BILINEAR


def _is_image(name):
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _visible_entries(folder):
    return sorted(name for name in os.listdir(folder) if not name.startswith("."))


def scan_image_folder(root: str, channel: str) -> Tuple[List[str], List[Sample]]:
    """Return (sorted class names, samples) of ``root``, or raise on a wrong layout."""
    layout = f"expected {channel}/<class name>/<image>"
    if not os.path.isdir(root):
        raise TrainingInputError(f"{channel} channel {root} does not exist or is not a directory")
    entries = _visible_entries(root)
    stray_images = [
        name for name in entries if _is_image(name) and os.path.isfile(os.path.join(root, name))
    ]
    if stray_images:
        raise TrainingInputError(
            f"wrong layout in {channel} channel {root}: {len(stray_images)} image file(s) "
            f"directly in the channel root (e.g. {stray_images[0]!r}); {layout}"
        )
    class_names = [name for name in entries if os.path.isdir(os.path.join(root, name))]
    if not class_names:
        raise TrainingInputError(f"{channel} channel {root} is empty: no class folders; {layout}")
    samples: List[Sample] = []
    skipped = 0
    for class_name in class_names:
        class_dir = os.path.join(root, class_name)
        names = _visible_entries(class_dir)
        nested = [name for name in names if os.path.isdir(os.path.join(class_dir, name))]
        if nested:
            where = os.path.join(class_name, nested[0])
            raise TrainingInputError(
                f"wrong layout in {channel} channel {root}: nested folder {where!r}; "
                f"images must sit directly in their class folder ({layout})"
            )
        images = [name for name in names if _is_image(name)]
        skipped += len(names) - len(images)
        if not images:
            raise TrainingInputError(
                "class folder {!r} in {} channel {} contains no images ({})".format(
                    class_name, channel, root, ", ".join(IMAGE_EXTENSIONS)
                )
            )
        samples.extend((os.path.join(class_dir, name), class_name) for name in images)
    if skipped:
        LOGGER.warning("%s channel: ignored %d file(s) that are not images", channel, skipped)
    return class_names, samples


def check_images(samples: List[Sample]) -> None:
    """Open every image's header (cheap) so a corrupt file is named before training."""
    for path, _ in samples:
        try:
            with Image.open(path) as image:
                image.verify()
        except Exception as exc:  # PIL raises many types for broken files
            raise TrainingInputError(
                f"cannot read image {path}: {exc or type(exc).__name__}"
            ) from None


def split_holdout(
    samples: List[Sample], fraction: float, seed: int
) -> Tuple[List[Sample], List[Sample]]:
    """Hold out ``fraction`` of each class (at least one image stays for training)."""
    by_class: Dict[str, List[Sample]] = {}
    for sample in samples:
        by_class.setdefault(sample[1], []).append(sample)
    rng = random.Random(seed)  # noqa: S311 - a reproducible split, not cryptography
    train: List[Sample] = []
    held_out: List[Sample] = []
    for class_name in sorted(by_class):
        items = list(by_class[class_name])
        rng.shuffle(items)
        count = min(round(len(items) * fraction), len(items) - 1)
        held_out.extend(items[:count])
        train.extend(items[count:])
    return train, held_out


def open_rgb(path):
    """The image at ``path`` as the device decodes it (docs/CONTRACTS.md, "Decoding"): upright
    by its EXIF orientation, then 8-bit RGB, a 16-bit grayscale image keeping its high byte
    (PIL's own ``convert`` clips it at 255: almost white). The device's twin is
    ``edge_inference.inputs`` (``exif_orientation``, ``to_rgb8``);
    tests/component/test_preprocessing.py holds the two to the same pixels."""
    with Image.open(path) as image:
        upright = ImageOps.exif_transpose(image)
        if upright.mode in SIXTEEN_BIT_MODES:
            deep = np.clip(np.asarray(upright), 0, 65535).astype(np.uint32)
            upright = Image.fromarray((deep >> 8).astype(np.uint8), "L")
        return upright.convert("RGB")


class ImageSamples(torch.utils.data.Dataset):
    """``(path, class index)`` pairs, decoded to RGB and transformed on access."""

    def __init__(self, samples, class_to_index, transform):
        self.samples = [(path, class_to_index[name]) for path, name in samples]
        self.transform = transform

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        path, target = self.samples[index]
        try:
            rgb = open_rgb(path)
        except Exception as exc:  # name the file, whatever PIL raised
            raise TrainingInputError(f"cannot read image {path}: {exc}") from None
        return self.transform(rgb), target


def eval_transform(input_shape, resize_shorter):
    """Exactly what the device does (docs/CONTRACTS.md): resize shorter side (bilinear),
    center crop, scale to [0, 1], normalize with ImageNet mean/std."""
    height, width = input_shape[2], input_shape[3]
    return transforms.Compose(
        [
            transforms.Resize(resize_shorter, interpolation=_BILINEAR),
            transforms.CenterCrop((height, width)),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def train_transform(input_shape, resize_shorter, horizontal_flip):
    """Eval preprocessing with a random crop (and an optional flip) instead of the center crop.

    No RandomResizedCrop: on small images (digits) it destroys the content.
    """
    height, width = input_shape[2], input_shape[3]
    steps = [
        transforms.Resize(resize_shorter, interpolation=_BILINEAR),
        transforms.RandomCrop((height, width)),
    ]
    if horizontal_flip:
        steps.append(transforms.RandomHorizontalFlip())
    steps += [transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    return transforms.Compose(steps)
