"""scikit-learn's bundled ``load_digits`` rendered as an image-folder data set (no download).

``write_digits(root)`` writes ``root/{train,validation,heldout}/digit_<k>/<n>.png``: 8x8 grey
digits upscaled to ``size`` x ``size`` RGB PNGs, split per class deterministically.
"""

from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

SPLITS = ("train", "validation", "heldout")


class DigitsFolders(NamedTuple):
    train: Path
    validation: Path
    heldout: Path
    classes: tuple[str, ...]


def class_name(digit: int) -> str:
    return f"digit_{digit}"


def render(pixels: np.ndarray, size: int) -> Image.Image:
    """An 8x8 array of 0..16 ink values -> a ``size`` x ``size`` RGB image, dark ink on white."""
    grey = (255 - np.clip(pixels, 0, 16) * 255 / 16).round().astype(np.uint8).reshape(8, 8)
    return (
        Image.fromarray(grey, mode="L")
        .resize((size, size), Image.Resampling.BILINEAR)
        .convert("RGB")
    )


def write_digits(
    root: Path, *, size: int = 32, fractions: tuple[float, float] = (0.6, 0.2), seed: int = 0
) -> DigitsFolders:
    """Split each class into train / validation / held-out by ``fractions`` (rest: held-out)."""
    digits = load_digits()
    rng = np.random.RandomState(seed)
    for digit in range(10):
        indices = np.flatnonzero(digits.target == digit)
        rng.shuffle(indices)
        n_train = round(len(indices) * fractions[0])
        n_val = round(len(indices) * fractions[1])
        parts = {
            "train": indices[:n_train],
            "validation": indices[n_train : n_train + n_val],
            "heldout": indices[n_train + n_val :],
        }
        for split, chosen in parts.items():
            folder = root / split / class_name(digit)
            folder.mkdir(parents=True, exist_ok=True)
            for index in chosen:
                render(digits.data[index], size).save(folder / f"{index:04d}.png")
    return DigitsFolders(
        root / "train",
        root / "validation",
        root / "heldout",
        tuple(class_name(digit) for digit in range(10)),
    )
