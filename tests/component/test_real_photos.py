"""The pretrained EfficientNet-Lite0 (exported by ``edge_training.pretrained``) on real photos
that ship in installed packages, through the component's own preprocessing
(``edge_inference.inputs.InputDecoder``) and ONNX Runtime runner (``edge_inference.model``).

Which photos have an ImageNet class as their subject, and so get an assertion:
- matplotlib's ``grace_hopper.jpg``: Rear Admiral Grace Hopper in her US Navy dress uniform:
  "military uniform" (class 652). Her cap makes "mortarboard"/"academic gown" close rivals, so
  the assertion is on the top 3, not the top 1.
- scikit-learn's ``china.jpg``: a Chinese palace/temple hall (the Summer Palace style): "palace"
  (698); ImageNet also has "monastery", "bell cote", "pagoda" for such buildings.
- scikit-learn's ``flower.jpg``: a close-up of a daisy-like flower head: "daisy" (985).
matplotlib's other image, ``Minduka_Present_Blue_Pack.png``, is a clip-art gift box: no ImageNet
class (nor a photo), so it only has to be classified without error.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pytest
import sklearn.datasets

# On sys.path through tests/component/conftest.py (harness.py), as the device's PYTHONPATH.
from edge_inference.inputs import InputDecoder
from edge_inference.model import load_model

MPL_DATA = Path(matplotlib.get_data_path()) / "sample_data"
SKLEARN_IMAGES = Path(sklearn.datasets.__file__).parent / "images"

# photo -> the ImageNet class that must be among the top 3
PHOTOS = {
    "grace_hopper.jpg": (MPL_DATA / "grace_hopper.jpg", "military uniform"),
    "china.jpg": (SKLEARN_IMAGES / "china.jpg", "palace"),
    "flower.jpg": (SKLEARN_IMAGES / "flower.jpg", "daisy"),
}
CLIPART = MPL_DATA / "Minduka_Present_Blue_Pack.png"


@pytest.fixture(scope="module")
def lite0(pretrained_export):
    model = load_model(pretrained_export.onnx_dir, "onnx")
    return model, InputDecoder(model.info, max_image_pixels=50_000_000)


def top3(lite0, photo: Path) -> list[dict]:
    model, decoder = lite0
    return model.top_k(model.runner.run(decoder.load(photo)), 3)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PHOTOS))
def test_real_photo_top3_holds_its_imagenet_class(lite0, name):
    photo, expected = PHOTOS[name]
    assert photo.is_file(), f"{photo} is not shipped by the installed package"
    best = top3(lite0, photo)
    print(f"{name}: " + ", ".join(f"{t['label']} {t['score']:.3f}" for t in best))
    assert expected in [t["label"] for t in best], best
    assert best[0]["score"] > 0.15  # a confident answer, not a flat distribution


@pytest.mark.slow
def test_clipart_without_an_imagenet_class_is_still_classified(lite0):
    best = top3(lite0, CLIPART)
    print(f"{CLIPART.name}: " + ", ".join(f"{t['label']} {t['score']:.3f}" for t in best))
    assert len(best) == 3 and all(0.0 <= t["score"] <= 1.0 for t in best)
    assert [t["score"] for t in best] == sorted((t["score"] for t in best), reverse=True)


@pytest.mark.slow
def test_the_traced_model_pth_agrees_with_the_onnx_export_on_a_real_photo(lite0, pretrained_export):
    """Neo compiles ``model.pth``; the device may run ``model.onnx``: same answer on a photo."""
    import numpy as np
    import torch

    model, decoder = lite0
    tensor = decoder.load(PHOTOS["china.jpg"][0])
    traced = torch.jit.load(str(pretrained_export.model_dir / "model.pth"), map_location="cpu")
    with torch.no_grad():
        expected = traced(torch.from_numpy(tensor)).numpy()
    actual = model.runner.run(tensor)
    assert np.allclose(expected, actual, atol=1e-3)
    assert int(expected.argmax()) == int(actual.argmax())
