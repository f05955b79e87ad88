"""The components section: the nucleus pin, the public components' constraints, the log
retention and the predictions topic."""

from __future__ import annotations

import re

from app_config.errors import ConfigError
from app_config.parse import VERSION_RE, as_int, matching
from device_contract import topics
from edge_constructs.greengrass.public_components import VARIANT_DLR_PIN, admits, parse_version
from edge_constructs.greengrass.recipes import MIN_NUCLEUS_VERSION, NUCLEUS_VERSION_CEILING
from edge_constructs.limits import LOG_RETENTION_DAYS
from edge_constructs.props import DeviceClass

_TOPIC_RE = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
# The device publishes on <publish_topic_prefix>/<thing name>/predictions. AWS IoT Core topics
# hold at most 7 forward slashes and 256 bytes (AWS IoT Core quotas, "Message broker and
# protocol limits": "Maximum number of slashes in topic and topic filter", "Topic size"); a thing
# name has at most 128 characters (botocore iot ThingName).
TOPIC_MAX_SLASHES = 7
TOPIC_MAX_BYTES = 256
TOPIC_SUFFIX_MAX = len("/") + 128 + len(f"/{topics.PREDICTIONS_SUFFIX}")


def parse_topic_prefix(value: object) -> str:
    text = matching(
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


def parse_nucleus_version(value: object, device_classes: tuple[DeviceClass, ...]) -> str:
    """``nucleus_version``: empty, or a nucleus the components work on."""
    nucleus_version = str(value or "").strip()
    if nucleus_version:
        matching(
            "nucleus_version",
            nucleus_version,
            VERSION_RE,
            "expected empty or X.Y.Z (semver, no leading zeros)",
        )
        if parse_version(nucleus_version) < parse_version(MIN_NUCLEUS_VERSION):
            raise ConfigError(
                "nucleus_version",
                nucleus_version,
                f"must be at least {MIN_NUCLEUS_VERSION}: the inference component's "
                "accessControl uses a '*' wildcard, which older nuclei do not match",
            )
        if parse_version(nucleus_version) >= parse_version(NUCLEUS_VERSION_CEILING):
            # The resolver adds every dependency's requirement as a constraint, SOFT ones too
            # (aws-greengrass-nucleus v2.18.2 componentmanager/DependencyResolver.java,
            # resolveComponentDependencies): the recipe's range would admit no nucleus.
            raise ConfigError(
                "nucleus_version",
                nucleus_version,
                f"must be below {NUCLEUS_VERSION_CEILING}: the inference component's recipe "
                f"requires aws.greengrass.Nucleus >={MIN_NUCLEUS_VERSION} "
                f"<{NUCLEUS_VERSION_CEILING}",
            )
    if any(c.runtime == "variant.DLR" for c in device_classes):
        _check_variant_dlr_nucleus(nucleus_version)
    return nucleus_version


def parse_log_retention(value: object) -> int:
    retention = as_int("log_retention_days", value)
    if retention not in LOG_RETENTION_DAYS:
        raise ConfigError(
            "log_retention_days",
            value,
            f"CloudWatch Logs allows {', '.join(str(d) for d in LOG_RETENTION_DAYS)}",
        )
    return retention


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
