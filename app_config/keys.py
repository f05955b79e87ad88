"""Every configuration key in one table: name, type, default, bounds and help.

:data:`DEFAULTS` (what ``merge_context`` starts from, and the keys it accepts) is derived from
it. A *plain* key is one whose value is checked on its own (an integer in bounds, a boolean, a
choice, a pattern): :func:`parse_plain` parses every one of them, with errors that name the key
and its bounds, and the built configuration carries them all in ``PipelineConfig.settings``.
So adding a plain stage key is one row here; a key that a construct reads also gets a typed
field in its section's dataclass (``edge_constructs/props.py``), because mypy checks that read.
The other keys name the section module that parses them (``section``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from app_config.parse import VERSION_RE, as_bool, as_int, choice, matching
from device_contract import topics
from edge_constructs.greengrass.public_components import LOG_MANAGER_PIN, VARIANT_DLR_PIN
from edge_constructs.limits import MAX_TRAINING_WAIT_SECONDS
from edge_constructs.props import FleetAlarmsConfig

# Compilation waits inside one custom-resource call, which must answer within an hour.
MAX_COMPILATION_SECONDS = 3_000
UPDATE_POLICIES = ("NOTIFY_COMPONENTS", "SKIP_NOTIFY_COMPONENTS")
_SEMVER = "expected X.Y.Z (semver, no leading zeros)"


@dataclass(frozen=True)
class Key:
    """One configuration key.

    type: ``int``, ``bool``, ``str`` or ``json`` (an object, or its text with ``-c``).
    minimum, maximum: an ``int`` key's bounds (maximum None: unbounded).
    choices: a ``str`` key's allowed values.
    pattern, allowed: a ``str`` key's pattern, and the error text when it does not match.
    section: "" for a plain key (checked on its own here), else the module that parses it.
    """

    name: str
    type: str
    default: Any
    help: str
    minimum: int = 1
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    pattern: re.Pattern[str] | None = None
    allowed: str = ""
    section: str = ""

    @property
    def plain(self) -> bool:
        return not self.section

    def parse(self, value: object) -> Any:
        """A plain key's value, typed and checked."""
        if self.type == "int":
            return as_int(self.name, value, minimum=self.minimum, maximum=self.maximum)
        if self.type == "bool":
            return as_bool(self.name, value)
        if self.choices:
            return choice(self.name, value, self.choices)
        if self.pattern is not None:
            return matching(self.name, value, self.pattern, self.allowed)
        raise TypeError(f"{self.name}: a plain key needs int, bool, choices or a pattern")


KEYS: tuple[Key, ...] = (
    Key("prefix", "str", "edge-ai", "prefix of every physical name", section="names"),
    Key(
        "component_namespace",
        "str",
        "com.example.edgeai",
        "component names are <namespace>.<stage>...",
        section="names",
    ),
    Key("thing_group", "str", "EdgeAiCoreDevices", "the default class's fleet", section="classes"),
    Key(
        "architecture",
        "str",
        "vgg16",
        "torchvision model to fine-tune; with model_artifact_uri, your model's name (required)",
        pattern=re.compile(r"^[a-z][a-z0-9_]{1,40}$"),
        allowed="lower-case letters, digits and _ (2-41, a letter first): a torchvision model "
        "name such as vgg16, resnet18, mobilenet_v3_small, or your brought model's name",
    ),
    Key("neo_target_device", "str", "", "Neo TargetDevice", section="neo"),
    Key("neo_target_platform", "str", "LINUX/X86_64", "Neo TargetPlatform", section="neo"),
    Key("neo_compiler_options", "json", "", "Neo OutputConfig.CompilerOptions", section="neo"),
    Key("pytorch_version", "str", "1.8", "PyTorch of training and Neo", section="neo"),
    Key("input_shape", "str", "1,3,224,224", "NCHW input of the model", section="training"),
    # The model's input normalization, (x / 255 - mean) / std per RGB channel, written into the
    # package's metadata.json for the device. ImageNet's statistics (torchvision's models);
    # a brought model trained otherwise names its own (EfficientNet-Lite: 127/255, 128/255).
    Key("input_mean", "str", "0.485,0.456,0.406", "input mean per RGB channel", section="training"),
    Key("input_std", "str", "0.229,0.224,0.225", "input std per RGB channel", section="training"),
    Key(
        "max_int8_top1_drop",
        "str",
        "1.0",
        "top-1 points an int8 class's model may lose against FP32 (0-100)",
        section="training",
    ),
    Key(
        "training_instance_type",
        "str",
        "ml.m5.xlarge",
        "training instance",
        pattern=re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$"),
        allowed="expected a SageMaker instance type such as ml.m5.xlarge",
    ),
    Key("training_instance_count", "int", 1, "instances", maximum=100),
    Key("training_volume_gb", "int", 30, "EBS volume per instance", maximum=16_384),
    Key(
        "training_max_runtime_seconds",
        "int",
        10_800,
        "stopping condition",
        minimum=60,
        maximum=MAX_TRAINING_WAIT_SECONDS,
    ),
    Key("training_use_spot", "bool", False, "managed spot training"),
    Key(
        "training_max_wait_seconds",
        "int",
        21_600,
        "spot: max wait, >= max runtime",
        minimum=60,
        maximum=MAX_TRAINING_WAIT_SECONDS,
    ),
    Key("training_image_uri", "str", "", "override the training image", section="training"),
    Key("training_data_uri", "str", "", "S3 prefix of the train channel", section="training"),
    Key(
        "validation_data_uri", "str", "", "S3 prefix of the validation channel", section="training"
    ),
    Key(
        "hyperparameters",
        "json",
        {"epochs": "10", "batch-size": "32", "lr": "0.001", "pretrained": "true"},
        "passed to train.py",
        section="training",
    ),
    Key(
        "model_artifact_uri", "str", "", "bring a traced model; skips training", section="training"
    ),
    Key(
        "run_id",
        "str",
        "1",
        "bump to re-run jobs whose inputs did not change",
        pattern=re.compile(r"^[A-Za-z0-9-]{1,32}$"),
        allowed="1-32 letters/digits/-",
    ),
    Key(
        "compilation_max_runtime_seconds",
        "int",
        900,
        "Neo stopping condition",
        minimum=60,
        maximum=MAX_COMPILATION_SECONDS,
    ),
    Key("runtime_component", "str", "bundled", "bundled or variant.DLR", section="classes"),
    Key("canary_thing_group", "str", "", "the default class's canary ring", section="classes"),
    Key("device_classes", "json", {}, "named device classes", section="classes"),
    Key(
        "variant_dlr_version",
        "str",
        VARIANT_DLR_PIN.version,
        "pinned variant.DLR version",
        pattern=VERSION_RE,
        allowed=_SEMVER,
    ),
    Key(
        "log_manager_version",
        "str",
        LOG_MANAGER_PIN.version,
        "pinned aws.greengrass.LogManager",
        pattern=VERSION_RE,
        allowed=_SEMVER,
    ),
    Key("nucleus_version", "str", "", "pin aws.greengrass.Nucleus", section="components"),
    Key("log_retention_days", "int", 30, "retention of the logs", section="components"),
    Key("inference_top_k", "int", 5, "classes per prediction", maximum=100),
    Key(
        "publish_topic_prefix",
        "str",
        topics.DEFAULT_TOPIC_PREFIX,
        "predictions topic",
        section="components",
    ),
    Key(
        "deployment_timeout_minutes",
        "int",
        60,
        "IoT job in-progress timeout per device",
        maximum=10_080,
    ),
    Key("rollout_max_per_minute", "int", 50, "devices started per minute", maximum=1_000),
    Key(
        "abort_failure_threshold_percent",
        "int",
        10,
        "abort the rollout past this failure rate",
        maximum=100,
    ),
    Key("abort_min_executed_things", "int", 5, "once this many devices ran it"),
    Key(
        "component_update_policy",
        "str",
        "NOTIFY_COMPONENTS",
        "notify components of an update, or not",
        choices=UPDATE_POLICIES,
    ),
    Key(
        "component_update_timeout_seconds",
        "int",
        60,
        "how long components may defer an update",
        maximum=3_600,
    ),
    Key(
        "noncurrent_version_expiration_days",
        "int",
        90,
        "keep overwritten/deleted artifact versions this long",
        maximum=3_650,
    ),
    # The fleet's alarms (edge_constructs/fleet_metrics; props.FleetAlarmsConfig).
    Key(
        "alarm_failure_rate_percent",
        "int",
        FleetAlarmsConfig.failure_rate_percent,
        "fleet alarm: failed inputs past this %",
        maximum=100,
    ),
    Key(
        "alarm_latency_p95_ms",
        "int",
        FleetAlarmsConfig.latency_p95_ms,
        "fleet alarm: a device's p95 latency past this, ms",
        maximum=3_600_000,
    ),
    Key(
        "alarm_low_confidence_percent",
        "int",
        FleetAlarmsConfig.low_confidence_percent,
        "fleet alarm (drift-lite): results in the lowest confidence bucket past this %",
        maximum=100,
    ),
    Key(
        "alarm_period_minutes",
        "int",
        FleetAlarmsConfig.period_minutes,
        "period each fleet alarm evaluates, minutes",
        maximum=1_440,
    ),
    Key(
        "alarm_evaluation_periods",
        "int",
        FleetAlarmsConfig.evaluation_periods,
        "periods in a row past a threshold before ALARM",
        maximum=100,
    ),
    Key(
        "alarm_drift_psi_hundredths",
        "int",
        FleetAlarmsConfig.drift_psi_hundredths,
        "fleet drift alarm: PSI of the confidence buckets vs training past this/100",
        maximum=1_000,
    ),
    Key(
        "alarm_drift_min_results",
        "int",
        FleetAlarmsConfig.drift_min_results,
        "fleet drift alarm: fewer results in a period count as no drift",
        maximum=100_000_000,
    ),
    Key(
        "alarm_drift_period_minutes",
        "int",
        FleetAlarmsConfig.drift_period_minutes,
        "period the drift alarm evaluates, minutes",
        maximum=1_440,
    ),
    Key("demo_device", "bool", False, "add the demo core device stack"),
    Key("demo_device_instance_type", "str", "t3.medium", "its instance type", section="demo"),
    Key("demo_device_class", "str", "", "the device class it joins", section="demo"),
)


def key(name: str) -> Key:
    """The row of a key."""
    for row in KEYS:
        if row.name == name:
            return row
    raise KeyError(name)


def defaults() -> dict[str, Any]:
    """Every key's default, in table order (read at call time: a row added is a key)."""
    return {row.name: row.default for row in KEYS}


def parse_plain(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Every plain key of a merged configuration, typed and checked, in table order."""
    return {row.name: row.parse(raw[row.name]) for row in KEYS if row.plain}


class _Defaults(Mapping[str, Any]):
    """Every key's default, read from :data:`KEYS` at each use (a row added is a key)."""

    def __getitem__(self, name: str) -> Any:
        return key(name).default

    def __iter__(self) -> Iterator[str]:
        return iter([row.name for row in KEYS])

    def __len__(self) -> int:
        return len(KEYS)

    def __repr__(self) -> str:
        return repr(defaults())


#: The defaults (documented in the README), in table order: a read-only view of :data:`KEYS`.
DEFAULTS: Mapping[str, Any] = _Defaults()
