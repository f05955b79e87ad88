"""Synth wall time: an empty CDK app, then this app with one stage and 1, 2 and 4 device classes.

    .venv/bin/python bench/synth.py [--runs 3] [--profile]

Each measurement is a fresh Python process (as `cdk synth` runs the app), so every figure
includes the jsii/Node start-up; the ratios show what this app adds on top of CDK's fixed cost.
Ratios use the fastest run of each (on a shared machine the slow runs measure the neighbours);
medians are printed too.
Targets (issue 10): one class within 1.5x the empty app; each added class at most 1 s.
``--profile`` prints where the 4-class synth spends its time (cProfile, cumulative).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The baseline is an empty app with the same App settings as app.py: aws-cdk-lib's built-in
# CloudFormation validation off (app.py says why). With CDK's defaults, that plugin's WASM
# engine is built even for an app with no stack; EMPTY_APP_DEFAULTS shows that cost.
EMPTY_APP = """
import aws_cdk as cdk
cdk.App(outdir={outdir!r}, builtin_cloud_formation_validation=False).synth()
"""
EMPTY_APP_DEFAULTS = """
import aws_cdk as cdk
cdk.App(outdir={outdir!r}).synth()
"""

APP = """
import json, sys
sys.path.insert(0, {root!r})
import app
context = json.load(open({cdk_json!r}))["context"]
context["stage"] = "dev"
context["device_classes"] = {classes!r}
app.create_app(context=context, outdir={outdir!r}).synth()
"""

CLASSES = {
    "gateway": {"thing_group": "BenchGateways", "neo_target_platform": "LINUX/X86_64"},
    "jetson": {
        "thing_group": "BenchJetsons",
        "neo_target_device": "jetson_nano",
        "canary_thing_group": "BenchJetsonsCanary",
    },
    "onnx": {"thing_group": "BenchOnnx", "build": "onnx"},
    "pi": {"thing_group": "BenchPis", "neo_target_device": "rasp4b"},
}


CPU_TIMES: dict[str, list[float]] = {}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(code: str, label: str) -> float:
    """Wall seconds of one synth; its CPU seconds (Python + Node) go to CPU_TIMES[label]: on a
    loaded machine CPU time is the steadier figure."""
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    cpu_before = _children_cpu()
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - start
    CPU_TIMES.setdefault(label, []).append(_children_cpu() - cpu_before)
    return wall


def measure(label: str, template: str, runs: int, **fields: object) -> list[float]:
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as outdir:
            times.append(run_once(template.format(outdir=outdir, **fields), label))
    return times


def app_code(count: int) -> dict[str, object]:
    classes = dict(list(CLASSES.items())[:count])
    return {"root": str(ROOT), "cdk_json": str(ROOT / "cdk.json"), "classes": classes}


def profile() -> None:
    import cProfile
    import pstats

    with tempfile.TemporaryDirectory() as outdir:
        code = APP.format(outdir=outdir, **app_code(4))
        profiler = cProfile.Profile()
        profiler.enable()
        exec(compile(code, "<bench app>", "exec"), {})  # our own template, formatted above
        profiler.disable()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="profile the 4-class synth")
    args = parser.parse_args()
    if args.profile:
        profile()
        return
    rows = {"empty CDK app": measure("empty CDK app", EMPTY_APP, args.runs)}
    for count in (1, 2, 4):
        label = f"1 stage, {count} class{'es' if count > 1 else ''}"
        rows[label] = measure(label, APP, args.runs, **app_code(count))
    defaults = min(measure("empty, CDK defaults", EMPTY_APP_DEFAULTS, args.runs))
    fastest = {name: min(times) for name, times in rows.items()}
    empty = fastest["empty CDK app"]
    for name, times in rows.items():
        print(
            f"{name:<22}: fastest {fastest[name]:6.2f} s  ({fastest[name] / empty:4.2f}x empty)"
            f"  median {statistics.median(times):6.2f} s  runs {[round(t, 2) for t in times]}"
            f"  cpu {min(CPU_TIMES[name]):5.2f} s"
        )
    one, two, four = (fastest[k] for k in list(fastest)[1:])
    per_class = max(two - one, (four - two) / 2)
    cpu_empty, cpu_one = (min(CPU_TIMES[k]) for k in list(rows)[:2])
    print(
        f"one class / empty      : {one / empty:6.2f}x   (target <= 1.5x; CPU time: "
        f"{cpu_one / cpu_empty:.2f}x)"
    )
    print(f"(empty app with CDK's default built-in validation: {defaults:.2f} s)")
    cpu_two, cpu_four = (min(CPU_TIMES[k]) for k in list(rows)[2:])
    cpu_per_class = max(cpu_two - cpu_one, (cpu_four - cpu_two) / 2)
    print(
        f"cost of an added class : {per_class:6.2f} s   (target <= 1 s; CPU time: "
        f"{cpu_per_class:.2f} s)"
    )
    print(
        json.dumps(
            {
                "empty_s": round(empty, 3),
                "one_class_s": round(one, 3),
                "two_classes_s": round(two, 3),
                "four_classes_s": round(four, 3),
                "ratio_one_class": round(one / empty, 3),
                "cpu_ratio_one_class": round(cpu_one / cpu_empty, 3),
                "per_added_class_s": round(per_class, 3),
                "cpu_per_added_class_s": round(cpu_per_class, 3),
                "runs": args.runs,
            }
        )
    )


if __name__ == "__main__":
    main()
