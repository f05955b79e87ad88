"""Benchmark the inference component against its raw runtime, on one model and one image set.

    .venv/bin/python bench/component.py                  # VGG16 (random weights) on ONNX Runtime
    .venv/bin/python bench/component.py --runtime dlr    # the tiny Neo model under libdlr.so
    .venv/bin/python bench/component.py --images 16      # quicker

Measures, each in a fresh child process:

- raw runtime images/s: ``runner.run(tensor)`` in a loop on already-preprocessed tensors (the
  runner the component uses, same session options);
- component end-to-end images/s, from file in the input folder to result out of the outbox
  (claim, decode/preprocess, inference, durable result, move, publish), for ``.npy`` tensors and
  for JPEGs whose shorter side is 224, 320, 480 and 640 px (scikit-learn's sample photos); with
  the prefetch thread (the default) and without it, for comparison. Each set is paired with a raw
  measurement taken just before it in the same process, so background load hits both alike;
- peak memory (``ru_maxrss``) of a child that only runs the raw runtime vs one that runs the
  component over every set;
- with ``--backlog N`` (default 10,000) files waiting in the input folder at start: the
  component's own cost per file apart from inference (the runtime is replaced by one that
  returns a fixed output at once, so what is left is scan, claim, ``.npy`` load, durable result,
  move, publish), and the resident memory (``VmRSS``) after the first 1,000 files and after all
  of them. The inputs are hard links to one small ``.npy`` (``1x3x32x32``), so the folder is
  cheap to build; ``--backlog 0`` skips this part.

With ``--watch`` (issue 15), instead: the component with its metrics windows and capture on vs
off, paired in one child (rounds alternate off/on on each set, medians compared): capture at its
worst, every input captured (``CaptureBelowConfidence`` 1.0) and sent through an uploader that
drops the bytes (so the network is not measured), metrics windows each second; and the peak RSS
of a child that runs them on vs one that runs them off. Target: on >= 0.97x off.

Targets (from the issue): component >= 0.90x raw for .npy, >= 0.80x raw for 224-640 px JPEGs,
peak memory <= 1.2x raw. Ends with a table and one JSON line. The model is exported once into
``bench/out/`` (gitignored); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
SIZES = (224, 320, 480, 640)
for path in (ROOT / "component_src", ROOT):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


# -- model and inputs (parent process) ----------------------------------------------------------


def prepare_model(runtime: str) -> Path:
    """The model package folder for the component (``--model-dir``)."""
    if runtime == "onnx":
        model_dir = OUT / "vgg16"
        onnx_file = model_dir / "model.onnx"
        if not onnx_file.exists():
            export_vgg16(model_dir)
        return model_dir
    model_dir = OUT / "tiny224"
    if not (model_dir / "model" / "compiled.so").exists():
        from stand_ins.neo_model import build_tiny_classifier

        shutil.rmtree(model_dir, ignore_errors=True)
        build_tiny_classifier(model_dir / "model", input_shape=(1, 3, 224, 224), num_classes=10)
        write_metadata(model_dir, "tiny-neo-224", 10)
    return model_dir


def write_metadata(
    model_dir: Path, model_id: str, classes: int, shape: Any = (1, 3, 224, 224)
) -> None:
    metadata = {"schema_version": 1, "model_id": model_id, "input_shape": list(shape)}
    (model_dir / "metadata.json").write_text(json.dumps(metadata))
    (model_dir / "labels.json").write_text(json.dumps([f"class-{i}" for i in range(classes)]))


def export_vgg16(model_dir: Path) -> None:
    import torch
    import torchvision

    print("exporting VGG16 (random weights) to ONNX once ...", file=sys.stderr, flush=True)
    model_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    net = torchvision.models.vgg16(weights=None).eval()
    example = torch.randn(1, 3, 224, 224)
    tmp = model_dir / "export"
    tmp.mkdir(exist_ok=True)
    torch.onnx.export(
        net,
        (example,),
        str(tmp / "model.onnx"),
        input_names=["input0"],
        output_names=["output0"],
        dynamo=False,
        opset_version=17,
    )
    for path in tmp.iterdir():
        path.replace(model_dir / path.name)
    tmp.rmdir()
    write_metadata(model_dir, "vgg16-random", 1000)


def prepare_inputs(count: int, sizes: List[int]) -> Dict[str, Path]:
    """Folders of ``count`` inputs each: ``npy`` and ``jpeg<size>``."""
    from edge_inference.inputs import InputDecoder
    from edge_inference.model import ModelInfo
    from PIL import Image
    from sklearn.datasets import load_sample_images

    root = OUT / f"inputs-{count}"
    sets: Dict[str, Path] = {"npy": root / "npy"}
    sets.update({f"jpeg{size}": root / f"jpeg{size}" for size in sizes})
    if all(folder.is_dir() and len(os.listdir(folder)) == count for folder in sets.values()):
        return sets
    shutil.rmtree(root, ignore_errors=True)
    photos = [Image.fromarray(array) for array in load_sample_images().images]
    decoder = InputDecoder(ModelInfo(model_id="bench"), 10**9)
    for name, folder in sets.items():
        folder.mkdir(parents=True)
        for i in range(count):
            image = photos[i % len(photos)]
            if i % 2:
                image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            if name == "npy":
                tmp = folder / f".{i}.jpg"
                image.save(tmp, "JPEG", quality=90)
                np.save(folder / f"t{i:04d}.npy", decoder.load(tmp))
                tmp.unlink()
                continue
            size = int(name[4:])
            w, h = image.size
            scale = size / min(w, h)
            resized = image.resize((round(w * scale), round(h * scale)), Image.BICUBIC)
            resized.save(folder / f"img{i:04d}.jpg", "JPEG", quality=90)
    return sets


# -- child processes --------------------------------------------------------------------------


def raw_rate(runner: Any, tensors: List[np.ndarray], warmup: int = 2) -> float:
    for tensor in tensors[:warmup]:
        runner.run(tensor)
    start = time.perf_counter()
    for tensor in tensors:
        runner.run(tensor)
    return len(tensors) / (time.perf_counter() - start)


def tensors_for(model_dir: Path, count: int) -> List[np.ndarray]:
    from edge_inference.model import read_metadata

    shape = read_metadata(model_dir).input_shape
    rng = np.random.default_rng(0)
    return [rng.standard_normal(shape).astype(np.float32) for _ in range(count)]


def child_raw(args: argparse.Namespace) -> Dict[str, Any]:
    from edge_inference.model import load_model

    model = load_model(Path(args.model_dir), args.runtime)
    rate = raw_rate(model.runner, tensors_for(Path(args.model_dir), args.images))
    return {"raw_ips": rate}


class CountingPublisher:
    def __init__(self) -> None:
        self.count = 0

    def publish(self, message: Dict[str, Any]) -> None:
        if "error" in message:
            raise SystemExit(f"bench input failed: {message}")
        self.count += 1


def child_component(args: argparse.Namespace) -> Dict[str, Any]:
    from edge_inference.config import Config
    from edge_inference.model import load_model
    from edge_inference.service import InferenceService
    from edge_inference.spool import Spool

    model_dir = Path(args.model_dir)
    model = load_model(model_dir, args.runtime)
    tensors = tensors_for(model_dir, args.images)
    work = OUT / "work"
    results: Dict[str, Any] = {}

    def run_set(folder: Path, prefetch: bool) -> float:
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(folder, work / "input")
        publisher = CountingPublisher()
        service = InferenceService(
            config=Config(
                model_dir=model_dir,
                input_dir=work / "input",
                processed_dir=work / "processed",
                failed_dir=work / "failed",
                runtime=args.runtime,
                settle_seconds=0.0,
                poll_interval=0.01,
            ),
            model=model,
            spool=Spool(work / "state"),
            publisher=publisher,
            stop=threading.Event(),
            prefetch=prefetch,
        )
        start = time.perf_counter()
        service.run(once=True)
        elapsed = time.perf_counter() - start
        assert publisher.count == len(os.listdir(folder)), "not every input was processed"
        return publisher.count / elapsed

    sets = json.loads(args.sets)
    warmup = OUT / "warmup"
    shutil.rmtree(warmup, ignore_errors=True)
    warmup.mkdir(parents=True)
    for name in sorted(os.listdir(sets["npy"]))[:3]:
        shutil.copy(Path(sets["npy"]) / name, warmup / name)
    run_set(warmup, True)  # warm-up: allocator, thread pools, first-run kernels
    shutil.rmtree(warmup)
    for name, folder in sets.items():
        paired_raw = raw_rate(model.runner, tensors)
        results[name] = {
            "raw_ips": paired_raw,
            "component_ips": run_set(Path(folder), True),
            "serial_ips": run_set(Path(folder), False) if args.serial else None,
        }
    shutil.rmtree(work, ignore_errors=True)
    return {"sets": results}


class DroppingUploader:
    def put(self, key: str, body: bytes, content_type: str) -> None:
        return


def child_watch(args: argparse.Namespace) -> Dict[str, Any]:
    """Metrics and capture off vs on, alternating, on the npy set and the first JPEG set."""
    from edge_inference.capture import Capturer
    from edge_inference.config import Config
    from edge_inference.metrics import MetricsReporter
    from edge_inference.model import load_model
    from edge_inference.outbox import Outbox
    from edge_inference.service import InferenceService
    from edge_inference.spool import Spool

    model_dir = Path(args.model_dir)
    model = load_model(model_dir, args.runtime)
    work = OUT / "work-watch"
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.watch_mode]

    def run_set(folder: Path, watched: bool) -> float:
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(folder, work / "input")
        config = Config(
            model_dir=model_dir, input_dir=work / "input", processed_dir=work / "processed",
            failed_dir=work / "failed", runtime=args.runtime, settle_seconds=0.0,
            poll_interval=0.01, capture_below_confidence=1.0, capture_bucket="bench-bucket",
            capture_prefix="captures/bench/", metrics_interval=1.0,
        )  # fmt: skip
        metrics = capture = None
        if watched:
            metrics = MetricsReporter(
                Outbox(work / "state" / "metrics"), CountingPublisher(), interval=1.0,
                keep=1440, thing="bench", input_dir=config.input_dir,
            )  # fmt: skip
            capture = Capturer(
                work / "state" / "captures", config, thing_name="bench",
                uploader_factory=lambda bucket: DroppingUploader(),
            )  # fmt: skip
        publisher = CountingPublisher()
        service = InferenceService(
            config=config, model=model, spool=Spool(work / "state"), publisher=publisher,
            stop=threading.Event(), metrics=metrics, capture=capture,
        )  # fmt: skip
        start = time.perf_counter()
        service.run(once=True)
        elapsed = time.perf_counter() - start
        assert publisher.count == len(os.listdir(folder)), "not every input was processed"
        if watched:
            assert capture is not None and capture.store.ids() == [], "captures left unsent"
        return publisher.count / elapsed

    sets = json.loads(args.sets)
    chosen = {name: Path(folder) for name, folder in list(sets.items())[:2]}
    run_set(chosen["npy"], True)  # warm-up
    rates: Dict[str, Dict[str, List[float]]] = {n: {"off": [], "on": []} for n in chosen}
    for _ in range(args.rounds):
        for name, folder in chosen.items():
            for watched in modes:
                rates[name]["on" if watched else "off"].append(run_set(folder, watched))
    shutil.rmtree(work, ignore_errors=True)
    return {"rates": rates}


class NullRunner:
    """Stands in for the runtime: returns a fixed output at once (inference excluded)."""

    name = "null"

    def __init__(self, classes: int) -> None:
        self.output = np.linspace(0.0, 1.0, classes, dtype=np.float32)[None]

    def run(self, tensor: np.ndarray) -> np.ndarray:
        return self.output


def rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


class SamplingPublisher:
    """Counts results and samples VmRSS after 1,000 of them."""

    def __init__(self) -> None:
        self.count = 0
        self.rss_at_1000: Any = None

    def publish(self, message: Dict[str, Any]) -> None:
        if "error" in message:
            raise SystemExit(f"bench input failed: {message}")
        self.count += 1
        if self.count == 1000:
            self.rss_at_1000 = rss_mb()


def child_backlog(args: argparse.Namespace) -> Dict[str, Any]:
    from edge_inference.config import Config
    from edge_inference.model import LoadedModel, read_metadata
    from edge_inference.service import InferenceService
    from edge_inference.spool import Spool

    count = args.backlog
    model_dir = OUT / "small32"
    model_dir.mkdir(parents=True, exist_ok=True)
    write_metadata(model_dir, "null-32", 10, shape=[1, 3, 32, 32])
    info = read_metadata(model_dir)
    model = LoadedModel(model_dir=model_dir, info=info, labels={}, runner=NullRunner(10))
    work = OUT / "backlog"
    shutil.rmtree(work, ignore_errors=True)
    (work / "input").mkdir(parents=True)
    source = work / "source.npy"
    np.save(source, np.random.default_rng(0).standard_normal(info.input_shape).astype(np.float32))
    for i in range(count):
        os.link(source, work / "input" / f"t{i:05d}.npy")
    publisher = SamplingPublisher()
    service = InferenceService(
        config=Config(
            model_dir=model_dir,
            input_dir=work / "input",
            processed_dir=work / "processed",
            failed_dir=work / "failed",
            runtime="onnx",
            settle_seconds=0.0,
            poll_interval=0.01,
            max_outbox_files=count + 10,
        ),
        model=model,
        spool=Spool(work / "state"),
        publisher=publisher,
        stop=threading.Event(),
    )
    rss_start = rss_mb()
    start = time.perf_counter()
    service.run(once=True)
    elapsed = time.perf_counter() - start
    assert publisher.count == count, f"{publisher.count} of {count} inputs published"
    result = {
        "backlog": count,
        "overhead_ms_per_file": elapsed / count * 1000.0,
        "rss_start_mb": rss_start,
        "rss_after_1000_mb": publisher.rss_at_1000,
        "rss_after_all_mb": rss_mb(),
    }
    shutil.rmtree(work, ignore_errors=True)
    return result


def run_child(
    mode: str, args: argparse.Namespace, model_dir: Path, sets: Dict[str, Path], *extra: str
) -> Any:
    command = [
        sys.executable, str(Path(__file__).resolve()), "--child", mode,
        "--runtime", args.runtime, "--images", str(args.images),
        "--model-dir", str(model_dir), "--sets", json.dumps({k: str(v) for k, v in sets.items()}),
        "--backlog", str(args.backlog), "--rounds", str(args.rounds), *extra,
    ]  # fmt: skip
    if not args.serial:
        command.append("--no-serial")
    env = dict(os.environ, PYTHONPATH=f"{ROOT / 'component_src'}{os.pathsep}{ROOT}")
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{mode} child failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def peak_rss_mb() -> float:
    """This process's peak resident memory. ``VmHWM`` belongs to the process image, whereas
    Linux carries ``ru_maxrss`` over from the parent across fork + exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- report -----------------------------------------------------------------------------------


def watch_report(
    args: argparse.Namespace, model_dir: Path, sets: Dict[str, Path], started: float
) -> None:
    import statistics

    paired = run_child("watch", args, model_dir, sets)
    off = run_child("watch", args, model_dir, sets, "--watch-mode", "off")
    on = run_child("watch", args, model_dir, sets, "--watch-mode", "on")
    model_name = "VGG16 (ONNX Runtime)" if args.runtime == "onnx" else "tiny Neo model (DLR)"
    print(f"\n{model_name}: metrics + capture (every input captured) on vs off, "
          f"{args.images} inputs per set, {args.rounds} rounds, {os.cpu_count()} CPUs")  # fmt: skip
    print(f"{'input set':<12}{'off img/s':>11}{'on img/s':>10}{'ratio':>8}{'target':>8}")
    summary: Dict[str, Any] = {"runtime": args.runtime, "watch": {}}
    ok = True
    for name, rates in paired["rates"].items():
        off_ips, on_ips = statistics.median(rates["off"]), statistics.median(rates["on"])
        ratio = on_ips / off_ips
        ok &= ratio >= 0.97
        print(f"{name:<12}{off_ips:>11.2f}{on_ips:>10.2f}{ratio:>8.3f}{'>=0.97':>8}")
        summary["watch"][name] = {"off_ips": off_ips, "on_ips": on_ips, "ratio": round(ratio, 3)}
    extra = on["peak_rss_mb"] - off["peak_rss_mb"]
    print(f"\npeak RSS: off {off['peak_rss_mb']:.0f} MB, on {on['peak_rss_mb']:.0f} MB "
          f"(+{extra:.1f} MB)")  # fmt: skip
    print(f"target met: {ok}   ({time.perf_counter() - started:.0f} s)")
    summary.update(off_peak_rss_mb=off["peak_rss_mb"], on_peak_rss_mb=on["peak_rss_mb"],
                   extra_rss_mb=round(extra, 1), target_met=ok)  # fmt: skip
    print(json.dumps(summary))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runtime", choices=["onnx", "dlr"], default="onnx")
    parser.add_argument("--images", type=int, default=16, help="inputs per set (default 16)")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="JPEG shorter sides")
    parser.add_argument("--no-serial", dest="serial", action="store_false",
                        help="skip the run without the prefetch thread")  # fmt: skip
    parser.add_argument("--backlog", type=int, default=10_000,
                        help="files waiting for the overhead/RSS run (0 skips)")  # fmt: skip
    parser.add_argument("--watch", action="store_true",
                        help="metrics and capture on vs off instead (issue 15)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=5, help="--watch: off/on rounds per set")
    parser.add_argument("--watch-mode", default="both", help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=["raw", "component", "backlog", "watch"],
                        help=argparse.SUPPRESS)  # fmt: skip
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    parser.add_argument("--sets", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        import logging

        logging.basicConfig(level=logging.WARNING)
        children = {
            "raw": child_raw,
            "component": child_component,
            "backlog": child_backlog,
            "watch": child_watch,
        }
        result = children[args.child](args)
        result["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(result))
        return

    started = time.perf_counter()
    model_dir = prepare_model(args.runtime)
    sets = prepare_inputs(args.images, [int(s) for s in args.sizes.split(",")])
    if args.watch:
        watch_report(args, model_dir, sets, started)
        return
    raw = run_child("raw", args, model_dir, sets)
    component = run_child("component", args, model_dir, sets)

    model_name = "VGG16 (ONNX Runtime)" if args.runtime == "onnx" else "tiny Neo model (DLR)"
    print(f"\n{model_name}, 224x224 input, {args.images} inputs per set, {os.cpu_count()} CPUs")
    print(f"raw runtime alone: {raw['raw_ips']:.2f} images/s\n")
    header = f"{'input set':<12}{'raw img/s':>11}{'component':>11}{'ratio':>8}{'target':>8}"
    if args.serial:
        header += f"{'no prefetch':>13}"
    print(header)
    summary: Dict[str, Any] = {"runtime": args.runtime, "images": args.images, "sets": {}}
    ok = True
    for name, row in component["sets"].items():
        ratio = row["component_ips"] / row["raw_ips"]
        target = 0.90 if name == "npy" else 0.80
        ok &= ratio >= target
        line = f"{name:<12}{row['raw_ips']:>11.2f}{row['component_ips']:>11.2f}{ratio:>8.2f}"
        line += f"{'>=' + format(target, '.2f'):>8}"
        if args.serial:
            line += f"{row['serial_ips']:>13.2f}"
        print(line)
        summary["sets"][name] = dict(row, ratio=round(ratio, 3), target=target)
    memory_ratio = component["peak_rss_mb"] / raw["peak_rss_mb"]
    ok &= memory_ratio <= 1.2
    raw_mb, component_mb = raw["peak_rss_mb"], component["peak_rss_mb"]
    print(
        f"\npeak memory: raw {raw_mb:.0f} MB, component {component_mb:.0f} MB"
        f" (ratio {memory_ratio:.2f}, target <= 1.20)"
    )
    if args.backlog:
        backlog = run_child("backlog", args, model_dir, sets)
        print(
            f"\nwith {backlog['backlog']} files waiting: {backlog['overhead_ms_per_file']:.3f} ms"
            " per file apart from inference; RSS "
            f"{backlog['rss_start_mb']:.0f} MB at start, {backlog['rss_after_1000_mb'] or 0:.0f} MB"
            f" after 1000 files, {backlog['rss_after_all_mb']:.0f} MB after "
            f"{backlog['backlog']} (peak {backlog['peak_rss_mb']:.0f} MB)"
        )
        summary["backlog"] = backlog
    print(f"all targets met: {ok}   ({time.perf_counter() - started:.0f} s)")
    summary.update(
        raw_alone_ips=raw["raw_ips"],
        raw_peak_rss_mb=raw["peak_rss_mb"],
        component_peak_rss_mb=component["peak_rss_mb"],
        memory_ratio=round(memory_ratio, 3),
        targets_met=ok,
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
