"""Parsers for custom-resource ``ResourceProperties``, shared by every handler Lambda.

CloudFormation sends every property as a string (numbers, booleans and JSON included), so each
one is parsed explicitly, and every error names the property it is about. Standard library only,
nothing done at import time: ``edge_constructs.lambda_function.PythonFunction`` copies this folder
into each handler's asset root, where it is imported as the top-level module ``cr_properties``.
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping, Optional

# SageMaker's job-name pattern; at most 63 characters.
JOB_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
S3_SCHEME = "s3://"


class PropertyError(ValueError):
    """A ResourceProperty is missing or malformed; the message names it."""


def _absent(value: Any) -> bool:
    return value is None or value == ""


def string(props: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    """The property as a string; "" when absent and not ``required``."""
    value = props.get(name)
    if _absent(value):
        if required:
            raise PropertyError(f"Property {name} is required")
        return ""
    if not isinstance(value, str):
        raise PropertyError(f"Property {name} must be a string, got {type(value).__name__}")
    return value


def integer(props: Mapping[str, Any], name: str, *, minimum: int = 1) -> int:
    """A required integer property, at least ``minimum``."""
    raw = props.get(name)
    if _absent(raw):
        raise PropertyError(f"Property {name} is required")
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise PropertyError(f"Property {name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise PropertyError(f"Property {name} must be at least {minimum}, got {value}")
    return value


def boolean(props: Mapping[str, Any], name: str, *, default: bool = False) -> bool:
    """``"true"`` or ``"false"`` (any case); ``default`` when absent."""
    raw = props.get(name)
    if _absent(raw):
        return default
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "false"):
        return text == "true"
    raise PropertyError(f'Property {name} must be "true" or "false", got {raw!r}')


def json_text(props: Mapping[str, Any], name: str, *, required: bool) -> tuple[str, Any]:
    """(the JSON text to pass on, its parsed value); ("", None) when absent and optional."""
    raw = props.get(name)
    if _absent(raw):
        if required:
            raise PropertyError(f"Property {name} is required")
        return "", None
    if not isinstance(raw, str):
        # Already structured (never from CloudFormation, which sends strings).
        return json.dumps(raw, separators=(",", ":")), raw
    try:
        return raw, json.loads(raw)
    except json.JSONDecodeError as error:
        raise PropertyError(f"Property {name} is not valid JSON: {error}") from None


def json_value(props: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """The parsed JSON value of an optional property; ``default`` when absent."""
    if _absent(props.get(name)):
        return default
    _, value = json_text(props, name, required=True)
    return value


def json_object(props: Mapping[str, Any], name: str) -> dict[str, Any]:
    """An optional JSON object property; {} when absent."""
    value = json_value(props, name, {})
    if not isinstance(value, dict):
        raise PropertyError(f"Property {name} must be a JSON object")
    return dict(value)


def json_list(props: Mapping[str, Any], name: str) -> list[Any]:
    """An optional JSON list property; [] when absent."""
    value = json_value(props, name, [])
    if not isinstance(value, list):
        raise PropertyError(f"Property {name} must be a JSON list")
    return list(value)


def string_map(props: Mapping[str, Any], name: str) -> dict[str, str]:
    """An optional JSON object of string to string; {} when absent."""
    value = json_value(props, name, {})
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise PropertyError(f"Property {name} must be a JSON object of string to string")
    return dict(value)


def tag_list(props: Mapping[str, Any], name: str = "Tags") -> list[dict[str, str]]:
    """A JSON object of tags as SageMaker's ``[{"Key": ..., "Value": ...}]``, sorted by key."""
    mapping = string_map(props, name)
    return [{"Key": key, "Value": mapping[key]} for key in sorted(mapping)]


def s3_uri(props: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    """An ``s3://`` URI (a bucket alone or a prefix will do); "" when absent and optional."""
    value = string(props, name, required=required)
    if value and not value.startswith(S3_SCHEME):
        raise PropertyError(f"Property {name} must be an s3:// URI, got {value!r}")
    return value


def split_s3_uri(uri: str, name: str) -> tuple[str, str]:
    """(bucket, key) of ``s3://bucket/key``; ``name`` is the property the URI came from."""
    if not uri.startswith(S3_SCHEME):
        raise PropertyError(f"Property {name} must be an s3:// URI, got {uri!r}")
    bucket, _, key = uri[len(S3_SCHEME) :].partition("/")
    if not bucket or not key:
        raise PropertyError(f"Property {name} must be s3://bucket/key, got {uri!r}")
    return bucket, key


def is_job_name(value: Optional[str]) -> bool:
    """Whether ``value`` is a valid SageMaker job name (a physical ID may not be one)."""
    return bool(value) and JOB_NAME_RE.match(value or "") is not None


def job_name(props: Mapping[str, Any], name: str = "JobName") -> str:
    """A required SageMaker job name."""
    value = string(props, name)
    if not JOB_NAME_RE.match(value):
        raise PropertyError(
            f"Property {name} must match {JOB_NAME_RE.pattern} (at most 63 characters), "
            f"got {value!r}"
        )
    return value
