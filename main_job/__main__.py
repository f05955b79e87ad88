"""``python -m main_job [--images DIR] [--out DIR] [--model PATH]``: the main job's local
pipeline (see :mod:`main_job.pipeline`). Exit 0 when every photo was classified, 1 when some
failed or a device step failed, 2 when the job could not run (one line on stderr says why)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from device_contract import topics
from main_job.errors import MainJobError
from main_job.fleet import capture_lines, cloudwatch_lines, metrics_lines, retrain_commands
from main_job.inputs import user_images
from main_job.int8 import int8_lines
from main_job.outdir import out_problem
from main_job.own_model import quick_check
from main_job.pipeline import STEPS, STEPS_OWN_MODEL, run
from main_job.progress import Progress
from main_job.report import TOPIC_PREFIX, outcome, subscriber_lines, table
from main_job.synth import STAGE
from model_check import ONLY_NEO


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m main_job",
        description="Classify real photos with a pretrained model on the simulated core device.",
    )
    parser.add_argument(
        "--images",
        type=Path,
        default=None,
        help="classify the images in this folder (default: photos shipped in packages)",
    )
    parser.add_argument(
        "--out",
        dest="out_given",
        type=Path,
        default=None,
        help="output folder (default: out, in the current folder)",
    )
    parser.set_defaults(out=Path("out"))
    parser.add_argument(
        "--digits-epochs",
        type=int,
        default=5,
        help="epochs of the short digits training run (default: 5)",
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="your own model: a model.tar.gz, or the folder it is made from, with a traced "
        "model.pth and/or model.onnx at its root, labels.json, optionally metadata.json "
        "(README: Bring an already-trained model); default: the pretrained EfficientNet-Lite0",
    )
    parser.add_argument(
        "--model-name",
        default=None,
        help="your model's name (the stage's architecture key; default: metadata.json's arch, "
        "else the file or folder name)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--check-args",
        action="store_true",
        help="only check the arguments (scripts/main.sh does, before its long steps)",
    )
    args = parser.parse_args(argv)
    # scripts/main.sh cds to the repository first and passes the caller's folder here:
    # relative paths the user gave mean the folder they typed them in
    caller = Path(os.environ.get("MAIN_JOB_CWD") or Path.cwd())
    if args.images is not None:
        args.images = caller / args.images
    if args.out_given is not None:
        args.out = caller / args.out_given
    if args.model is not None:
        args.model = caller / args.model
    try:
        if args.digits_epochs < 1:
            raise MainJobError("--digits-epochs must be at least 1")
        if args.images is not None:
            user_images(args.images)
        problem = out_problem(args.out, args.images, args.model)
        if problem is not None:
            raise MainJobError(f"--out {args.out}: {problem}")
        if args.model is not None:
            quick_check(args.model, args.model_name, args.out.parent / f".{args.out.name}-check")
        elif args.model_name is not None:
            raise MainJobError("--model-name names the model given with --model; give --model")
    except MainJobError as error:
        print(f"main_job: error: {error}", file=sys.stderr)
        return 2
    if args.check_args:
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # the simulator raises its IPC log to INFO
        handler.setLevel(logging.WARNING)
    start = time.monotonic()
    try:
        job = run(
            args.out,
            images=args.images,
            digits_epochs=args.digits_epochs,
            progress=Progress(
                STEPS if args.model is None else STEPS_OWN_MODEL, enabled=not args.no_progress
            ),
            model=args.model,
            model_name=args.model_name,
        )
    except MainJobError as error:
        print(f"main_job: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # an output folder that cannot be written, a full disk
        where = error.filename if error.filename is not None else args.out
        print(f"main_job: error: {where}: {error.strerror or error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("main_job: interrupted", file=sys.stderr)
        return 130  # 128 + SIGINT, as a shell reports a job that Ctrl-C stopped
    print()
    print(table(job.results))
    print()
    subscribed = topics.subscription_filter(TOPIC_PREFIX)
    print(f"What a subscriber to {subscribed} received ({len(job.messages)} messages):")
    for line in subscriber_lines(job.messages):
        print(f"  {line}")
    print()
    if job.digits is not None:
        print(f"digits training (proves training works): {job.digits.metrics}")
    if job.own is not None:
        print(f"your model {job.own.checked.name}: checked, packaged and run on the device")
        if job.own.checked.neo:
            for line in ONLY_NEO:
                print(f"  only Neo can check {line}")
        for note in job.own.notes:
            print(f"  note: {note}")
        print(f"  deploy it: upload {job.own.archive}, then")
        print(f"    {job.own.deploy_command()}")
    if job.int8 is not None:
        print("int8 beside FP32 (the inference component, same photos, one after the other):")
        for line in int8_lines(job.int8):
            print(f"  {line}")
        print()
    if job.fleet is not None:
        print("Device metrics (one window per minute; the fleet stack turns them into CloudWatch):")
        for line in metrics_lines(job.fleet) or ["no window closed while the device ran"]:
            print(f"  {line}")
        if job.fleet.cloudwatch_root is not None:
            print(
                "In CloudWatch (the fleet stack's IoT rule and Lambda, in the simulated account; "
                f"{job.fleet.cloudwatch_root}):"
            )
            for line in cloudwatch_lines(job.fleet):
                print(f"  {line}")
        captured = capture_lines(job.fleet)
        print(f"Captured for retraining ({len(captured)}, uploaded to the simulated S3):")
        for line in captured or ["nothing (every top-1 at or above CaptureBelowConfidence)"]:
            print(f"  {line}")
        for line in job.fleet.refused:
            print(f"  upload refused: {line}", file=sys.stderr)
        print()
    for step in job.steps_failed:
        print(f"device step failed: {step}", file=sys.stderr)
    print(f"Output folder: {job.out}")
    kept = "model.tar.gz, model/, onnx/"
    if job.own is not None:
        kept = "model.tar.gz: the archive to upload" + (
            ", your files plus model.onnx" if job.own.checked.exported_onnx else ", your files"
        )
    print(f"  model:      {job.out / 'model'}  ({kept})")
    print(f"  package:    {job.package_zip or 'none (the device got no package)'}")
    print(f"  device:     {job.out / 'device'}  (mqtt/published.jsonl, logs/)")
    print(f"  results:    {job.out / 'results.jsonl'}")
    print(f"  report:     {job.report_html}")
    print(f"done in {time.monotonic() - start:.0f} s")
    if job.fleet is not None:
        for line in retrain_commands(job.fleet, STAGE):
            print(line)
    code, why = outcome(job.results, job.steps_failed)
    print(why)
    return code


if __name__ == "__main__":
    sys.exit(main())
