"""The inference component's settings: one table, from which everything else is derived.

Each :class:`Setting` is a component configuration key (PascalCase, as a deployment sets it)
with its type, bounds, default, command-line flag and help. From :data:`SETTINGS` come the
recipe's ``DefaultConfiguration`` (:func:`default_configuration`), the component's command line
(``edge_inference/cli.py``), its validation (``edge_inference/config.py``) and the table in
``component_src/README.md`` (:func:`markdown_table`; a test keeps the README equal to it).
Adding a setting is one row here plus the component code that uses its value.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from device_contract.topics import DEFAULT_TOPIC_PREFIX, metrics_topic, publish_topic

Value = Union[str, int, float, None]

#: Where captures go when the recipe does not say (the stack's recipe sets
#: ``captures/<stage>/<class>/{iot:thingName}/``).
CAPTURE_PREFIX_DEFAULT = "captures/{iot:thingName}/"

# Kinds: how a value is parsed and checked (edge_inference/config.py has one parser per kind).
PATH = "path"  # a folder; relative to the component's work folder
CHOICE = "choice"  # one of ``choices`` (case-insensitive)
INTEGER = "integer"  # between ``low`` and ``high``
NUMBER = "number"  # a finite number between ``low`` (exclusive with ``low_open``) and ``high``
TOPIC = "topic"  # an MQTT topic name: no wildcards, at most 256 bytes
BUCKET = "bucket"  # an S3 bucket name, or empty for none
KEY_PREFIX = "key-prefix"  # an S3 key prefix ending in "/"; {iot:thingName} is the thing name
KINDS = (PATH, CHOICE, INTEGER, NUMBER, TOPIC, BUCKET, KEY_PREFIX)


@dataclasses.dataclass(frozen=True)
class Setting:
    """One component setting.

    ``field``: the component's ``Config`` attribute (and the parsed flag's name).
    ``default``: the value when neither the recipe nor a deployment nor the flag sets one
    (``None``: none; the flag is then required). ``in_recipe``: whether the recipe's
    ``DefaultConfiguration`` carries the key (the others take the command line's value unless a
    deployment sets them). ``metavar``: the flag's value name in ``--help``.
    """

    key: str
    field: str
    kind: str
    default: Value
    flag: str
    metavar: str
    help: str
    low: Optional[float] = None
    high: Optional[float] = None
    low_open: bool = False
    choices: Tuple[str, ...] = ()
    in_recipe: bool = True

    @property
    def python_type(self) -> type:
        return {INTEGER: int, NUMBER: float}.get(self.kind, str)


def _folder(key: str, field: str, default: str, flag: str, help_: str) -> Setting:
    return Setting(key, field, PATH, default, flag, "DIR", help_)


RUNTIMES = ("dlr", "onnx")

# In the recipe's key order (the recipe's JSON, and so its version hash, follows this order).
SETTINGS: Tuple[Setting, ...] = (
    _folder("InputDir", "input_dir", "input", "--input-dir", "watched folder"),
    _folder(
        "ProcessedDir", "processed_dir", "processed", "--processed-dir",
        "where processed inputs go",
    ),
    _folder(
        "FailedDir", "failed_dir", "failed", "--failed-dir",
        "failed inputs and NAME.error.json",
    ),
    Setting(
        "Runtime", "runtime", CHOICE, "dlr", "--runtime", "{dlr,onnx}",
        "runtime that loads the model", choices=RUNTIMES,
    ),
    Setting("TopK", "top_k", INTEGER, 5, "--top-k", "N", "classes per result", low=1, high=1000),
    Setting(
        "PollIntervalSeconds", "poll_interval", NUMBER, 1.0, "--poll-interval", "S",
        "seconds between scans of the input folder", low=0.0, high=3600.0, low_open=True,
    ),
    Setting(
        "SettleSeconds", "settle_seconds", NUMBER, 1.0, "--settle-seconds", "S",
        "a file is taken once unchanged for S seconds", low=0.0, high=3600.0,
    ),
    Setting(
        "MaxImagePixels", "max_image_pixels", INTEGER, 50_000_000, "--max-image-pixels", "N",
        "larger images fail (decompression-bomb guard)", low=1, high=2**40,
    ),
    Setting(
        "BatchSize", "batch_size", INTEGER, 1, "--batch-size", "N",
        "run N waiting inputs as one batch (ONNX models with a dynamic batch axis); 1: one by one",
        low=1, high=32, in_recipe=False,
    ),
    Setting(
        "InferenceThreads", "inference_threads", INTEGER, 0, "--inference-threads", "N",
        "ONNX Runtime intra-op threads; 0: one per CPU core the process may use",
        low=0, high=256, in_recipe=False,
    ),
    Setting(
        "MaxOutboxFiles", "max_outbox_files", INTEGER, 10_000, "--max-outbox-files", "N",
        "unpublished results kept before new inputs wait", low=1, high=10_000_000,
    ),
    Setting(
        "PublishTopic", "publish_topic", TOPIC, publish_topic(DEFAULT_TOPIC_PREFIX),
        "--publish-topic", "T", "IoT Core topic with --ipc; {iot:thingName} is the thing name",
    ),
    Setting(
        "MetricsTopic", "metrics_topic", TOPIC, metrics_topic(DEFAULT_TOPIC_PREFIX),
        "--metrics-topic", "T",
        "IoT Core topic of the per-window metrics with --ipc; {iot:thingName} as above",
    ),
    Setting(
        "MetricsIntervalSeconds", "metrics_interval", NUMBER, 60.0, "--metrics-interval", "S",
        "seconds per metrics window; 0: no metrics", low=0.0, high=86400.0, in_recipe=False,
    ),
    Setting(
        "MetricsKeepWindows", "metrics_keep_windows", INTEGER, 1440, "--metrics-keep-windows",
        "N", "unpublished metrics windows kept on disk, oldest dropped first", low=1,
        high=1_000_000, in_recipe=False,
    ),
    Setting(
        "ProcessedRetentionDays", "processed_retention_days", NUMBER, 7.0,
        "--processed-retention-days", "X",
        "days processed inputs are kept, oldest removed first; 0: no limit",
        low=0.0, high=36500.0, in_recipe=False,
    ),
    Setting(
        "FailedRetentionDays", "failed_retention_days", NUMBER, 30.0,
        "--failed-retention-days", "X",
        "days failed inputs (and their .error.json) are kept, oldest removed first; 0: no limit",
        low=0.0, high=36500.0, in_recipe=False,
    ),
    Setting(
        "ProcessedMaxMB", "processed_max_mb", NUMBER, 1000.0, "--processed-max-mb", "X",
        "MB the processed folder may hold, oldest removed first; 0: no limit",
        low=0.0, high=1e9, in_recipe=False,
    ),
    Setting(
        "FailedMaxMB", "failed_max_mb", NUMBER, 1000.0, "--failed-max-mb", "X",
        "MB the failed folder may hold, oldest removed first; 0: no limit",
        low=0.0, high=1e9, in_recipe=False,
    ),
    Setting(
        "CaptureBelowConfidence", "capture_below_confidence", NUMBER, 0.5,
        "--capture-below-confidence", "X",
        "capture inputs whose top-1 confidence is below X; 0: none", low=0.0, high=1.0,
    ),
    Setting(
        "CaptureSampleRate", "capture_sample_rate", NUMBER, 0.0, "--capture-sample-rate", "X",
        "capture this fraction of the other inputs at random; 0: none", low=0.0, high=1.0,
    ),
    Setting(
        "CaptureMaxMB", "capture_max_mb", NUMBER, 200.0, "--capture-max-mb", "X",
        "MB of captures kept on the device until uploaded, oldest dropped first; "
        "0: capture nothing (failed inputs included)", low=0.0, high=1e9,
    ),
    Setting(
        "CaptureBucket", "capture_bucket", BUCKET, "", "--capture-bucket", "NAME",
        "S3 bucket captures are uploaded to (with the token-exchange role's credentials); "
        "empty: they stay on the device",
    ),
    Setting(
        "CapturePrefix", "capture_prefix", KEY_PREFIX, CAPTURE_PREFIX_DEFAULT,
        "--capture-prefix", "P",
        "key prefix of the uploads, then yyyy/mm/dd/; {iot:thingName} is the thing name",
    ),
    Setting(
        "ModelDir", "model_dir", PATH, None, "--model-dir", "DIR",
        "model package folder (metadata.json); as a key, empty means the flag's",
        in_recipe=False,
    ),
)  # fmt: skip

BY_KEY: Dict[str, Setting] = {setting.key: setting for setting in SETTINGS}

#: Keys outside the recipe's defaults that a device class may add to its inference recipe
#: (``batch_size``, ``inference_threads``). Every inference deployment resets them: a deployment
#: merges, and the nucleus keeps a key it does not name (KernelConfigResolver.
#: resolveConfigurationToApply: reset, then the recipe's defaults without overwriting, then
#: the merge), so a class that stopped setting one would keep it on its devices for good.
CLASS_RECIPE_KEYS = ("BatchSize", "InferenceThreads")


def reset_pointers(merge: Mapping[str, Any]) -> List[str]:
    """The ``ConfigurationUpdate.Reset`` of a deployment that merges ``merge``: the recipe's
    ``accessControl`` (its wildcard is the recipe's, never a device's), and for the inference
    component's configuration (it names the ``Runtime``) the keys a class may set."""
    pointers = ["/accessControl"]
    if "Runtime" in merge:
        pointers += [f"/{key}" for key in CLASS_RECIPE_KEYS]
    return pointers


def setting(key: str) -> Setting:
    """The row of ``key``; ``KeyError`` naming the known keys otherwise."""
    try:
        return BY_KEY[key]
    except KeyError:
        raise KeyError(f"no setting {key!r}; known: {', '.join(BY_KEY)}") from None


def defaults() -> Dict[str, Value]:
    """Every key's default (``None``: no default)."""
    return {s.key: s.default for s in SETTINGS}


def default_configuration(
    optional: Optional[Mapping[str, Value]] = None, **overrides: Any
) -> Dict[str, Any]:
    """The recipe's ``DefaultConfiguration``: the keys with ``in_recipe``, in table order,
    ``overrides`` (by key) replacing defaults; an override of another key is an error.
    ``optional``: keys without ``in_recipe`` that this recipe carries anyway (a device class
    that sets them), in table order after the others; a recipe that sets none stays as it was."""
    unknown = sorted(set(overrides) - {s.key for s in SETTINGS if s.in_recipe})
    if unknown:
        raise KeyError(f"not recipe settings: {', '.join(unknown)}")
    extra = dict(optional or {})
    strays = sorted(set(extra) - set(CLASS_RECIPE_KEYS))
    if strays:
        raise KeyError(f"not optional recipe settings: {', '.join(strays)}")
    configuration = {s.key: overrides.get(s.key, s.default) for s in SETTINGS if s.in_recipe}
    configuration.update((s.key, extra[s.key]) for s in SETTINGS if s.key in extra)
    return configuration


def _text(value: Value) -> str:
    if value is None:
        return "required"
    if value == "":
        return "empty"
    return f"`{value}`" if isinstance(value, str) else repr(value)


def _bound(value: Optional[float]) -> str:
    return str(int(value)) if value is not None and float(value).is_integer() else str(value)


def bounds(s: Setting) -> str:
    """The accepted values, as the README shows them."""
    if s.kind == CHOICE:
        return " \\| ".join(f"`{choice}`" for choice in s.choices)
    if s.kind == TOPIC:
        return "no `#` or `+`, at most 256 bytes"
    if s.kind == PATH:
        return "folder"
    if s.kind == BUCKET:
        return "an S3 bucket name without dots or reserved affixes, or empty"
    if s.kind == KEY_PREFIX:
        return "ends in `/`, at most 512 bytes"
    low, high = _bound(s.low), _bound(s.high)
    return f"{'>' if s.low_open else '>='} {low}, <= {high}"


def markdown_table() -> str:
    """The README's settings table."""
    lines: List[str] = [
        "| key | flag | default | accepts | meaning |",
        "|---|---|---|---|---|",
    ]
    for s in SETTINGS:
        meaning = s.help.replace("|", "\\|")
        lines.append(
            f"| `{s.key}` | `{s.flag} {s.metavar}` | {_text(s.default)} | {bounds(s)} | {meaning} |"
        )
    return "\n".join(lines) + "\n"
