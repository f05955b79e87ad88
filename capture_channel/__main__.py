"""``python -m capture_channel``: labelled captures -> a training channel, and the commands that
retrain on it.

    python -m capture_channel --folders labelled/ --base data/train --out channel-2027-01
    python -m capture_channel --manifest output.manifest --objects s3-copy/ --out channel-2027-01
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from capture_channel.build import ChannelError, Labelled, build, from_folders, from_manifest
from capture_channel.build import read_labels as read_labels


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m capture_channel",
        description="Turn labelled captures into a training channel (<out>/<class>/<image>).",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--folders", type=Path, help="labelled captures, a folder per class")
    source.add_argument(
        "--manifest",
        type=Path,
        help="a SageMaker Ground Truth image-classification output manifest",
    )
    p.add_argument(
        "--objects",
        type=Path,
        help="with --manifest: a local copy of the buckets (<objects>/<bucket>/<key>); "
        "default: download with your AWS credentials",
    )
    p.add_argument("--base", type=Path, help="the current training channel, merged in")
    p.add_argument(
        "--labels", type=Path, help="the deployed model's labels.json (names new classes)"
    )
    p.add_argument("--min-per-class", type=int, default=1, help="refuse thinner classes")
    p.add_argument("--out", type=Path, required=True, help="the new channel (must not exist)")
    p.add_argument("--stage", default="dev", help="the stage the printed commands retrain")
    p.add_argument(
        "--bucket",
        default="<artifact bucket>",
        help="the stage's artifact bucket, for the commands",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.objects is not None and args.manifest is None:
            raise ChannelError("--objects goes with --manifest")
        if args.min_per_class < 1:
            raise ChannelError(f"--min-per-class must be at least 1, got {args.min_per_class}")
        sources: list[Labelled] = list(
            from_folders(args.folders)
            if args.folders is not None
            else from_manifest(args.manifest, args.objects)
        )
        known = read_labels(args.labels) if args.labels is not None else []
        summary = build(
            sources,
            args.out,
            base=args.base,
            known_labels=known,
            min_per_class=args.min_per_class,
        )
    except ChannelError as error:
        print(f"capture_channel: error: {error}", file=sys.stderr)
        return 2
    total = sum(summary.counts.values())
    print(f"wrote {total} images in {len(summary.counts)} classes to {args.out}:")
    for label, count in summary.counts.items():
        print(f"  {label}: {count}")
    if summary.duplicates:
        print(f"{summary.duplicates} duplicate image(s) kept once")
    for line in summary.left_out:
        print(f"left out: {line}")
    if summary.new_classes:
        print(
            f"new classes (not in {args.labels}): {', '.join(summary.new_classes)}: the retrained "
            "model's output layer changes; devices get the new labels with the new model"
        )
    if summary.missing_classes:
        print(
            f"WARNING: classes of {args.labels} with no image in this channel: "
            f"{', '.join(summary.missing_classes)}: a model retrained on it alone will not know "
            "them (add --base with the current training channel)"
        )
    prefix = f"s3://{args.bucket}/training/channels/{args.out.name}/"
    print("\nNext: upload the channel, retrain on it, then canary and promote:")
    print(f"  aws s3 sync {args.out} {prefix}")
    print(f"  cdk deploy --all -c stage={args.stage} -c training_data_uri={prefix}")
    print(f"  python -m rollout.promote --stage {args.stage} --class <class>   # after the canary")
    return 0


if __name__ == "__main__":
    sys.exit(main())
