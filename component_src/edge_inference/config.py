"""The component's configuration: keys, defaults, parsing and validation.

The keys are the component configuration's (PascalCase, set by the recipe's
``DefaultConfiguration`` and changed by deployments). The CLI gives the starting values; a
configuration from IPC is merged onto those starting values, so a key that a deployment removes
goes back to its CLI value. Keys this component does not know (``accessControl``, ...) are
ignored. A configuration is applied only if every key is valid; otherwise it is rejected with the
reasons and the previous one stays in force.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import stat
import threading
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from device_contract import settings, topics
from edge_inference.durable import device_of
from edge_inference.model import ModelError, check_model_files

LOG = logging.getLogger(__name__)

RUNTIMES = settings.RUNTIMES
THING_NAME_PLACEHOLDER = topics.THING_NAME_VARIABLE
THING_NAME_ENV = topics.THING_NAME_ENV


def _default(key: str) -> Any:
    return settings.setting(key).default


class ConfigError(ValueError):
    """A configuration that cannot be applied; the message says why."""


@dataclasses.dataclass(frozen=True)
class Config:
    """One complete, validated configuration. Paths are absolute."""

    model_dir: Path
    input_dir: Path
    processed_dir: Path
    failed_dir: Path
    # Defaults: device_contract/settings.py (a test checks every field there has one here).
    runtime: str = _default("Runtime")
    top_k: int = _default("TopK")
    poll_interval: float = _default("PollIntervalSeconds")
    settle_seconds: float = _default("SettleSeconds")
    max_image_pixels: int = _default("MaxImagePixels")
    publish_topic: str = _default("PublishTopic")
    batch_size: int = _default("BatchSize")
    inference_threads: int = _default("InferenceThreads")
    max_outbox_files: int = _default("MaxOutboxFiles")
    processed_retention_days: float = _default("ProcessedRetentionDays")
    failed_retention_days: float = _default("FailedRetentionDays")
    processed_max_mb: float = _default("ProcessedMaxMB")
    failed_max_mb: float = _default("FailedMaxMB")
    metrics_topic: str = _default("MetricsTopic")
    metrics_interval: float = _default("MetricsIntervalSeconds")
    metrics_keep_windows: int = _default("MetricsKeepWindows")
    capture_below_confidence: float = _default("CaptureBelowConfidence")
    capture_sample_rate: float = _default("CaptureSampleRate")
    capture_max_mb: float = _default("CaptureMaxMB")
    capture_bucket: str = _default("CaptureBucket")
    capture_prefix: str = _default("CapturePrefix")

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _as_int(value: Any, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise ValueError(f"must be an integer, got {value!r}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str):
        value = int_text(value)
    if not isinstance(value, int):
        raise ValueError(f"must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"must be between {low} and {high}, got {_short(value)}")
    return value


def int_text(text: str) -> int:
    """A whole number written in ASCII digits, as JSON or a shell would (``"8"``, ``"8.0"``);
    ``int()`` alone would also take ``"1_6"`` (16) and other scripts' digits."""
    stripped = text.strip()
    if re.fullmatch(r"[+-]?[0-9]+", stripped):
        return int(stripped)
    if re.fullmatch(r"[+-]?[0-9]+\.0*", stripped):
        return int(stripped.split(".")[0])
    raise ValueError(f"must be an integer, got {_short(text)}")


def _as_float(value: Any, low: float, high: float, *, low_open: bool = False) -> float:
    if isinstance(value, bool):
        raise ValueError(f"must be a number, got {value!r}")
    if isinstance(value, str):
        value = float(value.strip())
    if not isinstance(value, (int, float)):
        raise ValueError(f"must be a number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond any float
        number = math.inf if value > 0 else -math.inf
    if not math.isfinite(number):
        raise ValueError(f"must be a finite number, got {_short(value)}")
    too_low = number <= low if low_open else number < low
    if too_low or number > high:
        bound = f"greater than {low}" if low_open else f"at least {low}"
        raise ValueError(f"must be {bound} and at most {high}, got {number}")
    return number


def _as_text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a non-empty string, got {value!r}")
    return value.strip()


def _as_choice(value: Any, choices: Tuple[str, ...]) -> str:
    text = _as_text(value).lower()
    if text not in choices:
        raise ValueError(f"must be one of {', '.join(choices)}, got {value!r}")
    return text


def _as_topic(value: Any) -> str:
    text = _as_text(value)
    if "#" in text or "+" in text:
        raise ValueError(f"must not contain MQTT wildcards (# or +), got {value!r}")
    if len(text.encode("utf-8")) > 256:
        raise ValueError("must be at most 256 bytes")
    return text


# S3 User Guide, "General purpose bucket naming rules": 3-63 characters; lowercase letters,
# numbers, dots and hyphens; begin and end with a letter or number; not an IP address.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
KEY_PREFIX_BYTES = 512  # S3 keys: at most 1024 bytes; the rest is yyyy/mm/dd/<id>-<name>


# Reserved by S3 ("General purpose bucket naming rules": "must not start with the prefix xn--",
# sthree-, amzn-s3-demo-; "must not end with the suffix -s3alias", --ol-s3, .mrap; the S3
# Tables naming rules list the reserved suffixes -s3alias, --ol-s3, --x-s3, --table-s3).
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def _as_bucket(value: Any) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        return ""
    text = _as_text(value)
    if not _BUCKET.match(text) or _IP.match(text) or ".." in text:
        raise ValueError(
            f"must be an S3 bucket name (3-63 lowercase letters, digits, dots, hyphens), "
            f"got {_short(value)}"
        )
    if text.startswith(_RESERVED_PREFIXES) or text.endswith(_RESERVED_SUFFIXES):
        raise ValueError(
            f"must not use a prefix or suffix S3 has reserved ({', '.join(_RESERVED_PREFIXES)}; "
            f"{', '.join(_RESERVED_SUFFIXES)}), got {_short(value)}"
        )
    if "." in text:
        # Uploads go to https://<bucket>.s3.<region>.amazonaws.com (s3_upload.py), whose
        # wildcard certificate covers one label: with periods "you can't use
        # virtual-host-style addressing over HTTPS" (S3 User Guide, "Virtual hosting of
        # buckets"), so every upload would fail for good.
        raise ValueError(
            f"must have no dots: captures are uploaded over HTTPS to <bucket>.s3.<region>."
            f"amazonaws.com, which a dotted name cannot use, got {_short(value)}"
        )
    return text


def _as_key_prefix(value: Any) -> str:
    text = _as_text(value)
    if not text.endswith("/") or text.startswith("/"):
        raise ValueError(f"must end with / and not start with one, got {_short(value)}")
    if len(text.encode("utf-8")) > KEY_PREFIX_BYTES:
        raise ValueError(f"must be at most {KEY_PREFIX_BYTES} bytes")
    if any(part in (".", "..") for part in text.split("/")) or any(
        ord(c) < 32 or ord(c) == 127 for c in text
    ):
        # S3 takes such keys literally, but every tool that copies them to a disk (aws s3
        # sync, the simulator) resolves "..": refuse them, and control characters
        raise ValueError(
            f"must have no . or .. level and no control character, got {_short(value)}"
        )
    return text


def _parser(row: settings.Setting) -> Callable[[Any], Any]:
    """How a value of ``row`` is parsed and held to its bounds (paths: :func:`resolve_path`)."""
    if row.kind == settings.CHOICE:
        return lambda v: _as_choice(v, row.choices)
    if row.kind == settings.TOPIC:
        return _as_topic
    if row.kind == settings.BUCKET:
        return _as_bucket
    if row.kind == settings.KEY_PREFIX:
        return _as_key_prefix
    low, high = row.low, row.high
    if low is None or high is None:
        raise ValueError(f"{row.key}: a number needs both bounds in the settings table")
    if row.kind == settings.INTEGER:
        return lambda v: _as_int(v, int(low), int(high))
    if row.kind == settings.NUMBER:
        return lambda v: _as_float(v, low, high, low_open=row.low_open)
    raise ValueError(f"{row.key}: no parser for kind {row.kind!r}")


# Configuration key -> (Config field, parser), from the settings table. Paths apart.
_SCALAR_KEYS: Dict[str, Tuple[str, Callable[[Any], Any]]] = {
    row.key: (row.field, _parser(row)) for row in settings.SETTINGS if row.kind != settings.PATH
}
_PATH_KEYS: Dict[str, str] = {
    row.key: row.field for row in settings.SETTINGS if row.kind == settings.PATH
}
KEYS = tuple(sorted([*_SCALAR_KEYS, *_PATH_KEYS]))


# What the user typed for each key, where it was not a configuration key (the command line).
Names = Mapping[str, str]
STATE_DIR = "state dir"
PATH_MAX = 4096


def resolve_path(cwd: Path, value: Any) -> Path:
    """An absolute path from ``value``; ``ValueError`` for text no file system can hold."""
    text = _as_text(value)
    if "\x00" in text:
        raise ValueError("must not contain a NUL character")
    if len(os.fsencode(text)) > PATH_MAX:
        raise ValueError(f"is longer than {PATH_MAX} bytes")
    try:
        return (cwd / Path(text).expanduser()).resolve()
    except (OSError, RuntimeError) as err:  # a symlink loop, an unreadable parent, ...
        raise ValueError(f"cannot be resolved: {err}") from err


def merge_config(
    base: Config, raw: Mapping[str, Any], *, cwd: Path, names: Optional[Names] = None
) -> Config:
    """``base`` with the known keys of ``raw`` applied; raises :class:`ConfigError` listing
    every invalid key (as ``names`` calls it, when given). Relative paths are resolved
    against ``cwd`` (the component's work directory). An empty or null ``ModelDir`` means
    "use ``base``'s model dir"."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"configuration must be an object, got {type(raw).__name__}")
    label = dict(names or {})
    changes: Dict[str, Any] = {}
    problems: List[str] = []
    for key, (field, parse) in _SCALAR_KEYS.items():
        if key in raw and raw[key] is not None:
            try:
                changes[field] = parse(raw[key])
            except (ValueError, TypeError, OverflowError) as err:
                problems.append(f"{label.get(key, key)} {err}")
    for key, field in _PATH_KEYS.items():
        value = raw.get(key)
        if value is None or (key == "ModelDir" and value == ""):
            continue
        try:
            changes[field] = resolve_path(cwd, value)
        except ValueError as err:
            problems.append(f"{label.get(key, key)} {err}")
    if problems:
        raise ConfigError("; ".join(problems))
    return base.replace(**changes)


def resolve_prefix(template: str, thing_name: Optional[str]) -> str:
    """``CapturePrefix`` with ``{iot:thingName}`` replaced by ``thing_name``."""
    if THING_NAME_PLACEHOLDER not in template:
        return template
    if not thing_name:
        raise ConfigError(
            f"CapturePrefix uses {THING_NAME_PLACEHOLDER} but {THING_NAME_ENV} is not set"
        )
    return _as_key_prefix(template.replace(THING_NAME_PLACEHOLDER, thing_name))


def resolve_topic(template: str, thing_name: Optional[str], key: str = "PublishTopic") -> str:
    """``template`` (the value of ``key``) with ``{iot:thingName}`` replaced by
    ``thing_name``."""
    if THING_NAME_PLACEHOLDER not in template:
        return template
    if not thing_name:
        raise ConfigError(f"{key} uses {THING_NAME_PLACEHOLDER} but {THING_NAME_ENV} is not set")
    topic = template.replace(THING_NAME_PLACEHOLDER, thing_name)
    return _as_topic(topic)


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _check_folder(path: Path) -> Optional[str]:
    """Why ``path`` cannot be (or become) a folder this process writes to, or None."""
    if any(len(os.fsencode(part)) > 255 for part in path.parts):
        return f"{path} has a name longer than 255 bytes"
    current = path
    while True:
        # One stat: is_dir() then exists() would race with the service creating the folder
        # between the two calls and report a fresh folder as "not a folder".
        try:
            mode: Optional[int] = os.stat(current).st_mode
        except (FileNotFoundError, NotADirectoryError):
            mode = None
        except OSError as err:
            return f"{path} cannot be checked: {err.strerror or err}"
        exists = mode is not None
        is_dir = mode is not None and stat.S_ISDIR(mode)
        if exists and not is_dir:
            where = "is" if current == path else f"is under {current}, which is"
            return f"{path} {where} not a folder"
        if exists:
            break
        if current.parent == current:
            return f"{path} has no existing parent folder"
        current = current.parent
    if not os.access(current, os.W_OK | os.X_OK):
        what = "is" if current == path else f"would be created in {current}, which is"
        return f"{path} {what} not writable by this process"
    return None


def check_folders(config: Config, state_dir: Path, names: Optional[Names] = None) -> None:
    """Raise :class:`ConfigError` unless the folders can be used, are apart (none inside
    another) and are on one filesystem.

    A folder inside another makes a loop: processed results inside the state folder would be
    taken for records, an input folder inside the state folder would be claimed from itself.
    Claiming a file and finishing it are ``os.rename`` calls, which are atomic only within a
    filesystem; a move across filesystems would be a copy that a crash can leave half done.
    """
    label = dict(names or {})
    folders = {
        label.get("InputDir", "InputDir"): config.input_dir,
        label.get("ProcessedDir", "ProcessedDir"): config.processed_dir,
        label.get("FailedDir", "FailedDir"): config.failed_dir,
        label.get(STATE_DIR, STATE_DIR): state_dir,
    }
    for key, path in folders.items():
        problem = _check_folder(path)
        if problem is not None:
            raise ConfigError(f"{key} {problem}")
    items = list(folders.items())
    for index, (key, path) in enumerate(items):
        for other, other_path in items[index + 1 :]:
            if path == other_path:
                raise ConfigError(f"{key} and {other} are the same folder ({path})")
            if _inside(path, other_path) or _inside(other_path, path):
                inner, outer = (key, other) if _inside(path, other_path) else (other, key)
                raise ConfigError(
                    f"{inner} ({folders[inner]}) is inside {outer} ({folders[outer]}); "
                    "the input, processed, failed and state folders must not nest"
                )
    try:
        devices = {key: device_of(path) for key, path in folders.items()}
    except OSError as err:
        raise ConfigError(f"cannot check the folders: {err}") from err
    if len(set(devices.values())) > 1:
        listing = ", ".join(f"{key}={folders[key]}" for key in folders)
        raise ConfigError(
            f"input, processed, failed and state folders must be on one filesystem ({listing})"
        )


class ConfigStore:
    """Validates configurations from IPC and hands the accepted one to the service. Thread-safe.

    IPC callbacks call :meth:`check` (validation requests) and :meth:`offer` (updates); the
    service calls :meth:`take` between two files.
    """

    def __init__(
        self,
        start: Config,
        *,
        cwd: Path,
        state_dir: Path,
        thing_name: Optional[str],
        check_topic: bool,
    ) -> None:
        self.start = start
        self._cwd = cwd
        self._state_dir = state_dir
        self._thing_name = thing_name
        self._check_topic = check_topic
        self._lock = threading.Lock()
        self._pending: Optional[Config] = None

    def parse(self, raw: Mapping[str, Any]) -> Config:
        """The configuration ``raw`` describes, fully checked; :class:`ConfigError` if not."""
        config = merge_config(self.start, raw, cwd=self._cwd)
        return self.validate(config)

    def validate(self, config: Config, names: Optional[Names] = None) -> Config:
        if self._check_topic:
            resolve_topic(config.publish_topic, self._thing_name)
            resolve_topic(config.metrics_topic, self._thing_name, "MetricsTopic")
        if config.capture_bucket:
            resolve_prefix(config.capture_prefix, self._thing_name)
        check_folders(config, self._state_dir, names)
        try:
            check_model_files(config.model_dir, config.runtime)
        except ModelError as err:
            raise ConfigError(str(err)) from err
        return config

    def check(self, raw: Mapping[str, Any]) -> Optional[str]:
        """None if ``raw`` is acceptable, else the reason it is not."""
        try:
            self.parse(raw)
        except ConfigError as err:
            return str(err)
        except Exception as err:  # whatever slipped through: still a report, never silence
            LOG.exception("unexpected error validating a configuration")
            return f"invalid configuration: {type(err).__name__}: {err}"
        return None

    def offer(self, raw: Mapping[str, Any]) -> bool:
        """Queue ``raw`` for the service if valid; otherwise log why and keep the current one."""
        try:
            config = self.parse(raw)
        except ConfigError as err:
            LOG.error("configuration rejected, keeping the current one: %s", err)
            return False
        with self._lock:
            self._pending = config
        return True

    def has_pending(self) -> bool:
        with self._lock:
            return self._pending is not None

    def take(self) -> Optional[Config]:
        with self._lock:
            config, self._pending = self._pending, None
        return config
