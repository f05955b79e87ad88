"""``python -m device_sim``: run the simulated Greengrass core device on a cloud assembly.

    python -m device_sim --assembly cdk.out --stage dev --platform linux/amd64 --root /tmp/gg

Exit status: 0 when every step passed; 1 when a step was denied or failed (the step and the
reason are printed); 2 for a bad argument (one line naming it).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from device_sim.assembly import AssemblyError, Env, onnx_model_folder
from device_sim.deployment import DEFAULT_NUCLEUS_VERSION, PLATFORMS
from device_sim.device import Device, DeviceOptions, StepFailed, root_problem
from device_sim.samples import write_sample_images


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m device_sim",
        description="Simulated Greengrass V2 core device: provision, deploy, download, install, "
        "run, reboot offline and run again, on a synthesized cloud assembly. No AWS call is made.",
    )
    parser.add_argument(
        "--assembly",
        type=Path,
        default=Path("cdk.out"),
        help="cloud assembly folder (default: cdk.out)",
    )
    parser.add_argument("--stage", default="dev", help="stage to deploy (default: dev)")
    parser.add_argument(
        "--platform",
        default="linux/amd64",
        help=f"device platform: {', '.join(sorted(PLATFORMS))} (default: linux/amd64)",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=Path("build/device-sim"),
        help="the device's Greengrass root, deleted and recreated by each run: a new or empty "
        "folder, or one an earlier run made (it holds .device-sim-root); default: build/device-sim",
    )
    parser.add_argument(
        "--device-name",
        default="sim-1",
        help="fills <device-name> in the stack's InstallerCommand: letters, digits, _ - :, "
        "at most 128 (default: sim-1)",
    )
    parser.add_argument(
        "--nucleus-version",
        default=DEFAULT_NUCLEUS_VERSION,
        help=f"the device's nucleus (default: {DEFAULT_NUCLEUS_VERSION})",
    )
    parser.add_argument("--region", default=Env.region, help=f"simulated region ({Env.region})")
    parser.add_argument("--account", default=Env.account, help="simulated account id")
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="Neo output folder to package (default: a tiny Neo-layout model "
        "that the real libdlr.so runs)",
    )
    parser.add_argument(
        "--onnx-model",
        type=Path,
        default=None,
        help="folder (or .tar.gz) with model.onnx and labels.json at its root: the training "
        "stand-in's ONNX export, or the model you bring (required when the stage has an ONNX "
        "device class)",
    )
    parser.add_argument(
        "--brought-model",
        type=Path,
        default=None,
        help="your model.tar.gz (or its folder) for a stage synthesized with "
        "model_artifact_uri: the simulated account holds it there instead of a stand-in, and "
        "it is checked first (python -m model_check)",
    )
    parser.add_argument(
        "--thing-group",
        default=None,
        help="provision into this thing group (a device class's group or canary group; "
        "default: the InstallerCommand's)",
    )
    parser.add_argument(
        "--images",
        type=Path,
        default=None,
        help="input files for the inference component (default: two generated PNG images)",
    )
    parser.add_argument(
        "--interpolate-component-configuration",
        choices=("true", "false"),
        default="false",
        help="the nucleus option of that name (default: false, as the nucleus)",
    )
    parser.add_argument(
        "--wheelhouse",
        type=Path,
        default=None,
        help="first boot only: pip installs from this folder (PIP_NO_INDEX)",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=90.0,
        help="seconds to wait for the results of each boot (default: 90)",
    )
    parser.add_argument("--no-reboot", action="store_true", help="skip the offline reboot")
    parser.add_argument(
        "--resolve-only",
        action="store_true",
        help="stop after download and interpolation (no lifecycle)",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    error = _check(args)
    if error:
        print(f"device_sim: error: {error}", file=sys.stderr)
        return 2
    if args.onnx_model is not None:
        try:
            unpacked = args.root.parent / f".{args.root.name}-onnx-model"
            args.onnx_model = onnx_model_folder(args.onnx_model, unpacked)
        except AssemblyError as error:
            print(f"device_sim: error: {error}", file=sys.stderr)
            return 2
    brought = None
    if args.brought_model is not None:
        from device_sim.assembly import load_stage
        from device_sim.brought import read_brought_model
        from device_sim.device import model_input_shape

        shape = model_input_shape(load_stage(args.assembly, args.stage))
        try:
            brought = read_brought_model(
                args.brought_model,
                args.root.parent / f".{args.root.name}-brought-model",
                (shape[0], shape[1], shape[2], shape[3]),
            )
        except AssemblyError as error:
            print(f"device_sim: error: {error}", file=sys.stderr)
            return 2
    images = args.images
    if images is None and not args.resolve_only:
        images = write_sample_images(args.root.parent / f".{args.root.name}-images")
    options = DeviceOptions(
        assembly=args.assembly,
        stage=args.stage,
        root=args.root,
        platform=args.platform,
        device_name=args.device_name,
        nucleus_version=args.nucleus_version,
        env=Env(account=args.account, region=args.region),
        model_dir=args.model,
        onnx_model=args.onnx_model,
        brought_model=brought,
        thing_group=args.thing_group,
        images=images,
        interpolate_component_configuration=args.interpolate_component_configuration == "true",
        wheelhouse=args.wheelhouse,
        wait_seconds=args.wait,
        reboot=not args.no_reboot,
        run_lifecycle=not args.resolve_only,
    )
    try:
        device = Device(options)
    except StepFailed as failure:
        print(f"device_sim: error: {failure.reason}", file=sys.stderr)
        return 2
    report = device.run()
    for step, ok, detail in report.steps:
        print(f"{'ok  ' if ok else 'FAIL'} {step}{': ' + detail if detail else ''}")
    for note in report.notes:
        print(f"note {note}")
    for denied in report.denied:
        print(f"DENY {denied}")
    print(f"published {len(report.published)} messages to {args.root / 'mqtt' / 'published.jsonl'}")
    if not report.ok:
        failed = report.failure or next(StepFailed(s, d) for s, ok, d in report.steps if not ok)
        print(f"device_sim: FAILED at {failed.step}: {failed.reason}", file=sys.stderr)
        return 1
    return 0


# AWS IoT's ThingName shape (botocore data/iot/2015-05-28/service-2.json, "ThingName"):
# pattern [a-zA-Z0-9:_-]+, min 1, max 128. The device name is part of the thing name.
THING_NAME = re.compile(r"[a-zA-Z0-9:_-]+")
THING_NAME_MAX = 128
NUCLEUS_VERSION = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")
# Region names as botocore's endpoints.json lists them (us-east-1, ap-southeast-5,
# us-gov-west-1, cn-north-1, eu-isoe-west-1, ...): letters and hyphens, then a number.
REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]+")


def _check(args: argparse.Namespace) -> str | None:
    if not args.assembly.is_dir():
        return f"--assembly {args.assembly}: no such folder (run cdk synth first)"
    if not (args.assembly / "manifest.json").is_file():
        return f"--assembly {args.assembly}: not a cloud assembly (no manifest.json)"
    problem = root_problem(args.root)
    if problem:
        return f"--root {args.root}: {problem}"
    if args.platform not in PLATFORMS:
        return f"--platform {args.platform!r}: supported: {', '.join(sorted(PLATFORMS))}"
    # A nucleus reports its own version as a full X.Y.Z (the installer's versioned archive
    # releases/greengrass-<version>.zip); the resolver compares it strictly (semver4j STRICT).
    if not NUCLEUS_VERSION.fullmatch(args.nucleus_version):
        return f"--nucleus-version {args.nucleus_version!r}: expected X.Y.Z, e.g. 2.18.2"
    if not REGION.fullmatch(args.region):
        return f"--region {args.region!r}: not an AWS Region name (e.g. eu-west-1)"
    if args.brought_model is not None and args.onnx_model is not None:
        return "--brought-model and --onnx-model: give one (the brought archive holds the model)"
    if args.model is not None and not args.model.is_dir():
        return f"--model {args.model}: no such folder"
    if (
        args.onnx_model is not None
        and args.onnx_model.is_dir()
        and not (args.onnx_model / "model.onnx").is_file()
    ):
        return f"--onnx-model {args.onnx_model}: no model.onnx in that folder"
    if args.images is not None and not args.images.is_dir():
        return f"--images {args.images}: no such folder"
    if args.wheelhouse is not None and not args.wheelhouse.is_dir():
        return f"--wheelhouse {args.wheelhouse}: no such folder"
    if not THING_NAME.fullmatch(args.device_name):
        return (
            f"--device-name {args.device_name!r}: a thing name may hold only letters, digits, "
            "_, - and : (AWS IoT ThingName pattern [a-zA-Z0-9:_-]+)"
        )
    if len(args.device_name) > THING_NAME_MAX:
        return (
            f"--device-name: {args.device_name[:20]}... is {len(args.device_name)} characters; "
            f"a thing name has at most {THING_NAME_MAX}"
        )
    if args.wait <= 0:
        return f"--wait {args.wait}: must be positive"
    if not args.account.isdigit() or len(args.account) != 12:
        return f"--account {args.account!r}: expected 12 digits"
    try:
        from device_sim.assembly import load_stage

        load_stage(args.assembly, args.stage)
    except AssemblyError as error:
        return str(error)
    return None


if __name__ == "__main__":
    sys.exit(main())
