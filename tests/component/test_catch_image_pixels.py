"""``MaxImagePixels`` is a maximum: an image of exactly that many pixels is decoded, one pixel
more is refused, with the reason naming the setting (issue 14, "Tests that catch what
matters": an off-by-one there passed every test before). The limit is checked from the image
header, before decoding, for both formats the component reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from edge_inference.inputs import BadInput, InputDecoder
from edge_inference.model import ModelInfo

from tests.component.harness import encode, photo

LIMIT = 50 * 40  # 2000 pixels
AT_LIMIT = (50, 40)
ONE_MORE = (69, 29)  # 2001 pixels
INFO = ModelInfo(model_id="boundary", input_shape=(1, 3, 32, 32), resize_shorter=36)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_an_image_of_exactly_max_image_pixels_is_decoded(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"at-limit.{fmt.lower()}"
    path.write_bytes(encode(photo(1, AT_LIMIT), fmt))

    tensor = InputDecoder(INFO, max_image_pixels=LIMIT).load(path)

    assert tensor.shape == (1, 3, 32, 32) and np.isfinite(tensor).all()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_one_pixel_more_is_refused_naming_the_limit(tmp_path: Path, fmt: str) -> None:
    assert ONE_MORE[0] * ONE_MORE[1] == LIMIT + 1
    path = tmp_path / f"one-more.{fmt.lower()}"
    path.write_bytes(encode(photo(2, ONE_MORE), fmt))

    with pytest.raises(BadInput) as caught:
        InputDecoder(INFO, max_image_pixels=LIMIT).load(path)

    assert str(caught.value) == "image is 69x29 = 2001 pixels, more than MaxImagePixels=2000"
