"""Resolve the stack's ``AWS::GreengrassV2::Deployment`` for one device, as the nucleus does.

* Versions: ``componentmanager/DependencyResolver.java`` ``resolveDependencies`` - every target
  component gets the deployment's exact version as a requirement from the group; a breadth-first
  walk adds each resolved component's ``ComponentDependencies`` ``VersionRequirement`` (npm-style
  ranges, ``Requirement.buildNPM``) as constraints on the dependency, and each component resolves
  to a version satisfying all constraints on it (``ComponentManager.resolveComponentVersion``).
* The nucleus itself: the running nucleus is the local candidate; if it does not satisfy every
  range on ``aws.greengrass.Nucleus``, the cloud would offer another nucleus version, and
  ``DependencyResolver.checkNonExplicitNucleusUpdate`` rejects a minor/major nucleus change that
  the deployment did not ask for explicitly (``UNAUTHORIZED_NUCLEUS_MINOR_VERSION_UPDATE``).
  ``DependencyType`` (HARD/SOFT) does not change version resolution; it only changes restarts.
* The manifest: ``componentmanager/converter/RecipeLoader.java`` picks the best platform match
  (``PlatformResolver.findBestMatch``); a recipe with no manifest for the device's platform
  fails to load. The first manifest whose platform matches is used; the match is
  aws-greengrass-component-common ``PlatformHelper.isAttributeSatisfied`` (the version the
  nucleus's pom names, 2.1.1-SNAPSHOT, at commit 2493c330289a0241ec14902523687ffddf80d97a): ``*``
  matches any value of any key; ``all`` and ``any`` are wildcards only for ``os`` and
  ``architecture``; ``/regex/`` matches the whole label; any other template must start with a
  letter or digit and equal the label; a key the device does not report never matches.
* Configuration: ``KernelConfigResolver.resolveConfigurationToApply`` - start from the running
  configuration (empty on a new device), remove the ``Reset`` paths, merge the recipe's
  ``DefaultConfiguration`` without overwriting, then merge the deployment's ``Merge`` over it.

Public components are not in the assembly; their recipes' nucleus ranges are recorded in
:data:`edge_constructs.greengrass.public_components.PINS` (the app's own pins), each
with its source.
"""

from __future__ import annotations

import copy
import json
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from device_sim.assembly import Cloud
from edge_constructs.greengrass.public_components import (
    CURRENT_NUCLEUS,
    PINS,
    TOKEN_EXCHANGE,
    admits,
)
from edge_constructs.greengrass.public_components import parse_version as _parse_version

NUCLEUS = "aws.greengrass.Nucleus"
# The nucleus a device installs today: the newest release tag in aws-greengrass-nucleus
# (v2.18.2, commit c2277d585124ff8ea28964f5d6af66559472c0cc, the commit this simulator follows).
# The demo device installs exactly this version (releases/greengrass-<version>.zip, see
# edge_constructs/demo_device/user_data.py), so what this simulator proves is what it runs.
DEFAULT_NUCLEUS_VERSION = CURRENT_NUCLEUS
PLATFORMS = {"linux/amd64": ("linux", "amd64"), "linux/aarch64": ("linux", "aarch64")}


class DeploymentFailed(RuntimeError):
    """The nucleus would fail this deployment; the message names the component and why."""


def parse_version(text: str) -> tuple[int, int, int]:
    try:
        return _parse_version(text)
    except ValueError as error:
        raise DeploymentFailed(str(error)) from None


def satisfies(version: str, requirement: str) -> bool:
    """npm range semantics, as the nucleus's ``DependencyResolver`` (see ``admits``)."""
    try:
        return admits(requirement, version)
    except ValueError as error:
        raise DeploymentFailed(str(error)) from None


# ---------------------------------------------------------------- platform selection
_SIMPLE_LABEL = re.compile(r"[a-zA-Z0-9]")  # PlatformHelper.SIMPLE_LABEL, used with lookingAt


def attribute_satisfied(name: str, label: str | None, template: str | None) -> bool:
    """``PlatformHelper.isAttributeSatisfied``."""
    if template is None or template == "*":
        return True
    if not label:
        return False  # a key the device does not report (e.g. architecture.detail on amd64)
    if len(template) >= 2 and template.startswith("/") and template.endswith("/"):
        return re.fullmatch(template[1:-1], label) is not None
    if name in ("os", "architecture") and template in ("all", "any"):
        return True
    if not _SIMPLE_LABEL.match(template):
        return False
    return template == label


def _platform_matches(platform: Mapping[str, Any], os_name: str, arch: str) -> bool:
    device = {"os": os_name, "architecture": arch}
    return all(
        attribute_satisfied(key, device.get(key), None if raw is None else str(raw))
        for key, raw in platform.items()
    )


def select_manifest(recipe: Mapping[str, Any], os_name: str, arch: str) -> dict[str, Any]:
    for manifest in recipe.get("Manifests", []):
        if _platform_matches(manifest.get("Platform") or {}, os_name, arch):
            return dict(manifest)
    raise DeploymentFailed(
        f"{recipe.get('ComponentName')}@{recipe.get('ComponentVersion')}: no manifest for "
        f"platform {os_name}/{arch} (RecipeLoader: the recipe has no matching platform manifest)"
    )


def _ci_get(mapping: Mapping[str, Any], key: str) -> Any:
    for k, v in mapping.items():
        if k.lower() == key.lower():
            return v
    return None


# ---------------------------------------------------------------- configuration merge
def _deep_merge(base: dict[str, Any], update: Mapping[str, Any], *, overwrite: bool) -> None:
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value, overwrite=overwrite)
        elif overwrite or key not in base:
            base[key] = copy.deepcopy(dict(value) if isinstance(value, Mapping) else value)


def _remove_pointer(document: dict[str, Any], pointer: str) -> None:
    if pointer == "":
        document.clear()
        return
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.lstrip("/").split("/")]
    node: Any = document
    for part in parts[:-1]:
        if not isinstance(node, dict) or part not in node:
            return
        node = node[part]
    if isinstance(node, dict):
        node.pop(parts[-1], None)


def configuration_to_apply(
    running: Mapping[str, Any] | None,
    defaults: Mapping[str, Any] | None,
    merge: Mapping[str, Any] | None,
    reset: list[str] | None,
) -> dict[str, Any]:
    """``KernelConfigResolver.resolveConfigurationToApply``."""
    config: dict[str, Any] = copy.deepcopy(dict(running or {}))
    for pointer in reset or []:
        _remove_pointer(config, pointer)
    _deep_merge(config, defaults or {}, overwrite=False)
    _deep_merge(config, merge or {}, overwrite=True)
    return config


# ---------------------------------------------------------------- resolution
@dataclass
class ResolvedComponent:
    name: str
    version: str
    public: bool
    recipe: dict[str, Any] | None  # None for public components (not in the assembly)
    manifest: dict[str, Any] | None
    lifecycle: dict[str, Any]
    configuration: dict[str, Any]
    dependencies: dict[str, dict[str, str]]  # name -> {VersionRequirement, DependencyType}
    artifacts: list[dict[str, Any]]


@dataclass
class Resolution:
    platform: str
    nucleus_version: str
    components: dict[str, ResolvedComponent]
    order: list[str]  # dependencies before dependents
    constraints: dict[str, dict[str, str]]  # component -> {dependent or group -> requirement}
    notes: list[str] = field(default_factory=list)
    thing_group: str = ""  # the group the deployment targets
    deployment_name: str = ""


def target_group(document: Mapping[str, Any]) -> str:
    """The thing-group name a deployment targets (``TargetArn`` ``...:thinggroup/<name>``)."""
    return str(document.get("TargetArn", "")).rsplit("/", 1)[-1]


def deployment_for(cloud: Cloud, thing_group: str | None) -> Mapping[str, Any]:
    """The deployment a device in ``thing_group`` receives: the one whose ``TargetArn`` is that
    group (a thing-group deployment reaches the things in the group: developer guide, "Create
    deployments", https://docs.aws.amazon.com/greengrass/v2/developerguide/create-deployments.html).
    A device in several groups would get several deployments, whose root components the nucleus
    keeps per group (``deployment/DeploymentService.java``, ``GROUP_TO_ROOT_COMPONENTS_TOPICS``);
    each simulated
    device is in one group, so one deployment targets it. ``None``: the stage's only one."""
    if thing_group is None:
        if len(cloud.deployments) != 1:
            raise DeploymentFailed(
                "expected one AWS::GreengrassV2::Deployment in the stage, found "
                f"{len(cloud.deployments)}: name the device's thing group"
            )
        return cloud.deployments[0]
    matching = [d for d in cloud.deployments if target_group(d) == thing_group]
    if len(matching) != 1:
        groups = ", ".join(sorted({target_group(d) for d in cloud.deployments})) or "none"
        raise DeploymentFailed(
            f"{len(matching)} deployments target thing group {thing_group} (deployments "
            f"target: {groups}); a device in that group would receive "
            + ("nothing" if not matching else "several, which this simulator does not merge")
        )
    return matching[0]


def resolve_deployment(
    cloud: Cloud,
    platform: str,
    nucleus_version: str = DEFAULT_NUCLEUS_VERSION,
    running_configuration: Mapping[str, Mapping[str, Any]] | None = None,
    thing_group: str | None = None,
) -> Resolution:
    if platform not in PLATFORMS:
        raise DeploymentFailed(
            f"unknown platform {platform!r}; supported: {', '.join(sorted(PLATFORMS))}"
        )
    os_name, arch = PLATFORMS[platform]
    document = deployment_for(cloud, thing_group)
    group = "thinggroup/" + str(document.get("TargetArn", "")).rsplit("/", 1)[-1]
    targets: dict[str, Mapping[str, Any]] = dict(document.get("Components", {}))
    constraints: dict[str, dict[str, str]] = {}
    for name, spec in targets.items():
        constraints.setdefault(name, {})[group] = "=" + str(spec["ComponentVersion"])
    notes: list[str] = []
    resolved: dict[str, ResolvedComponent] = {}
    edges: dict[str, list[str]] = {}
    active_nucleus = nucleus_version
    if NUCLEUS in targets:
        pinned = str(targets[NUCLEUS]["ComponentVersion"])
        if pinned != nucleus_version:
            notes.append(
                f"the deployment pins {NUCLEUS} {pinned}: the device's nucleus changes from "
                f"{nucleus_version} to {pinned} (an explicit nucleus update; the device restarts)"
            )
        active_nucleus = pinned

    queue = deque(targets)
    while queue:
        name = queue.popleft()
        requirements = constraints.get(name, {})
        if name == NUCLEUS:
            bad = {k: r for k, r in requirements.items() if not satisfies(active_nucleus, r)}
            if bad:
                who = "; ".join(f"{k} requires {r}" for k, r in sorted(bad.items()))
                source = "the deployment's pinned" if NUCLEUS in targets else "the device's running"
                raise DeploymentFailed(
                    f"{source} nucleus {active_nucleus} (--nucleus-version) is outside a "
                    f"component's {NUCLEUS} range: {who}. The nucleus version must fall inside "
                    "every range: the running nucleus is the only local candidate, and a "
                    "different nucleus minor version that the deployment does not name is "
                    "rejected (DependencyResolver.checkNonExplicitNucleusUpdate)"
                )
            continue
        component = _resolve_one(cloud, name, requirements, os_name, arch, notes)
        previous = resolved.get(name)
        resolved[name] = component
        if previous is not None and previous.version == component.version:
            continue
        edges[name] = []
        for dep, spec in component.dependencies.items():
            requirement = str(spec.get("VersionRequirement", "*"))
            constraints.setdefault(dep, {})[name] = requirement
            edges[name].append(dep)
            queue.append(dep)

    # configuration of each component (KernelConfigResolver.getServiceConfig)
    for name, component in resolved.items():
        spec = targets.get(name, {})
        update = spec.get("ConfigurationUpdate") or {}
        merge = update.get("Merge")
        merge_value: Mapping[str, Any] | None = None
        if isinstance(merge, str) and merge:
            merge_value = json.loads(merge)
        elif isinstance(merge, Mapping):
            merge_value = merge
        defaults: Mapping[str, Any] = {}
        if component.public and name in PINS:
            defaults = PINS[name].default_configuration
        if component.recipe is not None:
            cfg = _ci_get(component.recipe, "ComponentConfiguration") or {}
            defaults = _ci_get(cfg, "DefaultConfiguration") or {}
        component.configuration = configuration_to_apply(
            (running_configuration or {}).get(name), defaults, merge_value, update.get("Reset")
        )

    order: list[str] = []
    seen: set[str] = set()

    def visit(n: str) -> None:
        if n in seen or n not in resolved:
            return
        seen.add(n)
        for d in edges.get(n, []):
            visit(d)
        order.append(n)

    for n in sorted(resolved):
        visit(n)
    return Resolution(
        platform,
        active_nucleus,
        resolved,
        order,
        constraints,
        notes,
        thing_group=target_group(document),
        deployment_name=str(document.get("DeploymentName", "")),
    )


def _resolve_one(
    cloud: Cloud,
    name: str,
    requirements: Mapping[str, str],
    os_name: str,
    arch: str,
    notes: list[str],
) -> ResolvedComponent:
    private = sorted(
        (v for (n, v) in cloud.components if n == name), key=parse_version, reverse=True
    )
    if private:
        candidates = [v for v in private if all(satisfies(v, r) for r in requirements.values())]
        if not candidates:
            raise DeploymentFailed(
                f"no version of {name} satisfies {dict(requirements)} (versions in the account: "
                f"{', '.join(private)}) (NoAvailableComponentVersionException)"
            )
        version = candidates[0]
        recipe = cloud.components[(name, version)].recipe
        manifest = select_manifest(recipe, os_name, arch)
        lifecycle = manifest.get("Lifecycle") or _ci_get(recipe, "Lifecycle") or {}
        return ResolvedComponent(
            name=name,
            version=version,
            public=False,
            recipe=recipe,
            manifest=manifest,
            lifecycle=dict(lifecycle),
            configuration={},
            dependencies=dict(_ci_get(recipe, "ComponentDependencies") or {}),
            artifacts=list(manifest.get("Artifacts") or []),
        )
    if name == TOKEN_EXCHANGE:
        return _token_exchange(requirements, notes)
    public = PINS.get(name)
    if public is None:
        raise DeploymentFailed(
            f"component {name} is neither in the assembly nor a public component the simulator "
            f"knows ({', '.join(sorted(PINS))})"
        )
    pinned = [r[1:] for r in requirements.values() if r.startswith("=")]
    if not pinned:
        raise DeploymentFailed(f"public component {name} is not pinned to an exact version")
    version = pinned[0]
    if not any(o in ("*", os_name) and a in ("*", arch) for o, a in public.platforms):
        raise DeploymentFailed(f"{name}@{version}: no manifest for platform {os_name}/{arch}")
    dependencies: dict[str, dict[str, str]] = {}
    if public.nucleus_range is None:
        notes.append(f"{name}@{version}: nucleus range unknown ({public.source})")
    else:
        dependencies[NUCLEUS] = {
            "VersionRequirement": public.nucleus_range,
            "DependencyType": "SOFT",
        }
        notes.append(f"{name}@{version}: nucleus range {public.nucleus_range} ({public.source})")
    return ResolvedComponent(name, version, True, None, None, {}, {}, dependencies, [])


#: The token-exchange service's versions in the public catalog: the developer guide's
#: token-exchange-service-component page lists "2.0.x"; the simulator takes the lowest.
TOKEN_EXCHANGE_VERSION = "2.0.0"  # noqa: S105 (a version)


def _token_exchange(requirements: Mapping[str, str], notes: list[str]) -> ResolvedComponent:
    """``aws.greengrass.TokenExchangeService``: a service built into the nucleus
    (``tes/TokenExchangeService.java``, ``@ImplementsService``, whose running version is the
    annotation's default ``0.0.0``, so the cloud's 2.0.x version is the one resolved and the
    nucleus uses its built-in service for it: ``ComponentManager.getBuiltinComponentMetadata``).
    No artifacts, no lifecycle; the device starts its credential endpoint when it is deployed."""
    bad = {k: r for k, r in requirements.items() if not satisfies(TOKEN_EXCHANGE_VERSION, r)}
    if bad:
        who = "; ".join(f"{k} requires {r}" for k, r in sorted(bad.items()))
        raise DeploymentFailed(
            f"no version of {TOKEN_EXCHANGE} satisfies {who} (the catalog has 2.0.x) "
            "(NoAvailableComponentVersionException)"
        )
    notes.append(
        f"{TOKEN_EXCHANGE}@{TOKEN_EXCHANGE_VERSION}: built into the nucleus (its credential "
        "endpoint runs while the network is up)"
    )
    return ResolvedComponent(
        TOKEN_EXCHANGE, TOKEN_EXCHANGE_VERSION, True, None, None, {}, {}, {}, []
    )
