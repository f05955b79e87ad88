"""Deterministic names and versions derived from content at synth time.

Job names and component versions must change exactly when their inputs change: the same inputs
give the same name on every machine (so a retried create finds the existing job, and `cdk diff`
shows no change), and any changed input gives a new one.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_cdk import CfnResource, Stack
from constructs import Construct

# SageMaker job names: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$
MAX_JOB_NAME = 63


# Per stack: logical ID -> content digest of the resources registered with `register_content`.
_CONTENT: weakref.WeakKeyDictionary[Stack, dict[str, str]] = weakref.WeakKeyDictionary()


def digest(scope: Construct, payload: Any) -> str:
    """SHA-256 (hex) of ``payload`` after resolving tokens to their CloudFormation form.

    Tokens (``Ref``, ``Fn::GetAtt``, asset locations) resolve to the same JSON on every synth,
    so the digest is stable while still covering references such as the role or bucket. A
    reference to a resource registered with :func:`register_content` (a job, a package, a
    published artifact) is replaced by that resource's own content digest, so a digest follows
    everything upstream of it by construction: a version derived from a recipe that points at
    ``<ModelPackage>.ArtifactUri`` changes when anything the package was built from changes.
    """
    stack = Stack.of(scope)
    resolved = _with_content(stack, stack.resolve(payload))
    canonical = json.dumps(resolved, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def register_content(resource: CfnResource, content_digest: str) -> None:
    """Record what ``resource``'s attributes depend on, for the digests of whoever reads them."""
    stack = Stack.of(resource)
    _CONTENT.setdefault(stack, {})[stack.get_logical_id(resource)] = content_digest


def _with_content(stack: Stack, value: Any) -> Any:
    registry = _CONTENT.get(stack, {})
    if isinstance(value, Mapping):
        if len(value) == 1:
            ((key, arg),) = value.items()
            target = arg[0] if key == "Fn::GetAtt" else arg if key == "Ref" else None
            if isinstance(target, str) and target in registry:
                return {key: arg, "Content": registry[target]}
        return {k: _with_content(stack, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_content(stack, v) for v in value]
    return value


def without(properties: Mapping[str, Any], excluded: Mapping[str, str]) -> dict[str, Any]:
    """``properties`` less the ``excluded`` keys (key -> why it may not count); each excluded
    key must be present, so an exclusion cannot silently outlive the property it names."""
    missing = sorted(set(excluded) - set(properties))
    if missing:
        raise ValueError(f"digest exclusions name absent properties: {', '.join(missing)}")
    return {k: v for k, v in properties.items() if k not in excluded}


def job_name(prefix: str, kind: str, content_digest: str) -> str:
    """``<prefix>-<kind>-<12 hex>``, within SageMaker's 63 characters."""
    name = f"{prefix}-{kind}-{content_digest[:12]}"
    if len(name) > MAX_JOB_NAME:
        raise ValueError(f"job name {name!r} is longer than {MAX_JOB_NAME} characters")
    return name


def content_version(major_minor: str, content_digest: str) -> str:
    """A semantic version whose patch number is derived from the content digest.

    Greengrass component versions are immutable: a changed recipe under an unchanged version
    fails with ConflictException. The patch is the first 7 hex digits as an integer (< 2**28),
    so it fits every semver parser and changes with the content.
    """
    return f"{major_minor}.{int(content_digest[:7], 16)}"


def tree_digest(root: Path, exclude: tuple[str, ...] = ("__pycache__", "*.pyc", ".*")) -> str:
    """SHA-256 over the relative paths and contents of the files under ``root``."""
    sha = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root)
        if any(fnmatch.fnmatch(part, pattern) for part in relative.parts for pattern in exclude):
            continue
        sha.update(relative.as_posix().encode() + b"\0")
        sha.update(hashlib.sha256(path.read_bytes()).digest())
    return sha.hexdigest()
