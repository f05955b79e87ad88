"""Command line: SageMaker hyperparameters and the ``SM_*`` environment variables.

SageMaker passes every hyperparameter as ``--name value`` (strings, so booleans arrive as
``true``/``false``) and describes the container through environment variables
(sagemaker-training-toolkit): ``SM_MODEL_DIR``, ``SM_CHANNEL_<NAME>``, ``SM_OUTPUT_DATA_DIR``.
Parsing errors raise :class:`TrainingInputError`, so they end as one logged line and exit 2.
"""

import argparse
import os
from typing import List, Optional, Tuple

from .errors import TrainingInputError

# Kept in step with quantize.py (which needs numpy; this module only argparse and os, so the
# CDK app can import it at synth).
QUANTIZE_MODES = ("none", "int8")
INT8_FORMATS = ("s8s8", "u8s8", "u8s8-reduce-range")

DEFAULT_CHECKPOINT_DIR = "/opt/ml/checkpoints"
PRETRAINED_MODES = ("auto", "true", "false")
LR_SCHEDULES = ("constant", "cosine")

_TRUE = ("true", "1", "yes", "y", "on")
_FALSE = ("false", "0", "no", "n", "off")


def parse_bool(text):
    """``true``/``false`` (and the usual spellings) as SageMaker passes them."""
    value = str(text).strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def parse_input_shape(text: str) -> Tuple[int, int, int, int]:
    """``"1,3,224,224"`` (brackets and spaces tolerated, as in Neo's input config) -> N,C,H,W."""
    cleaned = str(text).strip().strip("[]()")
    parts = [part.strip() for part in cleaned.split(",")]
    problem = None
    try:
        dims = [int(part) for part in parts]
    except ValueError:
        dims = []
        problem = "not a list of integers"
    if problem is None and len(dims) != 4:
        problem = f"expected 4 dimensions N,C,H,W, got {len(dims)}"
    if problem is None and any(dim <= 0 for dim in dims):
        problem = "every dimension must be a positive integer"
    if problem is None and dims[1] != 3:
        problem = f"the channel dimension must be 3 (RGB), got {dims[1]}"
    if problem is not None:
        raise TrainingInputError(
            f"malformed --input-shape {text!r}: {problem} (example: 1,3,224,224)"
        )
    return dims[0], dims[1], dims[2], dims[3]


def default_resize_shorter(height):
    """The ImageNet convention (resize to 256, crop 224), scaled to the crop height."""
    return round(height * 256.0 / 224.0)


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors become :class:`TrainingInputError`."""

    def error(self, message):
        raise TrainingInputError(message)


def build_parser():
    """The parser; defaults are read from the environment when this is called."""
    env = os.environ.get
    parser = _Parser(description="Fine-tune a torchvision classifier; export TorchScript for Neo.")
    add = parser.add_argument
    # Where SageMaker puts things.
    add("--model-dir", default=env("SM_MODEL_DIR"), help="output: model.pth + labels.json")
    add("--train", default=env("SM_CHANNEL_TRAIN"), help="training channel (image folder)")
    add("--validation", default=env("SM_CHANNEL_VALIDATION"), help="validation channel")
    add("--output-data-dir", default=env("SM_OUTPUT_DATA_DIR"), help="ONNX + metadata output")
    add("--checkpoint-dir", default=DEFAULT_CHECKPOINT_DIR, help="resume/checkpoint folder")
    # Hyperparameters.
    add("--arch", default="vgg16", help="any torchvision classification model name")
    add("--epochs", type=int, default=10)
    add("--batch-size", type=int, default=32)
    add("--lr", type=float, default=0.001)
    add("--momentum", type=float, default=0.9)
    add("--weight-decay", type=float, default=0.0)
    add("--lr-schedule", default="constant", type=str.lower, choices=LR_SCHEDULES)
    add("--pretrained", default="auto", type=str.lower, choices=PRETRAINED_MODES)
    add("--freeze-features", type=parse_bool, default=False)
    add("--input-shape", default="1,3,224,224", help="N,C,H,W the model is traced at")
    add("--resize-shorter", type=int, default=None, help="default: round(H * 256 / 224)")
    add("--val-fraction", type=float, default=0.0, help="held out from train if no validation")
    add("--horizontal-flip", type=parse_bool, default=False, help="train-time augmentation")
    add("--seed", type=int, default=0)
    add("--num-workers", type=int, default=0)
    add("--export-onnx", type=parse_bool, default=False)
    # int8 (edge_training/quantize.py): after the FP32 ONNX export, with an accuracy gate.
    add("--quantize", default="none", type=str.lower, choices=QUANTIZE_MODES)
    add("--int8-format", default="s8s8", type=str.lower, choices=INT8_FORMATS)
    add("--max-int8-top1-drop", type=float, default=1.0, help="points of top-1 int8 may lose")
    add("--int8-calibration-images", type=int, default=64, help="training images to calibrate")
    return parser


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse and validate; ``args.input_shape`` becomes a tuple of 4 ints."""
    args = build_parser().parse_args(argv)
    args.input_shape = parse_input_shape(args.input_shape)
    height, width = args.input_shape[2], args.input_shape[3]
    if args.resize_shorter is None:
        args.resize_shorter = default_resize_shorter(height)
    if args.resize_shorter < max(height, width):
        raise TrainingInputError(
            f"--resize-shorter {args.resize_shorter} is smaller than the crop {height}x{width}"
        )
    if not args.model_dir:
        raise TrainingInputError("no model directory: pass --model-dir or set SM_MODEL_DIR")
    if args.export_onnx and not args.output_data_dir:
        raise TrainingInputError("--export-onnx true needs --output-data-dir or SM_OUTPUT_DATA_DIR")
    if args.epochs < 0 or args.batch_size < 1 or args.num_workers < 0:
        raise TrainingInputError("--epochs must be >= 0, --batch-size >= 1, --num-workers >= 0")
    if args.quantize == "int8" and not args.export_onnx:
        raise TrainingInputError("--quantize int8 needs --export-onnx true (it quantizes that)")
    if not 0.0 <= args.max_int8_top1_drop <= 100.0:  # also refuses nan
        raise TrainingInputError(
            f"--max-int8-top1-drop must be 0-100 points, got {args.max_int8_top1_drop}"
        )
    if args.int8_calibration_images < 1:
        raise TrainingInputError("--int8-calibration-images must be >= 1")
    if not 0.0 <= args.val_fraction < 1.0:
        raise TrainingInputError(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
    return args
