"""Typed, validated configuration of the CDK app.

`app.py` is the only place that reads CDK context; it calls :func:`load_config` once and passes
the resulting :class:`PipelineConfig` down. Every value a user can get wrong is checked here and
fails synth with a :class:`ConfigError` that names the key, the value and what is allowed.

Where a value comes from, lowest precedence first:
1. the defaults in :data:`DEFAULTS` (documented in the README);
2. the ``pipeline`` object in ``cdk.json`` context;
3. the stage's overrides, ``stages.<name>`` in ``cdk.json`` context;
4. ``-c key=value`` on the command line (strings; parsed like everything else).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import math
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_constructs.greengrass.public_components import (
    LOG_MANAGER,
    LOG_MANAGER_PIN,
    NUCLEUS,
    VARIANT_DLR_PIN,
    admits,
    parse_version,
)
from edge_constructs.greengrass.recipes import MIN_NUCLEUS_VERSION, NEO_ARCHITECTURES
from edge_constructs.training_job.ecr_image import ImageUriError, parse_ecr_image_uri

# Neo target devices (SageMaker CreateCompilationJob `TargetDevice`) grouped by kind. Edge
# devices accept PyTorch 1.7/1.8 only; cloud `ml_*` instances a wider set (SageMaker developer
# guide, "Supported Frameworks" for Neo edge devices and cloud instances:
# https://docs.aws.amazon.com/sagemaker/latest/dg/neo-supported-devices-edge-frameworks.html).
NEO_EDGE_DEVICES = frozenset(
    {
        "lambda",
        "jetson_tx1",
        "jetson_tx2",
        "jetson_nano",
        "jetson_xavier",
        "rasp3b",
        "rasp4b",
        "imx8qm",
        "imx8mplus",
        "deeplens",
        "rk3399",
        "rk3288",
        "aisage",
        "sbe_c",
        "qcs605",
        "qcs603",
        "sitara_am57x",
        "amba_cv2",
        "amba_cv22",
        "amba_cv25",
        "x86_win32",
        "x86_win64",
        "coreml",
    }
)
NEO_CLOUD_DEVICES = frozenset(
    {
        "ml_m4",
        "ml_m5",
        "ml_m6g",
        "ml_c4",
        "ml_c5",
        "ml_c6g",
        "ml_p2",
        "ml_p3",
        "ml_g4dn",
        "ml_inf1",
        "ml_inf2",
        "ml_trn1",
        "ml_eia2",
    }
)
EDGE_PYTORCH_VERSIONS = ("1.7", "1.8")
CLOUD_PYTORCH_VERSIONS = ("1.4", "1.5", "1.6", "1.7", "1.8", "1.12", "1.13", "2.0")
PLATFORM_OS = ("LINUX", "ANDROID")
PLATFORM_ARCH = ("X86_64", "X86", "ARM64", "ARM_EABI", "ARM_EABIHF")
PLATFORM_ACCELERATOR = ("INTEL_GRAPHICS", "MALI", "NVIDIA", "NNA")
RUNTIME_COMPONENTS = ("bundled", "variant.DLR")
BUILDS = ("neo", "onnx")
# Greengrass platform architectures (recipe `Platform.architecture`) an ONNX class may name.
ONNX_ARCHITECTURES = ("amd64", "aarch64")
#: The class made of the single-target keys; its components keep the single-target names.
DEFAULT_CLASS = "default"
# Keys of one entry of `device_classes` (a subset of the single-target keys, plus build/arch).
CLASS_KEYS = (
    "thing_group",
    "build",
    "neo_target_device",
    "neo_target_platform",
    "neo_compiler_options",
    "runtime_component",
    "platform_architecture",
    "canary_thing_group",
)
UPDATE_POLICIES = ("NOTIFY_COMPONENTS", "SKIP_NOTIFY_COMPONENTS")
# CloudFormation WaitCondition waits at most 12 h; keep a margin for the signal to arrive.
MAX_TRAINING_WAIT_SECONDS = 43_200 - 1_800
# Compilation waits inside one custom-resource call, which must answer within an hour.
MAX_COMPILATION_SECONDS = 3_000
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653)
# Instance types the demo core device may use: x86_64 (the default Neo target is LINUX/X86_64)
# with at least 2 GiB of memory (the nucleus JVM plus the inference component). Memory in GiB
# from the Amazon EC2 instance-type specifications,
# https://docs.aws.amazon.com/ec2/latest/instancetypes/gp.html (general purpose) and
# https://docs.aws.amazon.com/ec2/latest/instancetypes/co.html (compute optimized).
DEMO_DEVICE_INSTANCE_MEMORY_GIB = {
    "t3.small": 2,
    "t3.medium": 4,
    "t3.large": 8,
    "t3.xlarge": 16,
    "t3a.small": 2,
    "t3a.medium": 4,
    "t3a.large": 8,
    "m5.large": 8,
    "m6i.large": 8,
    "m7i.large": 8,
    "c5.large": 4,
    "c6i.large": 4,
    "c7i.large": 4,
}
DEMO_DEVICE_MIN_MEMORY_GIB = 2

DEFAULTS: dict[str, Any] = {
    "prefix": "edge-ai",
    "component_namespace": "com.example.edgeai",
    "thing_group": "EdgeAiCoreDevices",
    "architecture": "vgg16",
    "neo_target_device": "",
    "neo_target_platform": "LINUX/X86_64",
    "neo_compiler_options": "",
    "pytorch_version": "1.8",
    "input_shape": "1,3,224,224",
    # The model's input normalization, (x / 255 - mean) / std per RGB channel, written into the
    # package's metadata.json for the device. ImageNet's statistics (torchvision's models);
    # a brought model trained otherwise names its own (EfficientNet-Lite: 127/255, 128/255).
    "input_mean": "0.485,0.456,0.406",
    "input_std": "0.229,0.224,0.225",
    "training_instance_type": "ml.m5.xlarge",
    "training_instance_count": 1,
    "training_volume_gb": 30,
    "training_max_runtime_seconds": 10_800,
    "training_use_spot": False,
    "training_max_wait_seconds": 21_600,
    "training_image_uri": "",
    "training_data_uri": "",
    "validation_data_uri": "",
    "hyperparameters": {"epochs": "10", "batch-size": "32", "lr": "0.001", "pretrained": "true"},
    "model_artifact_uri": "",
    "run_id": "1",
    "compilation_max_runtime_seconds": 900,
    "runtime_component": "bundled",
    "canary_thing_group": "",
    "device_classes": {},
    "variant_dlr_version": VARIANT_DLR_PIN.version,
    "log_manager_version": LOG_MANAGER_PIN.version,
    "nucleus_version": "",
    "log_retention_days": 30,
    "inference_top_k": 5,
    "publish_topic_prefix": "edge-ai",
    "deployment_timeout_minutes": 60,
    "rollout_max_per_minute": 50,
    "abort_failure_threshold_percent": 10,
    "abort_min_executed_things": 5,
    "component_update_policy": "NOTIFY_COMPONENTS",
    "component_update_timeout_seconds": 60,
    "noncurrent_version_expiration_days": 90,
    "demo_device": False,
    "demo_device_instance_type": "t3.medium",
    "demo_device_class": "",
}


class ConfigError(ValueError):
    """A configuration value a user got wrong; the message names key, value and what is allowed."""

    def __init__(self, key: str, value: object, allowed: str) -> None:
        super().__init__(f"invalid configuration {key}={value!r}: {allowed}")
        self.key = key


@dataclass(frozen=True)
class NeoTarget:
    """Where Neo compiles for: a named device, or an OS/arch(/accelerator) platform."""

    device: str | None = None
    os: str | None = None
    arch: str | None = None
    accelerator: str | None = None

    @property
    def is_cloud(self) -> bool:
        return self.device is not None and self.device.startswith("ml_")

    @property
    def slug(self) -> str:
        """A short name for resource names and logs, e.g. ``jetson_nano`` or ``linux-x86_64``."""
        if self.device:
            return self.device
        parts = [self.os or "", self.arch or ""] + ([self.accelerator] if self.accelerator else [])
        return "-".join(parts).lower()


@dataclass(frozen=True)
class TrainingConfig:
    instance_type: str
    instance_count: int
    volume_gb: int
    max_runtime_seconds: int
    use_spot: bool
    max_wait_seconds: int
    image_uri: str
    data_uri: str
    validation_uri: str
    hyperparameters: Mapping[str, str]
    run_id: str


@dataclass(frozen=True)
class DeploymentConfig:
    timeout_minutes: int
    rollout_max_per_minute: int
    abort_failure_threshold_percent: int
    abort_min_executed_things: int
    component_update_policy: str
    component_update_timeout_seconds: int


@dataclass(frozen=True)
class DemoDeviceConfig:
    """The optional EC2 demo core device (stack ``<prefix>-<stage>-demo-device``)."""

    enabled: bool
    instance_type: str
    #: The device class it joins (default: the first), and the group it joins: the class's
    #: canary group when it has one (where the latest change goes), else the class's group.
    device_class: str = ""
    thing_group: str = ""


@dataclass(frozen=True)
class ComponentPin:
    """One component of a promoted release: its exact version and the configuration to merge."""

    version: str
    merge: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class DeviceClass:
    """A kind of device: where it is (thing groups), how its model is built, what it runs.

    name: letters and digits; part of the component names of every class but ``default``.
    thing_group: the fleet's thing group.
    build: ``neo`` (Neo compiles for ``neo_target``, devices run DLR) or ``onnx`` (the training
        job's ONNX export, devices run ONNX Runtime).
    neo_target: the Neo target (``neo`` builds only).
    neo_compiler_options: Neo's OutputConfig.CompilerOptions, or None.
    runtime: ``bundled`` (our DLR venv), ``variant.DLR`` (the public component) or
        ``onnxruntime`` (our ONNX Runtime venv).
    architecture: the Greengrass platform architecture (``amd64``, ``aarch64``, ``arm``), or
        None when the Neo target does not say (the manifests then match any Linux).
    canary_thing_group: the canary ring ("" = none: every change goes to the whole class).
    release: the promoted release the rest of the class runs (canary classes only; None =
        nothing promoted yet, so the fleet gets no deployment from this stack).
    """

    name: str
    thing_group: str
    build: str
    neo_target: NeoTarget | None
    neo_compiler_options: dict[str, Any] | None
    runtime: str
    architecture: str | None
    canary_thing_group: str = ""
    release: Mapping[str, ComponentPin] | None = None

    @property
    def dlr(self) -> bool:
        return self.build == "neo"


@dataclass(frozen=True)
class PipelineConfig:
    """Everything the stacks need, validated. Built by :func:`load_config`."""

    stage: str
    prefix: str
    component_namespace: str
    architecture: str
    pytorch_version: str
    input_shape: tuple[int, int, int, int]
    input_mean: tuple[float, float, float]
    input_std: tuple[float, float, float]
    training: TrainingConfig
    model_artifact_uri: str
    compilation_max_runtime_seconds: int
    device_classes: tuple[DeviceClass, ...]
    variant_dlr_version: str
    log_manager_version: str
    nucleus_version: str
    log_retention_days: int
    inference_top_k: int
    publish_topic_prefix: str
    deployment: DeploymentConfig
    noncurrent_version_expiration_days: int
    demo_device: DemoDeviceConfig = DemoDeviceConfig(enabled=False, instance_type="t3.medium")

    @property
    def trains(self) -> bool:
        """False when the user brings an already-trained model (``model_artifact_uri``)."""
        return not self.model_artifact_uri

    @property
    def thing_groups(self) -> tuple[str, ...]:
        """Every thing group the classes name (fleets and canaries), in class order."""
        groups: list[str] = []
        for device_class in self.device_classes:
            groups.append(device_class.thing_group)
            if device_class.canary_thing_group:
                groups.append(device_class.canary_thing_group)
        return tuple(groups)


# ---------------------------------------------------------------------------------------------
# Parsing helpers: each takes the raw value (a string from `-c`, or a JSON value from cdk.json)

_PREFIX_RE = re.compile(r"^[a-z][a-z0-9-]{0,18}[a-z0-9]$")
_THING_GROUP_RE = re.compile(r"^[a-zA-Z0-9:_-]{1,128}$")
_NAMESPACE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)+$")
_S3_URI_RE = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$")
_INSTANCE_RE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
# Component and nucleus versions: semver MAJOR.MINOR.PATCH, "non-negative integers, and MUST NOT
# contain leading zeroes" (semver.org 2.0.0, item 2); Greengrass component versions are semver
# (https://docs.aws.amazon.com/greengrass/v2/developerguide/component-recipe-reference.html,
# ComponentVersion).
_VERSION_RE = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
_TOPIC_RE = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
S3_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
# The device publishes on <publish_topic_prefix>/<thing name>/predictions. AWS IoT Core topics
# hold at most 7 forward slashes and 256 bytes (AWS IoT Core quotas, "Message broker and
# protocol limits": "Maximum number of slashes in topic and topic filter", "Topic size"); a thing
# name has at most 128 characters (botocore iot ThingName).
TOPIC_MAX_SLASHES = 7
TOPIC_MAX_BYTES = 256
TOPIC_SUFFIX_MAX = len("/") + 128 + len("/predictions")


def _int(key: str, value: object, *, minimum: int = 1, maximum: int | None = None) -> int:
    if isinstance(value, bool):
        raise ConfigError(key, value, "expected an integer")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ConfigError(key, value, "expected an integer") from None
    if number < minimum or (maximum is not None and number > maximum):
        upper = f" and at most {maximum}" if maximum is not None else ""
        raise ConfigError(key, value, f"must be at least {minimum}{upper}")
    return number


def _bool(key: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    raise ConfigError(key, value, "expected true or false")


def _choice(key: str, value: object, allowed: tuple[str, ...] | frozenset[str]) -> str:
    text = str(value).strip()
    if text not in allowed:
        raise ConfigError(key, value, f"allowed: {', '.join(sorted(allowed))}")
    return text


def _matching(key: str, value: object, pattern: re.Pattern[str], allowed: str) -> str:
    text = str(value).strip()
    if not pattern.match(text):
        raise ConfigError(key, value, allowed)
    return text


def _topic_prefix(value: object) -> str:
    text = _matching(
        "publish_topic_prefix",
        value,
        _TOPIC_RE,
        "MQTT topic levels of letters, digits, _ and -, separated by /",
    )
    if text.count("/") + 2 > TOPIC_MAX_SLASHES:
        raise ConfigError(
            "publish_topic_prefix",
            value,
            f"the device publishes on <prefix>/<thing>/predictions, and AWS IoT allows "
            f"{TOPIC_MAX_SLASHES} slashes in a topic: at most {TOPIC_MAX_SLASHES - 2} here",
        )
    if len(text.encode()) + TOPIC_SUFFIX_MAX > TOPIC_MAX_BYTES:
        raise ConfigError(
            "publish_topic_prefix",
            value,
            f"with a thing name of up to 128 characters the topic would pass AWS IoT's "
            f"{TOPIC_MAX_BYTES} bytes: at most {TOPIC_MAX_BYTES - TOPIC_SUFFIX_MAX} here",
        )
    return text


def _optional_s3(key: str, value: object) -> str:
    text = str(value or "").strip()
    if text and not _S3_URI_RE.match(text):
        raise ConfigError(key, value, "expected empty or an s3://bucket/key URI")
    return text


def _json_object(key: str, value: object) -> Mapping[str, Any]:
    """A JSON object, given as one (cdk.json) or as its text (``-c key='{...}'``)."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError:
            raise ConfigError(key, value, "expected a JSON object of strings") from None
    if not isinstance(value, Mapping):
        raise ConfigError(key, value, "expected a JSON object of strings")
    return value


def _mapping(key: str, value: object) -> dict[str, str]:
    """A JSON object of strings (numbers and booleans as text); ``null`` drops the entry."""
    value = _json_object(key, value)
    result: dict[str, str] = {}
    for name, item in value.items():
        if item is None:
            continue
        if not isinstance(name, str) or isinstance(item, (dict, list)):
            raise ConfigError(key, value, "expected a JSON object of strings")
        result[name] = str(item).lower() if isinstance(item, bool) else str(item)
    return result


# The training script's own command line (training_src/edge_training/config.py) checks the
# hyperparameters at synth, so a value train.py would refuse fails here and not an hour into a
# training job. SageMaker passes each hyperparameter as ``--name value``
# (sagemaker-training-toolkit, README "hyperparameters"). The module imports only argparse
# and os, so synth needs no torch.
TRAINING_SRC = Path(__file__).resolve().parent / "training_src"
_TRAINING_PACKAGE = "_edge_training_at_synth"
# Set by SageMaker (SM_MODEL_DIR, SM_CHANNEL_*, SM_OUTPUT_DATA_DIR, the checkpoint config) or by
# the pipeline (architecture, input_shape): not hyperparameters a user sets.
SAGEMAKER_ARGUMENTS = ("model-dir", "train", "validation", "output-data-dir", "checkpoint-dir")
PIPELINE_HYPERPARAMETERS = ("arch", "input-shape")


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


def _check_variant_dlr_nucleus(nucleus_version: str) -> None:
    """variant.DLR declares a nucleus range that stops below today's nucleus; a deployment
    that resolves another minor nucleus than the device runs, without naming the nucleus,
    fails (see edge_constructs/greengrass/public_components.py)."""
    allowed = VARIANT_DLR_PIN.nucleus_range or ""
    if not nucleus_version:
        raise ConfigError(
            "nucleus_version",
            "",
            f"must be set with runtime_component=variant.DLR: variant.DLR declares nucleus "
            f"{allowed}, which excludes the nucleus new devices install; pin one in that range "
            "(and >= 2.6.0) or use runtime_component=bundled",
        )
    if not admits(allowed, nucleus_version):
        raise ConfigError(
            "nucleus_version",
            nucleus_version,
            f"is outside variant.DLR's nucleus range {allowed}; pin one in it or use "
            "runtime_component=bundled",
        )


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


# Neo requires CompilerOptions for NVIDIA accelerators (botocore sagemaker service model,
# OutputConfig.CompilerOptions: "It is required for NVIDIA accelerators"; NVIDIA options
# gpu-code, trt-ver, cuda-ver). The requirement is TargetPlatform-specific: a named device
# (TargetDevice, e.g. jetson_nano) carries its GPU, CUDA and TensorRT versions itself.
NVIDIA_COMPILER_OPTIONS = ("gpu-code", "trt-ver", "cuda-ver")
# The same model text spells gpu-code as gpu_code once; neither belongs to another target.
NVIDIA_ONLY_OPTIONS = (*NVIDIA_COMPILER_OPTIONS, "gpu_code")
# Named Neo devices with an NVIDIA GPU (the Jetson boards; P2/P3/G4dn instances).
NEO_NVIDIA_DEVICES = frozenset(
    {"jetson_tx1", "jetson_tx2", "jetson_nano", "jetson_xavier", "ml_p2", "ml_p3", "ml_g4dn"}
)


def parse_compiler_options(
    value: object, target: NeoTarget, key_prefix: str = ""
) -> dict[str, Any] | None:
    """``neo_compiler_options``: a JSON object passed to Neo as OutputConfig.CompilerOptions."""
    key = f"{key_prefix}neo_compiler_options"
    options: object = value
    if isinstance(value, str):
        try:
            options = json.loads(value) if value.strip() else None
        except json.JSONDecodeError:
            raise ConfigError(key, value, "expected a JSON object") from None
    if options is not None and not isinstance(options, Mapping):
        raise ConfigError(key, value, "expected a JSON object")
    if target.accelerator == "NVIDIA":
        missing = [k for k in NVIDIA_COMPILER_OPTIONS if not options or k not in options]
        if missing:
            raise ConfigError(
                key,
                value,
                f"required for the NVIDIA platform target {target.slug}: Neo needs "
                f"{', '.join(NVIDIA_COMPILER_OPTIONS)} (missing {', '.join(missing)}), e.g. "
                '{"gpu-code": "sm_72", "trt-ver": "8.5.2", "cuda-ver": "11.4"}',
            )
    nvidia = target.accelerator == "NVIDIA" or target.device in NEO_NVIDIA_DEVICES
    foreign = sorted(k for k in (options or {}) if k in NVIDIA_ONLY_OPTIONS)
    if foreign and not nvidia:
        # "The compiler options are TargetPlatform specific" (botocore sagemaker model,
        # OutputConfig.CompilerOptions), which lists these under "NVIDIA".
        raise ConfigError(
            key,
            value,
            f"NVIDIA options ({', '.join(foreign)}) but {target.slug} is not an NVIDIA target: "
            "Neo's compiler options are target specific; remove them",
        )
    return dict(options) if options else None


def parse_neo_target(device: object, platform: object, key_prefix: str = "") -> NeoTarget:
    """Exactly one of a named Neo device or an ``OS/ARCH[/ACCELERATOR]`` platform.

    ``key_prefix`` (``device_classes.<name>.``) makes errors name the class.
    """
    device_key, platform_key = f"{key_prefix}neo_target_device", f"{key_prefix}neo_target_platform"
    device_text = str(device or "").strip()
    platform_text = str(platform or "").strip()
    if device_text and platform_text:
        raise ConfigError(
            device_key,
            device_text,
            "set either neo_target_device or neo_target_platform, not both "
            + (
                "(remove one of them from the class)"
                if key_prefix
                else "(pass -c neo_target_platform= to clear the default platform)"
            ),
        )
    if device_text:
        allowed = NEO_EDGE_DEVICES | NEO_CLOUD_DEVICES
        return NeoTarget(device=_choice(device_key, device_text, allowed))
    if not platform_text:
        raise ConfigError(platform_key, platform, "set a Neo target device or platform")
    parts = platform_text.upper().split("/")
    allowed_text = (
        f"expected OS/ARCH[/ACCELERATOR], OS one of {', '.join(PLATFORM_OS)}, ARCH one of "
        f"{', '.join(PLATFORM_ARCH)}, ACCELERATOR one of {', '.join(PLATFORM_ACCELERATOR)}"
    )
    if len(parts) not in (2, 3) or parts[0] not in PLATFORM_OS or parts[1] not in PLATFORM_ARCH:
        raise ConfigError(platform_key, platform, allowed_text)
    accelerator = parts[2] if len(parts) == 3 else None
    if accelerator is not None and accelerator not in PLATFORM_ACCELERATOR:
        raise ConfigError(platform_key, platform, allowed_text)
    return NeoTarget(os=parts[0], arch=parts[1], accelerator=accelerator)


def _pytorch_version(value: object, targets: Mapping[str, NeoTarget]) -> str:
    """The PyTorch version every class's Neo target accepts (one training feeds them all)."""
    text = str(value).strip()
    if not targets:  # ONNX classes only: the training image's versions
        allowed: tuple[str, ...] = CLOUD_PYTORCH_VERSIONS
        if text not in allowed:
            raise ConfigError("pytorch_version", value, f"allowed: {', '.join(allowed)}")
    for name, target in targets.items():
        allowed = CLOUD_PYTORCH_VERSIONS if target.is_cloud else EDGE_PYTORCH_VERSIONS
        if text not in allowed:
            where = "" if name == DEFAULT_CLASS else f" (device class {name})"
            raise ConfigError(
                "pytorch_version",
                value,
                f"Neo target {target.slug}{where} accepts PyTorch {', '.join(allowed)}",
            )
    return text


_CLASS_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,31}$")


def _device_class(
    name: str, entry: Mapping[str, Any], key_prefix: str, release: object, stage: str
) -> DeviceClass:
    """One class from its raw entry; errors name ``<key_prefix><key>``."""

    def key(name_: str) -> str:
        return f"{key_prefix}{name_}"

    build = _choice(key("build"), entry.get("build", "neo"), BUILDS)
    thing_group = _matching(
        key("thing_group"),
        entry.get("thing_group", ""),
        _THING_GROUP_RE,
        "1-128 characters: letters, digits, ':', '_' and '-'",
    )
    canary = str(entry.get("canary_thing_group") or "").strip()
    if canary:
        _matching(
            key("canary_thing_group"),
            canary,
            _THING_GROUP_RE,
            "empty or 1-128 characters: letters, digits, ':', '_' and '-'",
        )
        if canary == thing_group:
            raise ConfigError(
                key("canary_thing_group"), canary, "must differ from the class's thing_group"
            )
    arch_text = str(entry.get("platform_architecture") or "").strip()
    neo_target: NeoTarget | None = None
    compiler_options: dict[str, Any] | None = None
    if build == "neo":
        neo_target = parse_neo_target(
            entry.get("neo_target_device", ""), entry.get("neo_target_platform", ""), key_prefix
        )
        compiler_options = parse_compiler_options(
            entry.get("neo_compiler_options", ""), neo_target, key_prefix
        )
        runtime = _choice(
            key("runtime_component"), entry.get("runtime_component", "bundled"), RUNTIME_COMPONENTS
        )
        derived = NEO_ARCHITECTURES.get(neo_target.device or neo_target.arch or "")
        if arch_text and arch_text != derived:
            raise ConfigError(
                key("platform_architecture"),
                arch_text,
                f"a neo class takes its architecture from the Neo target ({derived or 'none'}); "
                "leave it empty",
            )
        architecture = derived
    else:
        for ignored in ("neo_target_device", "neo_target_platform", "neo_compiler_options"):
            if str(entry.get(ignored) or "").strip():
                raise ConfigError(key(ignored), entry[ignored], "an onnx class is not compiled")
        runtime_text = str(entry.get("runtime_component") or "onnxruntime").strip()
        runtime = _choice(key("runtime_component"), runtime_text, ("onnxruntime",))
        architecture = _choice(
            key("platform_architecture"), arch_text or "amd64", ONNX_ARCHITECTURES
        )
    return DeviceClass(
        name=name,
        thing_group=thing_group,
        build=build,
        neo_target=neo_target,
        neo_compiler_options=compiler_options,
        runtime=runtime,
        architecture=architecture,
        canary_thing_group=canary,
        release=_release(f"releases.{stage}.{name}", release, canary),
    )


def release_components(namespace: str, stage: str, device_class: DeviceClass) -> tuple[str, ...]:
    """The components a class's deployment carries (the nucleus aside, which a deployment
    cannot remove): names as edge_constructs/device_class/construct.py builds them."""
    prefix = f"{namespace}.{stage}"
    if device_class.name != DEFAULT_CLASS:
        prefix = f"{prefix}.{device_class.name}"
    kind = "Dlr" if device_class.dlr else "Onnx"
    runtime = "variant.DLR" if device_class.runtime == "variant.DLR" else f"{prefix}.{kind}Runtime"
    return (f"{prefix}.Model", runtime, f"{prefix}.{kind}Inference", LOG_MANAGER)


# botocore greengrassv2 ComponentNameString: "max": 128.
COMPONENT_NAME_MAX = 128


def _check_component_names(
    namespace: str, stage: str, device_classes: tuple[DeviceClass, ...]
) -> None:
    """Every component name a class deploys fits Greengrass's limit (CreateComponentVersion
    would refuse a longer one at deploy time)."""
    for device_class in device_classes:
        for name in release_components(namespace, stage, device_class):
            if len(name) > COMPONENT_NAME_MAX:
                raise ConfigError(
                    "component_namespace",
                    namespace,
                    f"gives the {len(name)}-character component name {name[:40]}...; "
                    f"Greengrass allows {COMPONENT_NAME_MAX}: use a shorter namespace",
                )


def _check_releases(namespace: str, stage: str, device_classes: tuple[DeviceClass, ...]) -> None:
    """A deployment removes from its devices every component it omits (Greengrass developer
    guide, "Revise deployments",
    https://docs.aws.amazon.com/greengrass/v2/developerguide/revise-deployments.html): a
    release must name every component of its class."""
    for device_class in device_classes:
        if device_class.release is None:
            continue
        deployed = release_components(namespace, stage, device_class)
        for component in deployed:
            if component not in device_class.release:
                raise ConfigError(
                    f"releases.{stage}.{device_class.name}",
                    "...",
                    f"misses {component}, which the class deploys (the fleet would uninstall "
                    "it): promote again with python -m rollout.promote, or restore it",
                )
        # The release is deployed as it stands, so a component of another class (or any other)
        # added by hand would be installed on this class's devices. The nucleus is the one
        # extra a canary deployment may carry (nucleus_version pins it).
        for component in device_class.release:
            if component not in deployed and component != NUCLEUS:
                raise ConfigError(
                    f"releases.{stage}.{device_class.name}",
                    "...",
                    f"names {component}, which device class {device_class.name} does not "
                    "deploy: promote again with python -m rollout.promote, or remove it",
                )


def _release(key: str, value: object, canary: str) -> Mapping[str, ComponentPin] | None:
    """A promoted release as the promote command writes it: component -> version (+ merge)."""
    if value is None:
        return None
    if not canary:
        raise ConfigError(
            key, "...", "a promoted release needs the class's canary_thing_group; remove it"
        )
    allowed = 'expected {"<component>": {"version": "X.Y.Z", "merge": {...}}, ...}'
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(key, value, allowed)
    pins: dict[str, ComponentPin] = {}
    for component, spec in value.items():
        if not isinstance(spec, Mapping) or not _VERSION_RE.match(str(spec.get("version", ""))):
            raise ConfigError(f"{key}.{component}", spec, allowed)
        merge = spec.get("merge")
        if merge is not None and not isinstance(merge, Mapping):
            raise ConfigError(f"{key}.{component}.merge", merge, "expected a JSON object")
        unknown = sorted(set(spec) - {"version", "merge"})
        if unknown:
            raise ConfigError(f"{key}.{component}", spec, f"unknown keys {', '.join(unknown)}")
        pins[str(component)] = ComponentPin(version=str(spec["version"]), merge=merge)
    return pins


def parse_device_classes(
    raw: Mapping[str, Any], releases: Mapping[str, Any], stage: str
) -> tuple[DeviceClass, ...]:
    """``device_classes`` from the merged configuration, or the one ``default`` class made of
    the single-target keys (whose errors keep naming those keys alone)."""
    classes = raw["device_classes"]
    if isinstance(classes, str):
        try:
            classes = json.loads(classes) if classes.strip() else {}
        except json.JSONDecodeError:
            raise ConfigError("device_classes", classes, "expected a JSON object") from None
    if not isinstance(classes, Mapping):
        raise ConfigError("device_classes", classes, "expected a JSON object of classes")
    if not classes:
        entry = {k: raw[k] for k in CLASS_KEYS if k in raw}
        entries: dict[str, tuple[Mapping[str, Any], str]] = {DEFAULT_CLASS: (entry, "")}
    else:
        entries = {}
        for name, entry in classes.items():
            prefix = f"device_classes.{name}."
            if not isinstance(name, str) or not _CLASS_NAME_RE.match(name):
                too_long = isinstance(name, str) and len(name) > 32
                raise ConfigError(
                    "device_classes",
                    name,
                    f"is {len(name)} characters; a class name has at most 32"
                    if too_long
                    else "a class name is a letter, then letters or digits (at most 32)",
                )
            if not isinstance(entry, Mapping):
                raise ConfigError(f"device_classes.{name}", entry, "expected a JSON object")
            for unknown in sorted(set(entry) - set(CLASS_KEYS)):
                raise ConfigError(
                    f"{prefix}{unknown}",
                    entry[unknown],
                    f"unknown key; known: {', '.join(CLASS_KEYS)}",
                )
            entries[name] = (entry, prefix)
    if not isinstance(releases, Mapping):
        raise ConfigError(f"releases.{stage}", releases, "expected a JSON object of classes")
    for name in releases:
        if name not in entries:
            raise ConfigError(
                f"releases.{stage}.{name}", "...", f"no such device class ({', '.join(entries)})"
            )
    result = tuple(
        _device_class(name, entry, prefix, releases.get(name), stage)
        for name, (entry, prefix) in entries.items()
    )
    _check_thing_groups(result)
    return result


def _thing_group_resource_name(group: str, first: bool) -> str:
    """The part of its CDK construct name the devices stack derives from a thing group's name
    (edge_constructs/core_device: ``ThingGroup`` for the first group, ``ThingGroup`` + the
    name's letters and digits for every other)."""
    return "" if first else re.sub(r"[^A-Za-z0-9]", "", group)


def _check_thing_groups(device_classes: tuple[DeviceClass, ...]) -> None:
    """Every group (fleet or canary) belongs to one class, and two groups never give the
    devices stack one construct name (CDK refuses that with an error that names no key)."""
    seen: dict[str, str] = {}
    resource_names: dict[str, tuple[str, str]] = {}
    for device_class in device_classes:
        for field_name in ("thing_group", "canary_thing_group"):
            group = getattr(device_class, field_name)
            if not group:
                continue
            key = _class_key(device_class.name, field_name)
            if group in seen:
                raise ConfigError(
                    key,
                    group,
                    f"already the thing group of {seen[group]}: a device in two classes' groups "
                    "would get two deployments",
                )
            resource_name = _thing_group_resource_name(group, first=not seen)
            if resource_name in resource_names:
                other_key, other = resource_names[resource_name]
                raise ConfigError(
                    key,
                    group,
                    f"has the same letters and digits as {other_key} ({other!r}), and the "
                    "devices stack names each group's resource by them: change a letter or digit"
                    if resource_name
                    else "has no letters or digits, and the devices stack names every group "
                    f"after the first ({other_key}) by them: add a letter or digit",
                )
            seen[group] = key
            resource_names[resource_name] = (key, group)


def _class_key(name: str, key: str) -> str:
    return key if name == DEFAULT_CLASS else f"device_classes.{name}.{key}"


def _hint(key: str) -> str:
    close = [k for k in DEFAULTS if k.split("_")[0] == key.split("_")[0]]
    return f" (did you mean {', '.join(close)}?)" if close else ""


def merge_context(
    base: Mapping[str, Any], stage_overrides: Mapping[str, Any], cli: Mapping[str, Any]
) -> dict[str, Any]:
    """Defaults < cdk.json ``pipeline`` < ``stages.<stage>`` < ``-c`` values. Unknown keys fail."""
    merged: dict[str, Any] = dict(DEFAULTS)
    for source_name, source in (("pipeline", base), ("stage", stage_overrides), ("-c", cli)):
        for key, value in source.items():
            if key not in DEFAULTS:
                raise ConfigError(key, value, f"unknown key in {source_name}{_hint(key)}")
            if key == "hyperparameters":
                # Merged over the defaults and the layers below, not replaced: a user who sets
                # epochs keeps pretrained=true. A null value removes an entry.
                value = {**merged[key], **_json_object(key, value)}
            merged[key] = value
    _check_single_target_keys((("pipeline", base), ("stage", stage_overrides), ("-c", cli)))
    given = {key for source in (base, stage_overrides, cli) for key in source}
    prefix = merged["prefix"]
    if isinstance(prefix, str) and _PREFIX_RE.match(prefix):
        for key, value in prefix_names(prefix).items():
            if key not in given:
                merged[key] = value
    return merged


# ---------------------------------------------------------------------------------------------
# Names the prefix does not spell out: thing groups and the component namespace.
#
# ``prefix`` starts every physical name a stage creates (``<prefix>-<stage>-...``), which is
# what lets two pipelines live in one account and region. Two kinds of names do not start with
# it: thing groups (``thing_group``, ``canary_thing_group``, per class) and component names
# (``<component_namespace>.<stage>...``). Both are unique per account and region (botocore
# ``iot/2015-05-28/service-2.json`` CreateThingGroup: ResourceAlreadyExistsException;
# ``greengrassv2/2020-11-30/service-2.json`` CreateComponentVersion: ConflictException), and
# two pipelines sharing component names would share, and overwrite each other's, releases.
#
# So: a name that no layer sets derives from the prefix (``prefix_names``; for the default
# prefix exactly the names it always had), and a pipeline under another prefix may not keep the
# default pipeline's names (``_check_prefix_names``): synth cannot see the account, and a
# copied cdk.json with only ``prefix`` changed is the way two pipelines collide.


def _compact(prefix: str) -> str:
    """``edge-ai`` -> ``edgeai``: the prefix as a namespace segment (no ``-`` allowed there)."""
    return prefix.replace("-", "").lower()


def _camel(prefix: str) -> str:
    """``edge-ai`` -> ``EdgeAi``: the prefix as the head of a thing group name."""
    return "".join(part[:1].upper() + part[1:] for part in prefix.split("-"))


def prefix_names(prefix: str) -> dict[str, str]:
    """The defaults of the names the prefix does not spell out, derived from it: for the
    default prefix ``edge-ai`` they are :data:`DEFAULTS`' ``com.example.edgeai`` and
    ``EdgeAiCoreDevices``."""
    return {
        "component_namespace": f"com.example.{_compact(prefix)}",
        "thing_group": f"{_camel(prefix)}CoreDevices",
    }


def _carries_group(name: str, compact: str) -> bool:
    return name.lower().startswith(compact)


def _carries_namespace(name: str, compact: str) -> bool:
    return compact in (segment.lower() for segment in name.split("."))


def _check_prefix_names(
    prefix: str, namespace: str, device_classes: tuple[DeviceClass, ...]
) -> None:
    """Refuse, under a prefix other than the default, a thing group or component namespace
    that is the default pipeline's: a group starting with ``EdgeAi`` or a namespace with an
    ``edgeai`` segment, unless the prefix extends the default one (``edge-ai-b``) and the name
    carries the whole of it (``EdgeAiB...``). One error names every such key, where it is set
    and a name derived from this prefix; removing the key derives that name. With the default
    prefix every name is accepted as configured, so existing fleets keep their groups."""
    default_prefix = str(DEFAULTS["prefix"])
    if prefix == default_prefix:
        return
    default, own = _compact(default_prefix), _compact(prefix)
    extends = own != default and own.startswith(default)

    def borrowed(name: str, carries: Callable[[str, str], bool]) -> bool:
        return carries(name, default) and not (extends and carries(name, own))

    offending: list[tuple[str, str, str, str]] = []  # key, value, where, suggestion
    if borrowed(namespace, _carries_namespace):
        suggestion = ".".join(
            own if segment.lower() == default else segment for segment in namespace.split(".")
        )
        offending.append(
            ("component_namespace", namespace, _where("component_namespace"), suggestion)
        )
    for device_class in device_classes:
        for field_name in ("thing_group", "canary_thing_group"):
            group = getattr(device_class, field_name)
            if group and borrowed(group, _carries_group):
                key = _class_key(device_class.name, field_name)
                where = key if "." in key else _where(key)
                offending.append((key, group, where, _camel(prefix) + group[len(default) :]))
    if not offending:
        return
    if own == default:
        reason = (
            f"prefix {prefix} derives the same names as the default prefix {default_prefix} "
            "(a namespace segment has no '-'): choose a prefix that differs in more than '-'"
        )
    else:
        listed = "; ".join(
            f"{key}={value!r} (set {where}, e.g. {suggestion})"
            for key, value, where, suggestion in offending
        )
        reason = (
            f"with prefix {prefix}, these names are still the default pipeline's "
            f"({default_prefix}): {listed}. Thing groups and component names are unique per "
            "account and region, so the two pipelines would collide; remove a key to derive "
            "its name from the prefix, or set a name of this pipeline's own"
        )
    key, value = offending[0][:2]
    raise ConfigError(key, value, reason)


def _where(key: str) -> str:
    """Where a single-target key is set."""
    return f"pipeline.{key}, stages.<stage>.{key} or -c {key}=..."


# The single-target keys: without device_classes they make the class "default".
SINGLE_TARGET_KEYS = tuple(k for k in CLASS_KEYS if k in DEFAULTS)


def _check_single_target_keys(layers: tuple[tuple[str, Mapping[str, Any]], ...]) -> None:
    """With ``device_classes``, a single-target key in that layer or a higher one would be
    silently ignored: fail instead. Lower layers are overridden, as by any higher layer."""
    classes_layer: int | None = None
    for index, (_, source) in enumerate(layers):
        if "device_classes" in source:
            value = source["device_classes"]
            empty = not value or (isinstance(value, str) and value.strip() in ("", "{}"))
            classes_layer = None if empty else index
    if classes_layer is None:
        return
    where = layers[classes_layer][0]
    for _, source in layers[classes_layer:]:
        for key in SINGLE_TARGET_KEYS:
            value = source.get(key)
            if value is not None and str(value).strip() not in ("", "{}"):
                raise ConfigError(
                    key,
                    value,
                    f"device_classes is set in {where}, so the single-target keys make no "
                    f"class: set it inside a class, device_classes.<class>.{key}",
                )


def build_config(
    stage: str, raw: Mapping[str, Any], releases: Mapping[str, Any] | None = None
) -> PipelineConfig:
    """Validate a merged raw mapping (see :func:`merge_context`) into a :class:`PipelineConfig`.

    ``releases``: the stage's promoted releases (``releases.<stage>`` in cdk.json), per class.
    """
    prefix = _matching(
        "prefix",
        raw["prefix"],
        _PREFIX_RE,
        "2-20 characters: lower-case letters, digits and -, starting with a letter",
    )
    # The stacks' generated S3 bucket names start with the prefix, and S3 refuses names that
    # start with xn--, sthree- or amzn-s3-demo- (S3 User Guide, "General purpose bucket naming
    # rules").
    for s3_reserved in S3_RESERVED_PREFIXES:
        if prefix.startswith(s3_reserved):
            raise ConfigError(
                "prefix", prefix, f"bucket names start with it, and S3 reserves {s3_reserved!r}"
            )
    device_classes = parse_device_classes(raw, releases or {}, stage)
    targets = {c.name: c.neo_target for c in device_classes if c.neo_target is not None}
    max_runtime = _int(
        "training_max_runtime_seconds",
        raw["training_max_runtime_seconds"],
        minimum=60,
        maximum=MAX_TRAINING_WAIT_SECONDS,
    )
    use_spot = _bool("training_use_spot", raw["training_use_spot"])
    max_wait = _int(
        "training_max_wait_seconds",
        raw["training_max_wait_seconds"],
        minimum=60,
        maximum=MAX_TRAINING_WAIT_SECONDS,
    )
    if use_spot and max_wait < max_runtime:
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
    hyperparameters = _mapping("hyperparameters", raw["hyperparameters"])
    reserved = sorted(k for k in hyperparameters if k.startswith("sagemaker_"))
    if reserved or "arch" in hyperparameters or "input-shape" in hyperparameters:
        raise ConfigError(
            "hyperparameters",
            raw["hyperparameters"],
            "arch, input-shape and sagemaker_* are set by the pipeline (use architecture "
            "and input_shape)",
        )
    architecture = _matching(
        "architecture",
        raw["architecture"],
        re.compile(r"^[a-z][a-z0-9_]{1,40}$"),
        "a torchvision model name such as vgg16, resnet18, mobilenet_v3_small",
    )
    input_shape = parse_input_shape(raw["input_shape"])
    check_hyperparameters(hyperparameters, architecture, input_shape)
    training = TrainingConfig(
        instance_type=_matching(
            "training_instance_type",
            raw["training_instance_type"],
            _INSTANCE_RE,
            "expected a SageMaker instance type such as ml.m5.xlarge",
        ),
        instance_count=_int("training_instance_count", raw["training_instance_count"], maximum=100),
        volume_gb=_int("training_volume_gb", raw["training_volume_gb"], maximum=16_384),
        max_runtime_seconds=max_runtime,
        use_spot=use_spot,
        max_wait_seconds=max_wait,
        image_uri=image_uri,
        data_uri=_optional_s3("training_data_uri", raw["training_data_uri"]),
        validation_uri=_optional_s3("validation_data_uri", raw["validation_data_uri"]),
        hyperparameters=hyperparameters,
        run_id=_matching(
            "run_id", raw["run_id"], re.compile(r"^[A-Za-z0-9-]{1,32}$"), "1-32 letters/digits/-"
        ),
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
    deployment = DeploymentConfig(
        timeout_minutes=_int(
            "deployment_timeout_minutes", raw["deployment_timeout_minutes"], maximum=10_080
        ),
        rollout_max_per_minute=_int(
            "rollout_max_per_minute", raw["rollout_max_per_minute"], maximum=1_000
        ),
        abort_failure_threshold_percent=_int(
            "abort_failure_threshold_percent", raw["abort_failure_threshold_percent"], maximum=100
        ),
        abort_min_executed_things=_int(
            "abort_min_executed_things", raw["abort_min_executed_things"]
        ),
        component_update_policy=_choice(
            "component_update_policy", raw["component_update_policy"], UPDATE_POLICIES
        ),
        component_update_timeout_seconds=_int(
            "component_update_timeout_seconds",
            raw["component_update_timeout_seconds"],
            maximum=3_600,
        ),
    )
    nucleus_version = str(raw["nucleus_version"] or "").strip()
    if nucleus_version:
        _matching(
            "nucleus_version",
            nucleus_version,
            _VERSION_RE,
            "expected empty or X.Y.Z (semver, no leading zeros)",
        )
        if parse_version(nucleus_version) < parse_version(MIN_NUCLEUS_VERSION):
            raise ConfigError(
                "nucleus_version",
                nucleus_version,
                f"must be at least {MIN_NUCLEUS_VERSION}: the inference component's "
                "accessControl uses a '*' wildcard, which older nuclei do not match",
            )
    if any(c.runtime == "variant.DLR" for c in device_classes):
        _check_variant_dlr_nucleus(nucleus_version)
    retention = _int("log_retention_days", raw["log_retention_days"])
    if retention not in LOG_RETENTION_DAYS:
        raise ConfigError(
            "log_retention_days",
            raw["log_retention_days"],
            f"CloudWatch Logs allows {', '.join(str(d) for d in LOG_RETENTION_DAYS)}",
        )
    component_namespace = _matching(
        "component_namespace",
        raw["component_namespace"],
        _NAMESPACE_RE,
        "a dotted name such as com.example.edgeai",
    )
    _check_component_names(component_namespace, stage, device_classes)
    _check_releases(component_namespace, stage, device_classes)
    _check_prefix_names(prefix, component_namespace, device_classes)
    demo_enabled = _bool("demo_device", raw["demo_device"])
    demo_class = _demo_device_class(raw, device_classes, demo_enabled)
    return PipelineConfig(
        stage=_matching(
            "stage", stage, re.compile(r"^[a-z][a-z0-9]{0,11}$"), "1-12 lower-case letters/digits"
        ),
        prefix=prefix,
        component_namespace=component_namespace,
        architecture=architecture,
        pytorch_version=_pytorch_version(raw["pytorch_version"], targets),
        input_shape=input_shape,
        input_mean=parse_channel_triple("input_mean", raw["input_mean"], positive=False),
        input_std=parse_channel_triple("input_std", raw["input_std"], positive=True),
        training=training,
        model_artifact_uri=_optional_s3("model_artifact_uri", raw["model_artifact_uri"]),
        compilation_max_runtime_seconds=_int(
            "compilation_max_runtime_seconds",
            raw["compilation_max_runtime_seconds"],
            minimum=60,
            maximum=MAX_COMPILATION_SECONDS,
        ),
        device_classes=device_classes,
        variant_dlr_version=_matching(
            "variant_dlr_version",
            raw["variant_dlr_version"],
            _VERSION_RE,
            "expected X.Y.Z (semver, no leading zeros)",
        ),
        log_manager_version=_matching(
            "log_manager_version",
            raw["log_manager_version"],
            _VERSION_RE,
            "expected X.Y.Z (semver, no leading zeros)",
        ),
        nucleus_version=nucleus_version,
        log_retention_days=retention,
        inference_top_k=_int("inference_top_k", raw["inference_top_k"], maximum=100),
        publish_topic_prefix=_topic_prefix(raw["publish_topic_prefix"]),
        deployment=deployment,
        noncurrent_version_expiration_days=_int(
            "noncurrent_version_expiration_days",
            raw["noncurrent_version_expiration_days"],
            maximum=3_650,
        ),
        demo_device=DemoDeviceConfig(
            enabled=demo_enabled,
            instance_type=_demo_instance_type(raw["demo_device_instance_type"]),
            device_class=demo_class.name,
            thing_group=demo_class.canary_thing_group or demo_class.thing_group,
        ),
    )


def _demo_device_class(
    raw: Mapping[str, Any], device_classes: tuple[DeviceClass, ...], enabled: bool
) -> DeviceClass:
    """The class the demo device joins: ``demo_device_class``, or the first class.

    It joins the class's canary group when there is one: until a release is promoted, the
    canary deployment is the class's only one, and the demo device is for trying the latest
    change. It is an x86_64 instance without an accelerator, so the class must build for that.
    """
    names = [c.name for c in device_classes]
    chosen = str(raw["demo_device_class"] or "").strip()
    key = "demo_device_class" if chosen else "demo_device"
    if chosen and chosen not in names:
        raise ConfigError(
            "demo_device_class",
            chosen,
            f"expected empty (the first) or one of the device classes: {', '.join(names)}",
        )
    device_class = device_classes[names.index(chosen)] if chosen else device_classes[0]
    target = device_class.neo_target
    accelerated = target is not None and target.accelerator is not None
    if enabled and (device_class.architecture != "amd64" or accelerated):
        group = device_class.canary_thing_group or device_class.thing_group
        raise ConfigError(
            key,
            raw[key],
            "the demo core device is an x86_64 Ubuntu instance without an accelerator: it joins "
            f"device class {device_class.name!r} ({group}), which needs an x86_64 "
            "Linux target (neo_target_platform=LINUX/X86_64, or an onnx build for amd64)",
        )
    return device_class


def _demo_instance_type(value: object) -> str:
    """An x86_64 instance type with at least 2 GiB of memory, from a known table."""
    text = str(value).strip()
    memory = DEMO_DEVICE_INSTANCE_MEMORY_GIB.get(text)
    if memory is None or memory < DEMO_DEVICE_MIN_MEMORY_GIB:
        raise ConfigError(
            "demo_device_instance_type",
            value,
            f"an x86_64 type with at least {DEMO_DEVICE_MIN_MEMORY_GIB} GiB of memory: "
            f"{', '.join(sorted(DEMO_DEVICE_INSTANCE_MEMORY_GIB))}",
        )
    return text


def load_config(context: Mapping[str, Any], stage: str) -> PipelineConfig:
    """Build a stage's configuration from the CDK context.

    ``context`` holds ``pipeline`` (an object), ``stages`` (name -> overrides), ``releases``
    (stage -> class -> promoted release, written by ``python -m rollout.promote``) and any
    ``-c key=value`` given on the command line (keys of :data:`DEFAULTS`).
    """
    stages = context.get("stages") or {}
    if not isinstance(stages, Mapping):
        raise ConfigError("stages", stages, "expected a JSON object: stage name -> overrides")
    if not stages:
        raise ConfigError(
            "stage",
            stage,
            "no stages in the CDK context: run the app with `cdk synth` (which passes "
            "cdk.json's context), and define stages in cdk.json",
        )
    # Every stage's keys, whatever stage is synthesized: a typo under stages.prod must not
    # wait for the day prod is deployed.
    for name, overrides in stages.items():
        if overrides is not None and not isinstance(overrides, Mapping):
            raise ConfigError(f"stages.{name}", overrides, "expected a JSON object of keys")
        for key, value in (overrides or {}).items():
            if key not in DEFAULTS:
                raise ConfigError(
                    f"stages.{name}.{key}", value, f"unknown key in stage {name}{_hint(key)}"
                )
    if stage not in stages:
        raise ConfigError(
            "stage", stage, f"stages defined in cdk.json: {', '.join(sorted(stages))}"
        )
    base = context.get("pipeline") or {}
    cli = {k: v for k, v in context.items() if k in DEFAULTS}
    releases = context.get("releases") or {}
    if not isinstance(releases, Mapping):
        raise ConfigError("releases", releases, "expected a JSON object: stage -> class -> release")
    stage_releases = releases.get(stage) or {}
    return build_config(stage, merge_context(base, stages[stage] or {}, cli), stage_releases)
