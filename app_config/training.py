"""The training section: the model's inputs, the training job, and its hyperparameters, which
``train.py``'s own parser checks at synth."""

from __future__ import annotations

import functools
import importlib
import importlib.util
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from app_config.errors import ConfigError
from app_config.parse import optional_s3, string_mapping
from edge_constructs.props import DeviceClass, TrainingConfig
from edge_constructs.training_job.ecr_image import ImageUriError, parse_ecr_image_uri


def parse_training(
    raw: Mapping[str, Any],
    values: Mapping[str, Any],
    device_classes: tuple[DeviceClass, ...],
) -> TrainingConfig:
    """The training job from the merged raw mapping and the parsed plain keys (``values``)."""
    max_runtime = values["training_max_runtime_seconds"]
    max_wait = values["training_max_wait_seconds"]
    if values["training_use_spot"] and max_wait < max_runtime:
        raise ConfigError(
            "training_max_wait_seconds",
            raw["training_max_wait_seconds"],
            f"with spot training it must be >= training_max_runtime_seconds ({max_runtime})",
        )
    image_uri = str(raw["training_image_uri"] or "").strip()
    if image_uri:
        try:
            parse_ecr_image_uri(image_uri)
        except ImageUriError as error:
            raise ConfigError("training_image_uri", image_uri, str(error)) from None
    hyperparameters = string_mapping("hyperparameters", raw["hyperparameters"])
    for name in INT8_HYPERPARAMETERS:
        if name in hyperparameters:
            raise ConfigError(
                f"hyperparameters.{name}",
                hyperparameters[name],
                "set by the pipeline: a device class's quantize and int8_format, and "
                "max_int8_top1_drop",
            )
    hyperparameters = {
        **hyperparameters,
        **int8_hyperparameters(raw, hyperparameters, device_classes),
    }
    reserved = sorted(k for k in hyperparameters if k.startswith("sagemaker_"))
    if reserved or "arch" in hyperparameters or "input-shape" in hyperparameters:
        raise ConfigError(
            "hyperparameters",
            raw["hyperparameters"],
            "arch, input-shape and sagemaker_* are set by the pipeline (use architecture "
            "and input_shape)",
        )
    check_hyperparameters(
        hyperparameters, values["architecture"], parse_input_shape(raw["input_shape"])
    )
    training = TrainingConfig(
        instance_type=values["training_instance_type"],
        instance_count=values["training_instance_count"],
        volume_gb=values["training_volume_gb"],
        max_runtime_seconds=max_runtime,
        use_spot=values["training_use_spot"],
        max_wait_seconds=max_wait,
        image_uri=image_uri,
        data_uri=optional_s3("training_data_uri", raw["training_data_uri"]),
        validation_uri=optional_s3("validation_data_uri", raw["validation_data_uri"]),
        hyperparameters=hyperparameters,
        run_id=values["run_id"],
    )
    onnx_classes = [c.name for c in device_classes if c.build == "onnx"]
    if onnx_classes and hyperparameters.get("export-onnx", "true").lower() != "true":
        raise ConfigError(
            "hyperparameters",
            raw["hyperparameters"],
            f"export-onnx must stay true: device class {onnx_classes[0]} runs the training "
            "job's ONNX export",
        )
    if training.validation_uri and not training.data_uri:
        raise ConfigError(
            "validation_data_uri",
            training.validation_uri,
            "a validation channel needs a training channel (training_data_uri)",
        )
    return training


# The training script's own command line (training_src/edge_training/config.py) checks the
# hyperparameters at synth, so a value train.py would refuse fails here and not an hour into a
# training job. SageMaker passes each hyperparameter as ``--name value``
# (sagemaker-training-toolkit, README "hyperparameters"). The module imports only argparse
# and os, so synth needs no torch.
TRAINING_SRC = Path(__file__).resolve().parents[1] / "training_src"
_TRAINING_PACKAGE = "_edge_training_at_synth"
# Set by SageMaker (SM_MODEL_DIR, SM_CHANNEL_*, SM_OUTPUT_DATA_DIR, the checkpoint config) or by
# the pipeline (architecture, input_shape): not hyperparameters a user sets.
SAGEMAKER_ARGUMENTS = ("model-dir", "train", "validation", "output-data-dir", "checkpoint-dir")
PIPELINE_HYPERPARAMETERS = ("arch", "input-shape")
# Set from the device classes (quantize, int8_format) and max_int8_top1_drop.
INT8_HYPERPARAMETERS = ("quantize", "int8-format", "max-int8-top1-drop")


def int8_formats() -> tuple[str, ...]:
    """train.py's ``--int8-format`` choices (training_src/edge_training/config.py)."""
    return tuple(_training_config_module().INT8_FORMATS)


def int8_hyperparameters(
    raw: Mapping[str, Any], hyperparameters: Mapping[str, str], classes: tuple[DeviceClass, ...]
) -> dict[str, str]:
    """What the int8 classes add to the training job's hyperparameters; {} without one.

    One training job builds one int8 model (``model.int8.onnx`` beside ``model.onnx`` in
    ``output/output.tar.gz``), calibrated on the training channel and gated on held-out
    images (a validation channel, or ``val-fraction``): so the classes share one format, the
    stage trains (no ``model_artifact_uri``) on a training channel, and images are held out."""
    int8 = [c for c in classes if c.int8]
    if not int8:
        return {}
    first = int8[0]
    for other in int8[1:]:
        if other.int8_format != first.int8_format:
            raise ConfigError(
                f"device_classes.{other.name}.int8_format",
                other.int8_format,
                f"one training job builds one int8 model: class {first.name} uses "
                f"{first.int8_format}",
            )
    where = f"device_classes.{first.name}.quantize"
    if str(raw["model_artifact_uri"] or "").strip():
        raise ConfigError(
            where,
            "int8",
            "the training job builds the int8 model; with model_artifact_uri nothing is trained "
            "(bring model.onnx quantized yourself in an onnx class instead)",
        )
    if not str(raw["training_data_uri"] or "").strip():
        raise ConfigError(
            where, "int8", "int8 is calibrated on the training channel: set training_data_uri"
        )
    held_out = str(raw["validation_data_uri"] or "").strip() or (
        float(hyperparameters.get("val-fraction", "0") or 0) > 0
    )
    if not held_out:
        raise ConfigError(
            where,
            "int8",
            "the int8 accuracy gate runs on held-out images: set validation_data_uri or "
            "hyperparameters val-fraction (e.g. 0.1)",
        )
    text = str(raw["max_int8_top1_drop"]).strip()
    try:
        drop = float(text)
    except ValueError:
        drop = math.nan
    if not 0.0 <= drop <= 100.0:  # nan fails too
        raise ConfigError("max_int8_top1_drop", raw["max_int8_top1_drop"], "0-100 (points)")
    return {"quantize": "int8", "int8-format": first.int8_format, "max-int8-top1-drop": repr(drop)}


@functools.cache
def _training_config_module() -> Any:
    """``training_src/edge_training/config.py``, imported under a private package name."""
    package_dir = TRAINING_SRC / "edge_training"
    spec = importlib.util.spec_from_file_location(
        _TRAINING_PACKAGE,
        package_dir / "__init__.py",
        submodule_search_locations=[str(package_dir)],
    )
    if spec is None or spec.loader is None:  # pragma: no cover - the file is in the repo
        raise RuntimeError(f"cannot load {package_dir}")
    package = importlib.util.module_from_spec(spec)
    sys.modules[_TRAINING_PACKAGE] = package
    spec.loader.exec_module(package)
    return importlib.import_module(f"{_TRAINING_PACKAGE}.config")


def check_hyperparameters(
    hyperparameters: Mapping[str, str], architecture: str, input_shape: tuple[int, ...]
) -> None:
    """Parse the hyperparameters as train.py will, with the arguments SageMaker adds."""
    module = _training_config_module()
    known = sorted(
        option[2:]
        for action in module.build_parser()._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    )
    for name, value in hyperparameters.items():
        if name in SAGEMAKER_ARGUMENTS:
            raise ConfigError(
                f"hyperparameters.{name}", value, "set by SageMaker for the training job"
            )
        if name not in known:
            settable = [k for k in known if k not in SAGEMAKER_ARGUMENTS + PIPELINE_HYPERPARAMETERS]
            raise ConfigError(
                f"hyperparameters.{name}",
                value,
                f"train.py has no --{name}; it takes {', '.join(settable)}",
            )
    argv = ["--model-dir", "/opt/ml/model", "--output-data-dir", "/opt/ml/output/data"]
    for name, value in {
        "export-onnx": "true",
        **hyperparameters,
        "arch": architecture,
        "input-shape": ",".join(str(d) for d in input_shape),
    }.items():
        argv += [f"--{name}", value]
    try:
        module.parse_args(argv)
    except module.TrainingInputError as error:  # from argparse (its _Parser) or its checks
        raise ConfigError(
            "hyperparameters", dict(hyperparameters), f"train.py refuses them: {error}"
        ) from None


def parse_channel_triple(key: str, value: object, *, positive: bool) -> tuple[float, float, float]:
    """``"0.485,0.456,0.406"`` or a list -> one value per RGB channel, on the 0-1 scale."""
    allowed = "three numbers (R,G,B) on the 0-1 scale" + (", each > 0" if positive else "")
    parts = value if isinstance(value, (list, tuple)) else str(value).replace(" ", "").split(",")
    try:
        values = tuple(float(p) for p in parts)
    except (TypeError, ValueError):
        raise ConfigError(key, value, allowed) from None
    if len(values) != 3 or not all(math.isfinite(v) and -1.0 <= v <= 1.0 for v in values):
        raise ConfigError(key, value, allowed)
    if positive and not all(v > 0 for v in values):
        raise ConfigError(key, value, allowed)
    return (values[0], values[1], values[2])


def parse_input_shape(value: object) -> tuple[int, int, int, int]:
    """``"1,3,224,224"`` or ``[1, 3, 224, 224]`` -> a batch-1, 3-channel NCHW shape."""
    key = "input_shape"
    allowed = "expected N,C,H,W with N=1, C=3 and 32 <= H, W <= 4096, e.g. 1,3,224,224"
    parts = value if isinstance(value, (list, tuple)) else str(value).replace(" ", "").split(",")
    try:
        dims = tuple(int(p) for p in parts)
    except (TypeError, ValueError):
        raise ConfigError(key, value, allowed) from None
    if len(dims) != 4 or dims[0] != 1 or dims[1] != 3:
        raise ConfigError(key, value, allowed)
    if not all(32 <= d <= 4096 for d in dims[2:]):
        raise ConfigError(key, value, allowed)
    if dims[2] != dims[3]:
        # The packaged metadata.json, the training script and the device each derive
        # resize_shorter (256/224 of the crop) from the crop; only a square crop makes them
        # agree, so a non-square shape would fail in training or on the device, not here.
        raise ConfigError(key, value, "a square input (H = W), e.g. 1,3,224,224")
    return (dims[0], dims[1], dims[2], dims[3])
