"""Wall time of a full-app synth against an empty CDK app, measured in the same run.

    .venv/bin/python bench/synth.py [--runs 3] [--stage all]

Each measurement is a fresh Python process (as `cdk synth` runs the app), so both include the
jsii/Node start-up; the ratio shows what this app adds on top of CDK's fixed cost.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

EMPTY_APP = """
import aws_cdk as cdk
cdk.App(outdir={outdir!r}).synth()
"""

FULL_APP = """
import json, sys
sys.path.insert(0, {root!r})
import app
context = json.load(open({cdk_json!r}))["context"]
context["stage"] = {stage!r}
app.create_app(context=context, outdir={outdir!r}).synth()
"""


def run_once(code: str) -> float:
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)
    return time.perf_counter() - start


def measure(template: str, runs: int, **fields: str) -> list[float]:
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as outdir:
            times.append(run_once(template.format(outdir=outdir, **fields)))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stage", default="all", help="stage to synthesize (default: all)")
    args = parser.parse_args()
    empty = measure(EMPTY_APP, args.runs)
    full = measure(
        FULL_APP,
        args.runs,
        root=str(ROOT),
        cdk_json=str(ROOT / "cdk.json"),
        stage=args.stage,
    )
    empty_s, full_s = statistics.median(empty), statistics.median(full)
    print(f"empty CDK app synth : median {empty_s:6.2f} s  runs {[round(t, 2) for t in empty]}")
    print(
        f"full app synth ({args.stage}): median {full_s:6.2f} s  runs {[round(t, 2) for t in full]}"
    )
    print(f"ratio full/empty    : {full_s / empty_s:6.2f}x")
    print(
        json.dumps(
            {
                "empty_s": round(empty_s, 3),
                "full_s": round(full_s, 3),
                "ratio": round(full_s / empty_s, 3),
                "stage": args.stage,
                "runs": args.runs,
            }
        )
    )


if __name__ == "__main__":
    main()
