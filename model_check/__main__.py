"""``python -m model_check PATH``: check a model you bring before you upload it.

    python -m model_check resnet18/model.tar.gz
    python -m model_check build/my-model --input-shape 1,3,160,160 --model-name pets

Prints what passed, what only SageMaker Neo can check, and the ``-c`` keys that deploy the
model as it is. Exit 0 when every check passed, 2 with one ``model_check: error:`` line naming
the file and the problem otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from model_check.archive import MODEL_ONNX, ModelCheckError, open_model
from model_check.checks import ONLY_NEO, CheckedModel, check_model


def deploy_keys(checked: CheckedModel, uri: str) -> list[str]:
    """The ``-c`` keys that deploy ``checked`` from ``uri``."""
    keys = {"model_artifact_uri": uri, "architecture": checked.name}
    if checked.normalization is not None:
        keys.update(checked.normalization.context())
    shape = ",".join(str(v) for v in checked.input_shape)
    if shape != "1,3,224,224":
        keys["input_shape"] = shape
    if not checked.neo:
        onnx_class = {"onnx": {"thing_group": "<your-group>", "build": "onnx"}}
        keys["device_classes"] = "'" + json.dumps(onnx_class) + "'"
    return [f"-c {key}={value}" for key, value in keys.items()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m model_check",
        description="Check a brought model (model.tar.gz or its folder) as the pipeline will "
        "use it: layout, labels, normalization, name, and that it runs.",
    )
    parser.add_argument("model", type=Path, help="model.tar.gz, or the folder it is made from")
    parser.add_argument(
        "--input-shape",
        default=None,
        help="the stage's input_shape (default: metadata.json's input_shape, else 1,3,224,224)",
    )
    parser.add_argument("--model-name", default=None, help="the model's name (architecture)")
    args = parser.parse_args(argv)
    from app_config import ConfigError
    from app_config.training import parse_input_shape

    shape = None
    try:
        if args.input_shape is not None:
            shape = parse_input_shape(args.input_shape)
    except ConfigError as error:
        print(f"model_check: error: --input-shape: {error}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="model-check-") as scratch:
        try:
            opened = open_model(args.model, Path(scratch) / "unpacked")
            checked = check_model(
                opened,
                input_shape=shape,
                workdir=Path(scratch) / "export",
                given_name=args.model_name,
            )
        except ModelCheckError as error:
            print(f"model_check: error: {error}", file=sys.stderr)
            return 2
    for line in checked.checked:
        print(f"ok   {line}")
    if checked.neo:
        for line in ONLY_NEO:
            print(f"NEO  only Neo can check {line}")
    if not checked.neo:
        print(
            "note no model.pth: neo classes (SageMaker Neo compiles model.pth) cannot build from "
            "it; deploy it to onnx classes (device_classes with build: onnx)"
        )
    if checked.exported_onnx:
        print(
            f"note no {MODEL_ONNX}: neo classes compile model.pth; an onnx class needs "
            f"{MODEL_ONNX} in the archive too"
        )
    print("deploy it with:")
    print("  " + " ".join(deploy_keys(checked, "s3://<bucket>/<key>/model.tar.gz")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
