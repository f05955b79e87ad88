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
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edge_constructs.greengrass.version_requirements import satisfies

LOG_MANAGER = "aws.greengrass.LogManager"
VARIANT_DLR = "variant.DLR"
NUCLEUS = "aws.greengrass.Nucleus"
#: Built into the nucleus (aws-greengrass-nucleus tes/TokenExchangeService.java,
#: ``@ImplementsService``): no artifacts. The developer guide's token-exchange-service-component
#: page lists its versions as "2.0.x"; a range, not a pin, so whichever 2.0 patch the catalog
#: holds resolves.
TOKEN_EXCHANGE = "aws.greengrass.TokenExchangeService"  # noqa: S105 (a component name)
TOKEN_EXCHANGE_RANGE = ">=2.0.0 <3.0.0"  # noqa: S105 (a version range)
CURRENT_NUCLEUS = "2.18.2"  # newest tag in aws-greengrass/aws-greengrass-nucleus here


@dataclass(frozen=True)
class PublicComponent:
    """One pinned public component version.

    nucleus_range: the npm-style range of its ``aws.greengrass.Nucleus`` dependency, or None
        where no source on hand records it (then nothing is checked, and the README says so).
    exists: where the version's existence was confirmed, or None where it could not be.
    source: where ``nucleus_range`` comes from.
    component_type: the recipe's ``ComponentType``.
    platforms: ``(os, architecture)`` of its recipe's manifests (``*``: any).
    default_configuration: its recipe's ``DefaultConfiguration`` (what a device resolves for
        ``{<name>:configuration:/...}`` in a dependent's recipe).
    """

    name: str
    version: str
    nucleus_range: str | None
    nucleus_dependency_type: str | None
    exists: str | None
    source: str
    component_type: str = "aws.greengrass.generic"
    platforms: tuple[tuple[str, str], ...] = (("*", "*"),)
    default_configuration: Mapping[str, Any] = field(default_factory=dict)


LOG_MANAGER_PIN = PublicComponent(
    name=LOG_MANAGER,
    version="2.3.7",
    nucleus_range=None,
    nucleus_dependency_type=None,
    exists="aws-greengrass/aws-greengrass-log-manager: tag v2.3.7",
    source="aws-greengrass/aws-greengrass-log-manager recipe.yaml at tag v2.3.7 declares no "
    "ComponentDependencies (the published recipe's nucleus range is added at release). The "
    "developer guide's log-manager-component page (Dependencies) lists it, but no copy of its "
    "2.3.x table was on hand (the archived awsdocs/aws-iot-greengrass-v2-developer-guide "
    "doc_source/log-manager-component.md stops at 2.2.1: >=2.1.0 <2.6.0). Check with "
    "`aws greengrassv2 get-component --arn arn:aws:greengrass:REGION:aws:components:"
    "aws.greengrass.LogManager:versions:2.3.7 --recipe-output-format JSON`.",
    component_type="aws.greengrass.plugin",
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
    # the same recipe's Manifests and DefaultConfiguration
    platforms=(("linux", "arm"), ("linux", "amd64"), ("linux", "aarch64"), ("windows", "*")),
    default_configuration={
        "MLRootPath": "../variant.DLR/greengrass_ml",
        "WindowsMLRootPath": "%cd%\\..\\variant.DLR\\greengrass_ml",
        "UseInstaller": "true",
    },
)

PINS = {pin.name: pin for pin in (LOG_MANAGER_PIN, VARIANT_DLR_PIN)}

_VERSION = re.compile(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-[0-9A-Za-z.-]+)?$")


def parse_version(text: str) -> tuple[int, int, int]:
    """``X[.Y[.Z]][-pre]`` as a comparable tuple (missing parts are 0)."""
    match = _VERSION.match(text.strip())
    if not match:
        raise ValueError(f"not a semantic version: {text!r}")
    return (int(match.group(1)), int(match.group(2) or 0), int(match.group(3) or 0))


def admits(version_range: str, version: str) -> bool:
    """Whether ``version`` satisfies a ``VersionRequirement`` as the nucleus evaluates it
    (semver4j ``Requirement.buildNPM(range).isSatisfiedBy(new Semver(version))``, ported in
    :mod:`edge_constructs.greengrass.version_requirements`). Raises ``ValueError`` naming what
    cannot be parsed."""
    return satisfies(version, version_range)
