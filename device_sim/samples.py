"""Sample inputs for the inference component when the caller passes none."""

from __future__ import annotations

from pathlib import Path


def write_sample_images(folder: Path, count: int = 2, size: int = 64) -> Path:
    """``count`` small RGB PNG images that differ in where their colour sits."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        image = Image.new("RGB", (size, size))
        pixels = image.load()
        assert pixels is not None
        for y in range(size):
            for x in range(size):
                value = (x * 4 + index * 90) % 256
                pixels[x, y] = (value, (y * 4) % 256, 255 - value)
        image.save(folder / f"sample-{index}.png")
    return folder
