"""Step 2, train: ``training_src/train.py`` on scikit-learn's digits, as SageMaker runs it (a
child process with ``SM_*`` variables). It proves that training works; its model is not
deployed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from main_job.cache import cached, digest_files
from main_job.errors import MainJobError
from main_job.paths import ROOT, TRAINING_SRC

DIGITS_ARCH, DIGITS_SIZE = "shufflenet_v2_x0_5", 32


@dataclass(frozen=True)
class Trained:
    model_dir: Path
    metrics: str  # the last epoch's metrics line
    reused: bool


def train_digits(
    cache: Path, epochs: int, on_epoch: Callable[[str], None] | None = None
) -> Trained:
    """``training_src/train.py`` on the digits, as SageMaker runs it (``SM_*`` variables)."""
    sources = [*sorted(TRAINING_SRC.rglob("*.py")), ROOT / "stand_ins/digits.py"]
    key = digest_files(sources, DIGITS_ARCH, str(DIGITS_SIZE), str(epochs), _torch_version())
    folder = cache / "digits" / key

    def build(scratch: Path) -> None:
        from stand_ins.digits import write_digits

        data = write_digits(scratch / "data", size=DIGITS_SIZE)
        model_dir, output_dir = scratch / "model", scratch / "output"
        model_dir.mkdir()
        output_dir.mkdir()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SM_")},
            "SM_MODEL_DIR": str(model_dir),
            "SM_CHANNEL_TRAIN": str(data.train),
            "SM_CHANNEL_VALIDATION": str(data.validation),
            "SM_OUTPUT_DATA_DIR": str(output_dir),
            # one thread: on a small shared machine more threads train slower (tests/conftest.py)
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        }
        arguments = {
            "--arch": DIGITS_ARCH,
            "--epochs": str(epochs),
            "--batch-size": "64",
            "--lr": "0.04",
            "--lr-schedule": "cosine",
            "--pretrained": "false",
            "--input-shape": f"1,3,{DIGITS_SIZE},{DIGITS_SIZE}",
            "--resize-shorter": str(DIGITS_SIZE),
            "--export-onnx": "false",
            "--checkpoint-dir": str(scratch / "checkpoints"),
        }
        command = [sys.executable, str(TRAINING_SRC / "train.py")]
        for name, value in arguments.items():
            command += [name, value]
        lines: list[str] = []
        with subprocess.Popen(
            command,
            env=env,
            cwd=TRAINING_SRC,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ) as process:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line)
                if "epoch=" in line and on_epoch is not None:
                    on_epoch("epoch=" + line.split("epoch=", 1)[1].strip())
        (scratch / "train.log").write_text("".join(lines))
        if process.returncode != 0:
            tail = "".join(lines).strip().splitlines()[-1:] or ["no output"]
            raise MainJobError(f"digits training failed ({process.returncode}): {tail[0]}")
        shutil.rmtree(scratch / "data", ignore_errors=True)  # rendered digits: not needed again

    reused = cached(folder, build)
    lines = [line for line in (folder / "train.log").read_text().splitlines() if "epoch=" in line]
    metrics = lines[-1].split("epoch=", 1)[-1] if lines else "no metrics line"
    return Trained(folder / "model", "epoch=" + metrics, reused)


def _torch_version() -> str:
    import torch

    return str(torch.__version__)
