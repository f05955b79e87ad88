"""Record a device class's canary release as the release its whole fleet runs.

    cdk synth -c stage=dev                                  # the commit the canary runs
    python -m rollout.promote --stage dev --class jetson    # writes cdk.json
    git diff cdk.json && cdk diff dev/Pipeline              # the fleet deployment moves
    git commit cdk.json -m "Promote jetson"                 # reviewed like any change

It reads the canary deployment from the synthesized cloud assembly (``--assembly``, default
``cdk.out``): every component it pins, with the configuration it merges, and writes them under
``context.releases.<stage>.<class>`` in ``cdk.json``. The next synth deploys exactly those
versions to the class's thing group. Rolling back is reverting that change: the component
versions stay in Greengrass (they are retained), so an earlier release stays deployable.

Before it writes, it checks the canary (``rollout/canary.py``): it refuses while one of the
canary ring's fleet alarms is in ALARM, or the canary release has run for less than
--min-canary-hours or processed fewer than --min-canary-images inputs; --force promotes anyway.
Without AWS credentials it says plainly that it could not check, and promotes
(--require-check refuses instead).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from device_contract import names
from rollout import canary as gate
from rollout.assembly import templates as assembly_templates
from stacks import synth_stamp

# Keep in step with edge_constructs.greengrass.construct's RING_METADATA and DEPLOYMENT_TYPE
# (a test checks them); not imported, so this command needs no CDK.
RING_METADATA = "EdgeAiRing"
DEPLOYMENT_TYPE = "Custom::GreengrassDeployment"
# app_config.releases.PROMOTED_PREFIX (a test checks they agree).
PROMOTED_PREFIX = "publish_topic_prefix"
#: The inference component's name ends with one of these (device_contract.names).
INFERENCE_PARTS = (f".{names.inference_part(True)}", f".{names.inference_part(False)}")


class PromoteError(Exception):
    """Nothing was written; the message says why."""


class Refused(Exception):
    """The canary check refused; nothing was written (the check printed why)."""


def find_canary(assembly: Path, stage: str, device_class: str) -> Mapping[str, Any]:
    """The canary deployment resource of ``device_class`` in ``stage``'s templates."""
    # promote writes cdk.json itself, so a cdk.json newer than the assembly is expected here
    stale = synth_stamp.problem(assembly, check_cdk_json=False)
    if stale is not None:
        raise PromoteError(stale)
    templates = assembly_templates(assembly)
    if not templates:
        raise PromoteError(f"no templates under {assembly}: run {_synth(assembly, stage)}")
    rings: dict[str, set[str]] = {}
    stages: set[str] = set()
    for path in templates:
        try:
            resources = json.loads(path.read_text()).get("Resources", {})
        except (OSError, ValueError, AttributeError) as error:
            raise PromoteError(
                f"{path}: not a readable CloudFormation template ({error})"
            ) from None
        for resource in resources.values():
            ring = (resource.get("Metadata") or {}).get(RING_METADATA)
            if resource.get("Type") != DEPLOYMENT_TYPE or not isinstance(ring, dict):
                continue
            stages.add(str(ring.get("stage")))
            if ring.get("stage") != stage:
                continue
            rings.setdefault(str(ring.get("class")), set()).add(str(ring.get("ring")))
            if ring.get("class") == device_class and ring.get("ring") == "canary":
                return resource  # type: ignore[no-any-return]
    if device_class in rings:
        raise PromoteError(
            f"device class {device_class} has no canary ring (canary_thing_group): its "
            "deployment already carries every change"
        )
    if stage not in stages:
        there = ", ".join(sorted(stages)) or "none"
        raise PromoteError(
            f"stage {stage} is not in {assembly} (stages there: {there}): run "
            f"{_synth(assembly, stage)} first"
        )
    known = ", ".join(sorted(rings)) or "none"
    raise PromoteError(
        f"no device class {device_class} in stage {stage} under {assembly} (classes: {known})"
    )


def _synth(assembly: Path, stage: str) -> str:
    """The command that synthesizes ``stage`` into ``assembly`` (app.py: context ``stage``)."""
    output = "" if assembly == Path("cdk.out") else f" --output {assembly}"
    return f"`cdk synth -c stage={stage}{output}`"


def _kind(value: object) -> str:
    """What a JSON value is, in words."""
    if isinstance(value, bool):
        return "a boolean"
    kinds = {dict: "an object", list: "an array", str: "a string", int: "a number"}
    kinds[float] = "a number"
    return kinds.get(type(value), "null")


def read_cdk_json(path: Path) -> dict[str, Any]:
    """``cdk.json`` as an object; :class:`PromoteError` naming the file otherwise."""
    try:
        text = path.read_text()
    except OSError as error:
        raise PromoteError(f"{path}: cannot read it: {error.strerror or error}") from None
    try:
        document = json.loads(text)
    except ValueError as error:
        raise PromoteError(f"{path}: not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise PromoteError(f"{path}: the top level is {_kind(document)}; expected an object")
    return document


def _object_at(document: dict[str, Any], keys: Sequence[str], path: Path) -> dict[str, Any]:
    """``document[k1][k2]...``, made an empty object where missing; PromoteError where some
    level is not an object (a hand edit), naming the key path."""
    node = document
    for depth, key in enumerate(keys):
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            where = ".".join(keys[: depth + 1])
            raise PromoteError(f"{path}: {where} is {_kind(child)}; expected an object")
        node = child
    return node


def release_of(deployment: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """component -> {"version", "merge"?} of a synthesized deployment; the inference component
    also records the topic prefix it publishes under (``publish_topic_prefix``, from the
    deployment's ring metadata), so that synth can refuse the release once the stage's prefix
    moves (app_config/releases.py)."""
    prefix = ((deployment.get("Metadata") or {}).get(RING_METADATA) or {}).get("topic_prefix")
    release: dict[str, dict[str, Any]] = {}
    for name, spec in sorted(deployment["Properties"]["Components"].items()):
        pin: dict[str, Any] = {"version": spec["ComponentVersion"]}
        merge = (spec.get("ConfigurationUpdate") or {}).get("Merge")
        if merge is not None:
            if not isinstance(merge, str):
                raise PromoteError(
                    f"{name}: its configuration holds CloudFormation references, which a "
                    "release cannot record"
                )
            pin["merge"] = json.loads(merge)
        if isinstance(prefix, str) and name.endswith(INFERENCE_PARTS):
            pin[PROMOTED_PREFIX] = prefix
        release[name] = pin
    return release


def promote(
    assembly: Path,
    cdk_json: Path,
    stage: str,
    device_class: str,
    allowed: Callable[[Mapping[str, Any]], bool] = lambda deployment: True,
) -> list[str]:
    """Write the canary's release into ``cdk_json``; return the lines describing the change.
    ``allowed`` (the canary check) is asked once everything else is known to be writable; it
    gets the canary deployment resource, and :class:`Refused` follows a no."""
    deployment = find_canary(assembly, stage, device_class)
    release = release_of(deployment)
    document = read_cdk_json(cdk_json)
    releases = _object_at(document, ("context", "releases", stage), cdk_json)
    previous: Mapping[str, Any] = releases.get(device_class) or {}
    if not isinstance(previous, dict):
        where = f"context.releases.{stage}.{device_class}"
        raise PromoteError(f"{cdk_json}: {where} is {_kind(previous)}; expected an object")
    if not allowed(deployment):
        raise Refused()
    releases[device_class] = release
    cdk_json.write_text(json.dumps(document, indent=2) + "\n")
    lines = []
    for name in sorted(set(previous) | set(release)):
        pin = previous.get(name)
        old = pin.get("version", "-") if isinstance(pin, dict) else "-"
        new = (release.get(name) or {}).get("version", "-")
        change = "unchanged" if old == new else f"{old} -> {new}"
        lines.append(f"  {name}: {change}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rollout.promote",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,  # keeps the example's lines
    )
    parser.add_argument("--stage", required=True, help="stage, e.g. dev")
    parser.add_argument("--class", dest="device_class", required=True, help="device class")
    parser.add_argument("--assembly", type=Path, default=Path("cdk.out"), help="cdk.out")
    parser.add_argument("--cdk-json", type=Path, default=Path("cdk.json"), help="cdk.json")
    parser.add_argument(
        "--min-canary-hours",
        type=_non_negative(float),
        default=gate.DEFAULT_MIN_HOURS,
        help="refuse unless the canary release was deployed at least this long ago "
        f"(default {gate.DEFAULT_MIN_HOURS:g})",
    )
    parser.add_argument(
        "--min-canary-images",
        type=_non_negative(int),
        default=gate.DEFAULT_MIN_IMAGES,
        help="refuse unless the canary ring processed at least this many inputs since "
        f"(default {gate.DEFAULT_MIN_IMAGES})",
    )
    parser.add_argument("--region", help="the stage's AWS region (default: the AWS CLI's)")
    parser.add_argument(
        "--force", action="store_true", help="promote even when the canary check refuses"
    )
    parser.add_argument(
        "--require-check",
        action="store_true",
        help="refuse when the canary cannot be checked (no credentials, no alarms)",
    )
    args = parser.parse_args(argv)
    try:
        lines = promote(
            args.assembly,
            args.cdk_json,
            args.stage,
            args.device_class,
            allowed=lambda deployment: _gate_allows(args, deployment),
        )
    except Refused:
        return 1
    except (PromoteError, OSError, json.JSONDecodeError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"Promoted the {args.device_class} canary release of stage {args.stage}:")
    print("\n".join(lines))
    print(f"Review with `git diff {args.cdk_json}` and `cdk diff`; roll back by reverting it.")
    return 0


def _non_negative(kind: type) -> Any:
    """A finite number >= 0 of ``kind`` (``nan`` would make every comparison false and turn
    the check off; ``inf`` would make it refuse for ever)."""
    what = "a whole number" if kind is int else "a number"

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if value < 0:
            raise argparse.ArgumentTypeError(f"{text} is negative")
        return value

    return parse


def _gate_allows(args: argparse.Namespace, deployment: Mapping[str, Any]) -> bool:
    """Check the canary; print what was checked and why it refuses. False: do not promote."""
    try:
        canary = gate.find_canary(args.assembly, deployment, args.stage, args.device_class)
        cloudwatch, greengrass, iot_arn = gate.aws_clients(args.region)
        now = gate.utc_now()
        checked, reasons = gate.check(
            canary,
            cloudwatch=cloudwatch,
            greengrass=greengrass,
            iot_arn=iot_arn,
            now=now,
            min_hours=args.min_canary_hours,
            min_images=args.min_canary_images,
        )
    except gate.CannotCheck as error:
        print(f"The {args.device_class} canary was NOT checked: {error}.", file=sys.stderr)
        if args.require_check and not args.force:
            print("Refused (--require-check); --force promotes unchecked.", file=sys.stderr)
            return False
        if args.require_check:
            print("--force overrides --require-check.", file=sys.stderr)
        print("Promoting unchecked: look at its alarms and numbers yourself.", file=sys.stderr)
        return True
    except gate.CheckFailed as error:
        print(f"The {args.device_class} canary check failed: {error}", file=sys.stderr)
        if args.force:
            print("Promoting anyway (--force).", file=sys.stderr)
            return True
        print("Refused; --force promotes anyway.", file=sys.stderr)
        return False
    print(f"Checked the {args.device_class} canary of stage {args.stage}:")
    print("\n".join(checked))
    if not reasons:
        return True
    print(
        "It may not be promoted yet:" if not args.force else "Promoting anyway (--force):",
        file=sys.stderr,
    )
    for reason in reasons:
        print(f"  - {reason}", file=sys.stderr)
    if args.force:
        return True
    print("Fix it or wait; --force promotes anyway.", file=sys.stderr)
    return False


if __name__ == "__main__":
    sys.exit(main())
