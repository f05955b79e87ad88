"""What SageMaker would have produced, and the archives the stand-ins write."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ONNX_FILE = "model.onnx"


@dataclass(frozen=True)
class StandIns:
    """What SageMaker would have produced: Neo's output folder, the class labels (the
    training job's ``model.tar.gz`` holds only ``labels.json``), and, when the caller has one,
    a real ONNX model for the training job's ``output/output.tar.gz`` (what ``train.py``
    exports to ``SM_OUTPUT_DATA_DIR``; ONNX device classes package it). ``onnx_model`` is None
    when no ONNX model was given: a stage with an ONNX class then fails to deploy, naming it.
    ``brought_archive``: the user's own ``model.tar.gz`` (``device_sim --brought-model``), put
    at the stage's ``model_artifact_uri`` instead of a stand-in."""

    model_dir: Path
    labels: Mapping[str, str]
    onnx_model: Path | None = None
    brought_archive: bytes | None = None


def tar_folder(folder: Path) -> bytes:
    """``folder``'s files at the archive's root; a symlinked file goes in as its target."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", dereference=True) as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=path.relative_to(folder).as_posix())
    return buffer.getvalue()


# Where SageMaker training writes the traced model: the stand-in's model.tar.gz has the file
# (so that Neo's stand-in finds a PyTorch model, as Neo checks), not a model in it.
STAND_IN_MODEL_PTH = b"stand-in: the training job's traced model.pth would be here\n"


def training_archive(labels: Mapping[str, str]) -> bytes:
    """``model.tar.gz`` as training leaves it (``model.pth`` and ``labels.json``), with a
    stand-in ``model.pth``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = json.dumps(dict(labels), sort_keys=True).encode()
        for name, content in (("labels.json", data), ("model.pth", STAND_IN_MODEL_PTH)):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def onnx_archive(onnx_model: Path, labels: Mapping[str, str]) -> bytes:
    """``output.tar.gz`` as ``train.py --export-onnx true`` leaves it: ``model.onnx`` and
    ``labels.json`` at the root (plus ``metadata.json`` when the model folder has one)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(onnx_model / ONNX_FILE, arcname=ONNX_FILE)
        metadata = onnx_model / "metadata.json"
        if metadata.is_file():
            tar.add(metadata, arcname="metadata.json")
        data = json.dumps(dict(labels), sort_keys=True).encode()
        info = tarfile.TarInfo("labels.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def zip_folder(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()
