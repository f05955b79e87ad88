"""What the device metrics cost the component: throughput and memory with metrics on vs off.

    .venv/bin/python bench/metrics.py                 # tiny Neo model (DLR), 400 .npy inputs
    .venv/bin/python bench/metrics.py --runtime onnx  # VGG16 (random weights) on ONNX Runtime
    .venv/bin/python bench/metrics.py --rounds 5

Each run is a fresh child process that runs the component in-process (``InferenceService``,
``--once``) over the same folder of ``.npy`` inputs, with ``MetricsIntervalSeconds`` 0 (off) or
a 1-second window (on: ten times more windows than a busy minute-long run would write, so the
cost per result and per window both show). On and off alternate (off, on, off, on, ...) so a
background load hits both alike; the ratio is the median of the per-round ratios. Memory: the
child's peak resident set (``ru_maxrss``) on vs off. Issue 15's target: on >= 0.97x off.
The fast tiny model is the hard case: the per-result cost of metrics is the same whatever the
model, so a slower model only makes the ratio closer to 1. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
for path in (ROOT / "component_src", ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


def prepare(runtime: str, count: int) -> Dict[str, Path]:
    from component import prepare_model, tensors_for

    model_dir = prepare_model(runtime)
    folder = OUT / f"metrics-inputs-{runtime}-{count}"
    if not folder.is_dir() or len(list(folder.iterdir())) != count:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for i, tensor in enumerate(tensors_for(model_dir, count)):
            np.save(folder / f"t{i:05d}.npy", tensor)
    return {"model_dir": model_dir, "inputs": folder}


class CountingPublisher:
    def __init__(self) -> None:
        self.count = 0

    def publish(self, message: Dict[str, Any]) -> None:
        self.count += 1


def child(args: argparse.Namespace) -> Dict[str, Any]:
    from edge_inference.config import Config
    from edge_inference.metrics import MetricsReporter
    from edge_inference.model import load_model
    from edge_inference.outbox import Outbox
    from edge_inference.service import InferenceService
    from edge_inference.spool import Spool

    model_dir, inputs = Path(args.model_dir), Path(args.inputs)
    work = OUT / f"metrics-work-{args.interval}"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(inputs, work / "input")
    config = Config(
        model_dir=model_dir,
        input_dir=work / "input",
        processed_dir=work / "processed",
        failed_dir=work / "failed",
        runtime=args.runtime,
        settle_seconds=0.0,
        poll_interval=0.05,
        metrics_interval=args.interval,
    )
    metrics = MetricsReporter(
        Outbox(work / "state" / "metrics"),
        CountingPublisher(),
        interval=args.interval,
        keep=1440,
        thing="bench",
        input_dir=config.input_dir,
    )
    publisher = CountingPublisher()
    service = InferenceService(
        config=config,
        model=load_model(model_dir, args.runtime),
        spool=Spool(work / "state"),
        publisher=publisher,
        stop=threading.Event(),
        metrics=metrics,
    )
    count = len(list(config.input_dir.iterdir()))
    start = time.perf_counter()
    service.run(once=True)
    seconds = time.perf_counter() - start
    if publisher.count != count:
        raise SystemExit(f"{publisher.count} results for {count} inputs")
    windows = metrics.publisher.count if isinstance(metrics.publisher, CountingPublisher) else 0
    return {
        "ips": count / seconds,
        "maxrss_kb": peak_rss_kb(),
        "windows": windows,
    }


def peak_rss_kb() -> int:
    """This process's peak resident set (``VmHWM``). Not ``ru_maxrss``: Linux carries that
    over ``execve`` from the forking parent (here, one that held every input tensor), while
    ``VmHWM`` belongs to the new address space (proc(5))."""
    status = Path("/proc/self/status").read_text(encoding="ascii")
    return int(status.split("VmHWM:")[1].split()[0])


def run_child(paths: Dict[str, Path], runtime: str, interval: float) -> Dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", "--runtime", runtime, "--interval",
           str(interval), "--model-dir", str(paths["model_dir"]), "--inputs",
           str(paths["inputs"])]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    result: Dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runtime", choices=("dlr", "onnx"), default="dlr")
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--interval", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    parser.add_argument("--inputs", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    paths = prepare(args.runtime, args.images)
    ratios: List[float] = []
    rows: List[Dict[str, Any]] = []
    for round_ in range(args.rounds):
        off = run_child(paths, args.runtime, 0.0)
        on = run_child(paths, args.runtime, 1.0)
        ratios.append(on["ips"] / off["ips"])
        rows.append({"round": round_, "off": off, "on": on})
        print(
            f"round {round_}: off {off['ips']:.1f} img/s, on {on['ips']:.1f} img/s "
            f"({on['windows']} windows published), ratio {ratios[-1]:.3f}, peak RSS "
            f"off {off['maxrss_kb'] / 1024:.1f} MiB, on {on['maxrss_kb'] / 1024:.1f} MiB",
            flush=True,
        )
    rss_delta = statistics.median(r["on"]["maxrss_kb"] - r["off"]["maxrss_kb"] for r in rows)
    summary = {
        "runtime": args.runtime,
        "images": args.images,
        "median_ratio_on_off": round(statistics.median(ratios), 3),
        "min_ratio": round(min(ratios), 3),
        "median_extra_peak_rss_mib": round(rss_delta / 1024, 2),
    }
    print(
        f"metrics on / off throughput: median {summary['median_ratio_on_off']}x "
        f"(min {summary['min_ratio']}x) over {args.rounds} rounds; extra peak RSS "
        f"{summary['median_extra_peak_rss_mib']} MiB (target: >= 0.97x)"
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
