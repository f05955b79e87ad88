"""Recipe variable interpolation, as ``componentmanager/KernelConfigResolver.java`` does it.

* Namespaces (``KernelConfigResolver`` constructor, ``systemParameters``): ``artifacts:path``,
  ``artifacts:decompressedPath``, ``work:path``, ``kernel:rootPath``, ``iot:thingName``; and
  ``configuration:/json/pointer`` (``lookupConfigurationValueForComponent``).
* Two patterns, applied in this order (``replace``): same-component ``{namespace:key}``
  (``SAME_COMPONENT_INTERPOLATION_REGEX``) and cross-component ``{component:namespace:key}``
  (``CROSS_COMPONENT_INTERPOLATION_REGEX``). A cross-component variable is replaced only when
  the target is a *direct* dependency in the recipe; otherwise it is left as is (and the nucleus
  logs an error).
* Where (``resolve``): the lifecycle is always interpolated, with ``configuration`` lookups. The
  component *configuration* is interpolated only when the nucleus's
  ``interpolateComponentConfiguration`` is true (``shouldInterpolateConfiguration``; default false,
  ``DeviceConfiguration.getInterpolateComponentConfiguration``), and then with system parameters
  only (``interpolateSystemParametersOnly``: no ``configuration`` namespace).
* Paths (``util/NucleusPaths.java``, ``ComponentStore``): ``<root>/packages/artifacts/<name>/
  <version>``, ``<root>/packages/artifacts-unarchived/<name>/<version>``, ``<root>/work/<name>``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SAME_COMPONENT = re.compile(r"\{([.\w-]+):([^:}]*)}")
CROSS_COMPONENT = re.compile(r"\{([.\w-]+):([.\w-]+):([^:}]*)}")


@dataclass(frozen=True)
class NucleusPaths:
    """The nucleus's on-disk layout under its root (``-Droot``)."""

    root: Path

    def artifacts(self, name: str, version: str) -> Path:
        return self.root / "packages" / "artifacts" / name / version

    def unarchived(self, name: str, version: str) -> Path:
        return self.root / "packages" / "artifacts-unarchived" / name / version

    def recipes(self) -> Path:
        return self.root / "packages" / "recipes"

    def work(self, name: str) -> Path:
        return self.root / "work" / name


@dataclass(frozen=True)
class ServiceConfig:
    """One resolved service: its version, configuration and lifecycle (before interpolation)."""

    name: str
    version: str
    configuration: Mapping[str, Any]
    lifecycle: Mapping[str, Any]
    dependencies: frozenset[str]  # direct dependencies from the recipe


def json_pointer(document: Any, pointer: str) -> tuple[bool, Any]:
    """RFC 6901 lookup; (found, value)."""
    if pointer == "":
        return True, document
    if not pointer.startswith("/"):
        return False, None
    node = document
    for token in pointer[1:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return False, None
    return True, node


def _as_text(value: Any) -> str:
    """Jackson ``JsonNode.asText()`` for value nodes, ``toString()`` for containers."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


class Interpolator:
    def __init__(
        self, paths: NucleusPaths, thing_name: str, services: Mapping[str, ServiceConfig]
    ) -> None:
        self.paths = paths
        self.thing_name = thing_name
        self.services = services
        # configuration as resolve() has it so far: interpolated ones replace their originals
        self.configurations: dict[str, Mapping[str, Any]] = {
            n: s.configuration for n, s in services.items()
        }
        self.unresolved: list[str] = []  # placeholders left as is, with why

    def system(self, name: str, version: str, namespace: str, key: str) -> str | None:
        table = {
            ("artifacts", "path"): lambda: str(self.paths.artifacts(name, version)),
            ("artifacts", "decompressedPath"): lambda: str(self.paths.unarchived(name, version)),
            ("work", "path"): lambda: str(self.paths.work(name)),
            ("kernel", "rootPath"): lambda: str(self.paths.root),
            ("iot", "thingName"): lambda: self.thing_name,
        }
        getter = table.get((namespace, key))
        return getter() if getter else None

    def _configuration(self, component: str, pointer: str) -> str | None:
        if component not in self.configurations:
            return None
        found, value = json_pointer(self.configurations[component], pointer)
        return _as_text(value) if found else None

    def replace(self, text: str, service: ServiceConfig, with_configuration: bool) -> str:
        """``KernelConfigResolver.replace``: the matchers run over the original string."""
        result = text
        for match in SAME_COMPONENT.finditer(text):
            namespace, key = match.group(1), match.group(2)
            if with_configuration and namespace == "configuration":
                value = self._configuration(service.name, key)
            elif namespace in ("artifacts", "work", "kernel", "iot"):
                value = self.system(service.name, service.version, namespace, key)
            else:
                value = None
                self.unresolved.append(f"{match.group()}: unrecognized namespace")
            if value is not None:
                result = result.replace(match.group(), value)
        for match in CROSS_COMPONENT.finditer(result):
            target, namespace, key = match.group(1), match.group(2), match.group(3)
            if target not in service.dependencies:
                self.unresolved.append(
                    f"{match.group()} in {service.name}: {target} is not a direct dependency"
                )
                continue
            if target not in self.services:
                self.unresolved.append(f"{match.group()}: {target} is not a resolved service")
                continue
            if with_configuration and namespace == "configuration":
                value = self._configuration(target, key)
            elif namespace in ("artifacts", "work", "kernel", "iot"):
                value = self.system(target, self.services[target].version, namespace, key)
            else:
                value = None
                self.unresolved.append(f"{match.group()}: unrecognized namespace")
            if value is not None:
                result = result.replace(match.group(), value)
        return result

    def interpolate(self, value: Any, service: ServiceConfig, with_configuration: bool) -> Any:
        if isinstance(value, str):
            return self.replace(value, service, with_configuration)
        if isinstance(value, Mapping):
            return {k: self.interpolate(v, service, with_configuration) for k, v in value.items()}
        if isinstance(value, list):
            return [self.interpolate(v, service, with_configuration) for v in value]
        return value


@dataclass(frozen=True)
class ResolvedService:
    name: str
    version: str
    configuration: dict[str, Any]
    lifecycle: dict[str, Any]


def resolve_services(
    services: Mapping[str, ServiceConfig],
    paths: NucleusPaths,
    thing_name: str,
    *,
    interpolate_component_configuration: bool = False,
) -> tuple[dict[str, ResolvedService], list[str]]:
    """``KernelConfigResolver.resolve``: interpolate every service; also return what was left.

    As there, services are done one after the other: a service's configuration is interpolated
    (if enabled) and stored before its lifecycle is, so ``{configuration:...}`` in a lifecycle
    sees the interpolated value of services already done."""
    interpolator = Interpolator(paths, thing_name, services)
    out: dict[str, ResolvedService] = {}
    for name, service in services.items():
        configuration: Any = service.configuration
        if interpolate_component_configuration:
            configuration = interpolator.interpolate(configuration, service, False)
            interpolator.configurations[name] = configuration
        lifecycle = interpolator.interpolate(service.lifecycle, service, True)
        out[name] = ResolvedService(name, service.version, dict(configuration), dict(lifecycle))
    return out, interpolator.unresolved
