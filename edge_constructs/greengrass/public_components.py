"""The AWS-published components this app deploys, pinned, with the nucleus range each declares.

Plain data (no CDK import), so app_config, the stacks and the device simulator can all read it.

Why the ranges matter: a component's ``aws.greengrass.Nucleus`` dependency constrains the
nucleus version the deployment resolves. When the resolved nucleus differs from the device's
running one by a minor or major version and the deployment does not name the nucleus itself,
the deployment fails with UNAUTHORIZED_NUCLEUS_MINOR_VERSION_UPDATE
(aws-greengrass-nucleus ``componentmanager/DependencyResolver.java``,
``checkNonExplicitNucleusUpdate``); SOFT or HARD changes only how updates restart it. New
devices install the current nucleus (2.18.x at the time of writing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LOG_MANAGER = "aws.greengrass.LogManager"
VARIANT_DLR = "variant.DLR"
NUCLEUS = "aws.greengrass.Nucleus"
CURRENT_NUCLEUS = "2.18.2"  # newest tag in aws-greengrass/aws-greengrass-nucleus here


@dataclass(frozen=True)
class PublicComponent:
    """One pinned public component version.

    nucleus_range: the npm-style range of its ``aws.greengrass.Nucleus`` dependency, or None
        where no source on hand records it (then nothing is checked, and the README says so).
    exists: where the version's existence was confirmed, or None where it could not be.
    source: where ``nucleus_range`` comes from.
    """

    name: str
    version: str
    nucleus_range: str | None
    nucleus_dependency_type: str | None
    exists: str | None
    source: str


LOG_MANAGER_PIN = PublicComponent(
    name=LOG_MANAGER,
    version="2.3.7",
    nucleus_range=None,
    nucleus_dependency_type=None,
    exists="aws-greengrass/aws-greengrass-log-manager: tag v2.3.7",
    source="aws-greengrass/aws-greengrass-log-manager recipe.yaml at tag v2.3.7 declares no "
    "ComponentDependencies (the published recipe's nucleus range is added at release). The "
    "developer guide's log-manager-component page (Dependencies) lists it; check with "
    "`aws greengrassv2 get-component --arn arn:aws:greengrass:REGION:aws:components:"
    "aws.greengrass.LogManager:versions:2.3.7 --recipe-output-format JSON`.",
)

VARIANT_DLR_PIN = PublicComponent(
    name=VARIANT_DLR,
    version="1.6.16",
    nucleus_range=">=2.0.0 <2.13.0",
    nucleus_dependency_type="SOFT",
    exists=None,
    source="awslabs/aws-greengrass-labs-ml-components dlr/variant.DLR/recipe.json (HEAD "
    "bf930da): ComponentDependencies aws.greengrass.Nucleus '>=2.0.0 <2.13.0' SOFT. The "
    "repository publishes with version NEXT_PATCH, so which 1.6.x versions exist is not in it.",
)

PINS = {pin.name: pin for pin in (LOG_MANAGER_PIN, VARIANT_DLR_PIN)}

_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


def _parse(version: str) -> tuple[int, int, int]:
    match = _VERSION.match(version)
    if not match:
        raise ValueError(f"not an X.Y.Z version: {version!r}")
    return (int(match.group(1)), int(match.group(2)), int(match.group(3)))


def admits(version_range: str, version: str) -> bool:
    """Whether ``version`` satisfies a range of space-separated ``>=``, ``>``, ``<=``, ``<``,
    ``=`` comparators (the subset of npm ranges the public recipes above use)."""
    v = _parse(version)
    for comparator in version_range.split():
        match = re.fullmatch(r"(>=|<=|>|<|=)?(\d+\.\d+\.\d+)", comparator)
        if not match:
            raise ValueError(f"unsupported comparator {comparator!r} in {version_range!r}")
        op, bound = match.group(1) or "=", _parse(match.group(2))
        ok = {
            ">=": v >= bound,
            ">": v > bound,
            "<=": v <= bound,
            "<": v < bound,
            "=": v == bound,
        }[op]
        if not ok:
            return False
    return True
