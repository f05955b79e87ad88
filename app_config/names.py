"""The names section: ``prefix``, ``component_namespace``, the stage, and the names the prefix
does not spell out (thing groups and the component namespace)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from app_config.classes import class_key
from app_config.errors import ConfigError
from app_config.keys import DEFAULTS
from app_config.parse import matching
from edge_constructs.props import DeviceClass

PREFIX_RE = re.compile(r"^[a-z][a-z0-9-]{0,18}[a-z0-9]$")
_NAMESPACE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)+$")
_STAGE_RE = re.compile(r"^[a-z][a-z0-9]{0,11}$")
S3_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")


def parse_prefix(value: object) -> str:
    prefix = matching(
        "prefix",
        value,
        PREFIX_RE,
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
    return prefix


def parse_namespace(value: object) -> str:
    return matching(
        "component_namespace", value, _NAMESPACE_RE, "a dotted name such as com.example.edgeai"
    )


def parse_stage(stage: str) -> str:
    return matching("stage", stage, _STAGE_RE, "1-12 lower-case letters/digits")


def derive_names(merged: dict[str, Any], given: set[str]) -> None:
    """Fill in, from a valid prefix, the names no layer set (see :func:`prefix_names`)."""
    prefix = merged["prefix"]
    if isinstance(prefix, str) and PREFIX_RE.match(prefix):
        for key, value in prefix_names(prefix).items():
            if key not in given:
                merged[key] = value


def _where(key: str) -> str:
    """Where a single-target key is set."""
    return f"pipeline.{key}, stages.<stage>.{key} or -c {key}=..."


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


def check_prefix_names(
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
                key = class_key(device_class.name, field_name)
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
