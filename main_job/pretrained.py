"""Step 1, bring a model: the ImageNet-pretrained EfficientNet-Lite0 exported by
``training_src``'s own command line, as a user who brings an already-trained model runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from main_job.errors import MainJobError
from main_job.paths import TRAINING_SRC


@dataclass(frozen=True)
class Brought:
    model_dir: Path  # model.pth + labels.json
    model_tar: Path
    onnx_dir: Path  # model.onnx + labels.json + metadata.json
    reused: bool


def _export(cache: Path) -> dict[str, Any]:
    """``cd training_src && python -m edge_training.pretrained --cache-dir <cache>/pretrained``
    (its module docstring): a child process, so the training code's package stays on its own
    import path, not this one's. It prints its paths as one JSON object, or exits 2 with one
    ``ERROR <problem>`` line (and its torch warnings stay in the captured output)."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge_training.pretrained",
            "--cache-dir",
            str((cache / "pretrained").resolve()),
        ],
        cwd=TRAINING_SRC,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise MainJobError(f"pretrained model: {last.removeprefix('ERROR ')}")
    printed: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return printed


def bring_pretrained(cache: Path) -> Brought:
    exported = _export(cache)
    # export_pretrained trusts its COMPLETE marker; a reused entry missing a file the job uses
    # (someone deleted model.onnx) is exported again instead of failing every later run
    needed = [
        Path(exported["model_tar"]),
        Path(exported["model_dir"]) / "model.pth",
        Path(exported["onnx_dir"]) / "model.onnx",
        Path(exported["onnx_dir"]) / "labels.json",
    ]
    if exported["reused"] and not all(path.is_file() for path in needed):
        shutil.rmtree(exported["root"])
        exported = _export(cache)
    return Brought(
        Path(exported["model_dir"]),
        Path(exported["model_tar"]),
        Path(exported["onnx_dir"]),
        bool(exported["reused"]),
    )
