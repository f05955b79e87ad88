"""A user's own model, made in the test as a user makes one: torchvision's ResNet-18 with a
4-class head (random weights: nothing is downloaded), traced with ``torch.jit.trace`` and saved
as ``model.pth`` beside ``labels.json`` in a ``model.tar.gz`` (README "Bring an
already-trained model")."""

from __future__ import annotations

import io
import json
import tarfile
import warnings
from collections.abc import Mapping
from pathlib import Path

LABELS = ["cat", "dog", "bird", "fish"]


def traced_resnet18(target: Path, classes: int = len(LABELS), seed: int = 0) -> Path:
    import torch
    import torchvision

    torch.manual_seed(seed)
    model = torchvision.models.resnet18(num_classes=classes).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.no_grad():
            traced = torch.jit.trace(model, torch.rand(1, 3, 224, 224))
    target.parent.mkdir(parents=True, exist_ok=True)
    traced.save(str(target))
    return target


def tar_gz(target: Path, files: Mapping[str, Path | bytes]) -> Path:
    """``files`` (archive name -> a file or its bytes) in a ``.tar.gz`` at ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(target, "w:gz") as tar:
        for name, source in files.items():
            if isinstance(source, Path):
                tar.add(source, arcname=name)
            else:
                info = tarfile.TarInfo(name)
                info.size = len(source)
                tar.addfile(info, io.BytesIO(source))
    return target


def labels_json(names: list[str] = LABELS) -> bytes:
    return json.dumps(names).encode()
