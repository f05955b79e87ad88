"""Parsing helpers: each takes the raw value (a string from ``-c``, or a JSON value from
cdk.json) and returns it typed, or raises a :class:`ConfigError` naming the key."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from app_config.errors import ConfigError

S3_URI_RE = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$")
# Component and nucleus versions: semver MAJOR.MINOR.PATCH, "non-negative integers, and MUST NOT
# contain leading zeroes" (semver.org 2.0.0, item 2); Greengrass component versions are semver
# (https://docs.aws.amazon.com/greengrass/v2/developerguide/component-recipe-reference.html,
# ComponentVersion).
VERSION_RE = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
THING_GROUP_RE = re.compile(r"^[a-zA-Z0-9:_-]{1,128}$")


def as_int(key: str, value: object, *, minimum: int = 1, maximum: int | None = None) -> int:
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


def as_bool(key: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    raise ConfigError(key, value, "expected true or false")


def choice(key: str, value: object, allowed: tuple[str, ...] | frozenset[str]) -> str:
    text = str(value).strip()
    if text not in allowed:
        raise ConfigError(key, value, f"allowed: {', '.join(sorted(allowed))}")
    return text


def matching(key: str, value: object, pattern: re.Pattern[str], allowed: str) -> str:
    text = str(value).strip()
    if not pattern.match(text):
        raise ConfigError(key, value, allowed)
    return text


def optional_s3(key: str, value: object) -> str:
    text = str(value or "").strip()
    if text and not S3_URI_RE.match(text):
        raise ConfigError(key, value, "expected empty or an s3://bucket/key URI")
    return text


def json_object(key: str, value: object) -> Mapping[str, Any]:
    """A JSON object, given as one (cdk.json) or as its text (``-c key='{...}'``)."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError:
            raise ConfigError(key, value, "expected a JSON object of strings") from None
    if not isinstance(value, Mapping):
        raise ConfigError(key, value, "expected a JSON object of strings")
    return value


def string_mapping(key: str, value: object) -> dict[str, str]:
    """A JSON object of strings (numbers and booleans as text); ``null`` drops the entry."""
    value = json_object(key, value)
    result: dict[str, str] = {}
    for name, item in value.items():
        if item is None:
            continue
        if not isinstance(name, str) or isinstance(item, (dict, list)):
            raise ConfigError(key, value, "expected a JSON object of strings")
        result[name] = str(item).lower() if isinstance(item, bool) else str(item)
    return result
