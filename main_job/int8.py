"""Step 6, int8 beside FP32: the brought model quantized as an int8 device class would run it,
and both models run by the inference component over the same photos.

On AWS an int8 class (``quantize: int8``) gets its model from the stage's training job
(``train.py --quantize int8``), which a brought model skips, so the stage the job synthesizes has
no int8 class. This step builds that model with the training job's own code
(``training_src/edge_training/quantize.py``: ONNX Runtime static QDQ, per-channel S8S8,
``quant_pre_process`` first, MinMax ranges), calibrated on crops and mirror images of the photos
that ship in installed packages, decoded by the component's own decoder (as the device feeds the
model). Then ``python -m edge_inference --once`` (the component, as Greengrass starts it) runs the
FP32 model and the int8 model over the photos, one after the other, with the same settings, so
that their latencies compare: top-1 of each photo, agreement, median inference time (two
alternated runs of each) and model size. The int8 model is cached under
``<cache>/int8/<key>`` (key: the FP32 model's bytes, the calibration images, the quantization
code).

Calibration and evaluation share the shipped photos when the job runs on them (the crops differ
from the centred view the component classifies); with ``--images`` the photos classified are
yours and the calibration stays on the shipped ones.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from main_job.cache import cached, digest_files
from main_job.errors import MainJobError
from main_job.inputs import shipped_photos
from main_job.paths import COMPONENT_SRC, ROOT, TRAINING_SRC

INT8_FORMAT = "s8s8"  # ORT's guide: "S8S8 with QDQ ... should be the first choice"
ROUNDS = 2  # runs of each model over the photos; the latency is the median of all
CROP = 0.8  # each calibration crop keeps 80% of the photo's width and height

# The training job's quantization, fed by the component's decoder: a child whose import root is
# training_src (as SageMaker's) with component_src beside it for the decoder.
_QUANTIZE = """
import json, sys
from pathlib import Path
from edge_inference.inputs import InputDecoder
from edge_inference.model import read_metadata
from edge_training import quantize
fp32_dir, target, fmt, *images = sys.argv[1:]
info = read_metadata(Path(fp32_dir))
decoder = InputDecoder(info, 10**9)
tensors = [decoder.load(Path(p)) for p in images]
quantize.quantize_model(
    str(Path(fp32_dir) / "model.onnx"), target, tensors, quantize.settings_for(fmt),
    info.input_name,
)
print(json.dumps({"calibration_images": len(tensors)}))
"""


@dataclass
class ModelRun:
    """One model's run over the photos."""

    name: str  # "FP32" / "int8"
    size_bytes: int
    top1: dict[str, str] = field(default_factory=dict)  # photo -> top-1 label
    inference_ms: list[float] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # photo -> error

    @property
    def median_ms(self) -> float | None:
        return statistics.median(self.inference_ms) if self.inference_ms else None


@dataclass
class Int8View:
    """What the report shows of int8 beside FP32, or why it could not be built."""

    runs: list[ModelRun] = field(default_factory=list)
    calibration_images: int = 0
    int8_format: str = INT8_FORMAT
    reused: bool = False
    problem: str | None = None

    @property
    def agreement(self) -> tuple[int, int]:
        """(photos whose top-1 is the same under both, photos both classified)."""
        if len(self.runs) != 2:
            return 0, 0
        fp32, int8 = self.runs
        both = sorted(set(fp32.top1) & set(int8.top1))
        return sum(fp32.top1[p] == int8.top1[p] for p in both), len(both)


def calibration_images(folder: Path, photos: list[Path] | None = None) -> list[Path]:
    """Four corner crops of each photo and the mirror image of each crop, as PNG (lossless):
    what the decoder then resizes and centre-crops as the device does."""
    from PIL import Image, ImageOps

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for index, path in enumerate(photos or shipped_photos()):
        with Image.open(path) as opened:
            image = opened.convert("RGB")
        w, h = image.size
        cw, ch = round(w * CROP), round(h * CROP)
        corners = [(0, 0), (w - cw, 0), (0, h - ch), (w - cw, h - ch)]
        for corner, (left, top) in enumerate(corners):
            crop = image.crop((left, top, left + cw, top + ch))
            for mirrored, view in enumerate((crop, ImageOps.mirror(crop))):
                target = folder / f"p{index}-c{corner}-m{mirrored}.png"
                view.save(target)
                written.append(target)
    return written


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(COMPONENT_SRC), str(ROOT)])
    return env


def build_int8(fp32_dir: Path, cache: Path) -> tuple[Path, int, bool]:
    """The int8 model folder (``model.onnx``, ``metadata.json``, ``labels.json``), the number of
    calibration images, and whether it came from the cache."""
    with tempfile.TemporaryDirectory(prefix="int8-calibration-") as scratch:
        images = calibration_images(Path(scratch))
        sources = [
            TRAINING_SRC / "edge_training" / "quantize.py",
            COMPONENT_SRC / "edge_inference" / "inputs.py",
        ]
        key = digest_files(
            sources, INT8_FORMAT, _QUANTIZE, *_digests([fp32_dir / "model.onnx", *images])
        )
        folder = cache / "int8" / key
        counted: dict[str, int] = {}

        def build(target: Path) -> None:
            env = _child_env()
            env["PYTHONPATH"] = os.pathsep.join([str(TRAINING_SRC), env["PYTHONPATH"]])
            result = subprocess.run(
                [sys.executable, "-c", _QUANTIZE, str(fp32_dir), str(target / "model.onnx"),
                 INT8_FORMAT, *map(str, images)],
                cwd=TRAINING_SRC, env=env, capture_output=True, text=True, check=False,
            )  # fmt: skip
            if result.returncode != 0:
                last = (result.stderr.strip().splitlines() or ["no output"])[-1]
                raise MainJobError(f"int8 quantization failed: {last}")
            counted.update(json.loads(result.stdout.strip().splitlines()[-1]))
            metadata = json.loads((fp32_dir / "metadata.json").read_text())
            metadata.update(precision="int8", int8_format=INT8_FORMAT)
            (target / "metadata.json").write_text(json.dumps(metadata, indent=2, sort_keys=True))
            shutil.copyfile(fp32_dir / "labels.json", target / "labels.json")

        reused = cached(folder, build)
        return folder, counted.get("calibration_images", len(images)), reused


def _digests(paths: list[Path]) -> list[str]:
    import hashlib

    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]


def run_component(model_dir: Path, photos: Path, name: str, work: Path) -> ModelRun:
    """``python -m edge_inference --once`` over a copy of ``photos`` with ``model_dir``; its
    results (JSON lines on stdout) by photo."""
    shutil.rmtree(work, ignore_errors=True)
    inputs = work / "input"
    shutil.copytree(photos, inputs)
    result = subprocess.run(
        [sys.executable, "-m", "edge_inference", "--once", "--runtime", "onnx",
         "--model-dir", str(model_dir), "--input-dir", str(inputs), "--settle-seconds", "0",
         "--top-k", "1", "--state-dir", str(work / "state")],
        cwd=work, env=_child_env(), capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise MainJobError(f"the inference component on the {name} model: {last}")
    model_file = model_dir / "model.onnx"
    run = ModelRun(name, model_file.stat().st_size)
    for line in result.stdout.splitlines():
        try:
            message: dict[str, Any] = json.loads(line)
        except ValueError:
            continue
        photo = str(message.get("input"))
        if "error" in message:
            run.failed[photo] = str(message["error"])
        elif message.get("top"):
            run.top1[photo] = str(message["top"][0]["label"])
            run.inference_ms.append(float(message["inference_ms"]))
    return run


def compare_int8(fp32_dir: Path, photos: Path, cache: Path, work: Path) -> Int8View:
    """FP32 and int8 over ``photos``; a problem is reported in the view, never raised: the
    device's results stand whatever happens here."""
    view = Int8View()
    try:
        int8_dir, view.calibration_images, view.reused = build_int8(fp32_dir, cache)
        models = (("FP32", fp32_dir), ("int8", int8_dir))
        for round_ in range(ROUNDS):  # alternated, so that background load hits both alike
            runs = [run_component(d, photos, name, work / name) for name, d in models]
            if round_ == 0:
                view.runs = runs
            else:
                for kept, again in zip(view.runs, runs):
                    kept.inference_ms += again.inference_ms
    except OSError as err:  # a cache or work folder that cannot be written, a full disk
        where = f"{err.filename}: " if err.filename else ""
        view.problem = f"{where}{err.strerror or err}"
    except (MainJobError, ValueError, subprocess.SubprocessError) as err:
        view.problem = str(err)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return view


def int8_lines(view: Int8View) -> list[str]:
    """The comparison as terminal lines."""
    if view.problem is not None:
        return [f"not measured: {view.problem}"]
    lines = [f"{'model':<6} {'size':>9} {'median inference':>17}  photos classified"]
    for run in view.runs:
        median = f"{run.median_ms:.1f} ms" if run.median_ms is not None else "-"
        failed = f", {len(run.failed)} failed" if run.failed else ""
        lines.append(
            f"{run.name:<6} {run.size_bytes / 1e6:>6.2f} MB {median:>17}  {len(run.top1)}{failed}"
        )
    same, both = view.agreement
    fp32, int8 = view.runs
    lines.append(
        f"top-1 agreement: {same} of {both} photos"
        + (f" ({100 * same / both:.0f}%)" if both else "")
        + f"; int8 is {fp32.size_bytes / max(1, int8.size_bytes):.1f}x smaller"
    )
    differ = [p for p in sorted(set(fp32.top1) & set(int8.top1)) if fp32.top1[p] != int8.top1[p]]
    lines += [f"  {p}: FP32 {fp32.top1[p]!r}, int8 {int8.top1[p]!r}" for p in differ]
    lines.append(
        "(median inference: the model's run alone, from the component's inference_ms; the "
        "latency above adds decoding. Few photos, fresh processes: indicative only; README "
        "Performance has the steady rates)"
    )
    lines.append(
        f"(int8: {view.int8_format.upper()} QDQ by the training job's quantization code, "
        f"calibrated on {view.calibration_images} crops and mirror images of the shipped "
        "photos, so agreement on those photos is optimistic; on AWS the training job's gate "
        "compares held-out images" + ("; model from the cache" if view.reused else "") + ")"
    )
    return lines
