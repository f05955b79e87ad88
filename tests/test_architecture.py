"""The modules' imports keep the architecture: no import cycles, no product module importing
``tests``, nothing in ``edge_constructs`` importing ``app_config`` (issue 14).

Every ``.py`` file is parsed with :mod:`ast`, never imported. Every import statement counts,
wherever it is (module level, inside a function, under ``if TYPE_CHECKING``): a lazy import
hides a cycle from Python's import machinery, not from a reader.

The project has several import roots, each a namespace of its own (a **unit**):

- the repository root: ``app.py``, ``app_config*``, ``stacks``, ``edge_constructs``,
  ``rollout``, ``edge_follow``, ``device_sim``, ``main_job``, ``stand_ins``,
  ``device_contract``, ``bench`` and ``scripts`` (``tests`` is the one thing left out);
- ``component_src`` (the component zip's root: ``edge_inference``) and ``training_src`` (the
  SageMaker source folder: ``edge_training``, ``train.py``);
- each Lambda runtime folder ``edge_constructs/<capability>/runtime``, bundled flat with
  ``edge_constructs/runtime_common`` (``edge_constructs/bundles.py``), so its modules import
  each other by bare name.

An edge goes from a module to the project module it names, in the same unit (``from a.b import
c`` names ``a.b.c`` when that is a module, else ``a.b``); names outside the unit (the standard
library, installed packages) are not edges. A package's ``__init__`` is an edge only when it is
what is named: Python runs it on the way to a submodule, but an ``__init__`` that imports its
submodules back is the usual shape of a package, not a cycle anyone maintains.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Not product code, at any depth: the tests themselves, and what tools put in the clone
# (cdk.out's assets hold copies of the Lambda runtimes; bench/out, the main job's out/).
SKIPPED = {"tests", "node_modules", "cdk.out", "out", "build", "__pycache__"}


@dataclass
class Unit:
    """One import namespace: module name -> file, for files under ``roots``."""

    name: str
    modules: dict[str, Path] = field(default_factory=dict)

    def add_root(self, root: Path, *, skip: Iterable[Path] = ()) -> None:
        skipped = [s.resolve() for s in skip]
        for path in sorted(root.rglob("*.py")):
            relative = path.relative_to(root)
            folders = relative.parts[:-1]
            if any(part in SKIPPED or part.startswith(".") for part in folders):
                continue
            if any(path.resolve().is_relative_to(s) for s in skipped):
                continue
            parts = list(relative.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            if parts:
                self.modules[".".join(parts)] = path


def _is_package(unit: Unit, module: str) -> bool:
    return unit.modules[module].name == "__init__.py"


def imported_names(unit: Unit, module: str) -> Iterator[tuple[str, int]]:
    """Every name ``module`` imports, made absolute (relative imports resolved), with its line;
    ``from a import b`` yields ``a.b`` (which :func:`resolve` trims to ``a`` when ``b`` is not
    a module)."""
    tree = ast.parse(unit.modules[module].read_text(encoding="utf-8"))
    package = module if _is_package(unit, module) else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".") if package else []
                if node.level > len(anchor):
                    continue  # beyond the top-level package: Python refuses it
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                yield (f"{base}.{alias.name}" if base else alias.name), node.lineno


def resolve(unit: Unit, name: str) -> str | None:
    """The unit's module that ``name`` names: itself, or its longest dotted prefix that is one."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in unit.modules:
            return candidate
        parts.pop()
    return None


def import_graph(unit: Unit) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {module: set() for module in unit.modules}
    for module in unit.modules:
        for name, _line in imported_names(unit, module):
            target = resolve(unit, name)
            if target is not None and target != module:
                graph[module].add(target)
    return graph


def find_cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or None (depth-first, iterative)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(graph):
        if state.get(start):
            continue
        path = [start]
        stack = [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return None


def imports_of(unit: Unit, prefix: str) -> list[str]:
    """``file:line imports name`` for each import of ``prefix`` or a module under it, by its
    raw name (``tests`` is in no unit, so it is never an edge)."""
    found = []
    for module, path in sorted(unit.modules.items()):
        for name, line in imported_names(unit, module):
            if name == prefix or name.startswith(prefix + "."):
                where = path.relative_to(REPO) if path.is_relative_to(REPO) else path
                found.append(f"{where}:{line} imports {name}")
    return found


def edges_from(unit: Unit, source: str, target: str) -> list[str]:
    """``module -> imported`` for each edge from ``source`` (or below) to ``target`` (or
    below)."""

    def under(module: str, prefix: str) -> bool:
        return module == prefix or module.startswith(prefix + ".")

    return sorted(
        f"{module} -> {imported}"
        for module, imported_set in import_graph(unit).items()
        if under(module, source)
        for imported in imported_set
        if under(imported, target)
    )


def project_units(repo: Path) -> list[Unit]:
    runtimes = sorted(p for p in (repo / "edge_constructs").glob("*/runtime") if p.is_dir())
    runtime_common = repo / "edge_constructs" / "runtime_common"
    product = Unit("repository root")
    product.add_root(repo, skip=[repo / "component_src", repo / "training_src", *runtimes])
    component = Unit("component_src")
    component.add_root(repo / "component_src")
    training = Unit("training_src")
    training.add_root(repo / "training_src")
    units = [product, component, training]
    for runtime in runtimes:
        lambda_unit = Unit(str(runtime.relative_to(repo)))
        lambda_unit.add_root(runtime_common)
        lambda_unit.add_root(runtime)
        units.append(lambda_unit)
    return units


UNITS = project_units(REPO)


# ---------------------------------------------------------------- the project's rules
def test_the_units_hold_the_product_packages() -> None:
    """A guard on the checker itself: the units it walks are the project's, so the rules below
    cannot pass by looking at nothing."""
    product = {name.split(".")[0] for name in UNITS[0].modules}
    wanted = {"app", "stacks", "edge_constructs", "rollout", "edge_follow", "device_sim"}
    assert wanted | {"main_job", "stand_ins"} <= product
    assert "tests" not in product and "edge_inference" not in product
    assert any(name.startswith("edge_inference.") for name in UNITS[1].modules)
    assert any(name.startswith("edge_training.") for name in UNITS[2].modules)
    assert len(UNITS) > 3 and all("cr_names" in unit.modules for unit in UNITS[3:])


@pytest.mark.parametrize("unit", UNITS, ids=[unit.name for unit in UNITS])
def test_no_import_cycles(unit: Unit) -> None:
    cycle = find_cycle(import_graph(unit))
    assert cycle is None, f"import cycle in {unit.name}: {' -> '.join(cycle or [])}"


@pytest.mark.parametrize("unit", UNITS, ids=[unit.name for unit in UNITS])
def test_no_product_module_imports_tests(unit: Unit) -> None:
    found = imports_of(unit, "tests")
    assert found == [], "product code imports test code:\n" + "\n".join(found)


def test_nothing_in_edge_constructs_imports_app_config() -> None:
    """Configuration is parsed in ``app_config`` and handed down as typed objects; a construct
    that imports it back ties every construct to the whole configuration."""
    assert edges_from(UNITS[0], "edge_constructs", "app_config") == []


# ---------------------------------------------------------------- the checker can fail
def _tree(root: Path, files: Mapping[str, str]) -> Unit:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    unit = Unit("synthetic")
    unit.add_root(root)
    return unit


def test_the_checker_reports_a_cycle_through_a_lazy_and_a_relative_import(
    tmp_path: Path,
) -> None:
    unit = _tree(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg import b\n",
            "pkg/b.py": "def f():\n    from . import c\n",  # lazy and relative
            "pkg/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.a\n",
            "other.py": "import os\nimport pkg.a\n",
        },
    )
    assert find_cycle(import_graph(unit)) == ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]
    (tmp_path / "pkg/c.py").write_text("import os\n")
    assert find_cycle(import_graph(_tree(tmp_path, {}))) is None


def test_the_checker_reports_an_import_of_tests(tmp_path: Path) -> None:
    unit = _tree(
        tmp_path,
        {
            "tool/__init__.py": "",
            "tool/run.py": "def f():\n    from tests.support.x import y\n",
            "tool/ok.py": "import testsuite\nfrom tool import run\n",
        },
    )
    assert [line.split(" imports ")[1] for line in imports_of(unit, "tests")] == [
        "tests.support.x.y"
    ]


def test_the_checker_reports_an_edge_into_a_package(tmp_path: Path) -> None:
    unit = _tree(
        tmp_path,
        {
            "cfg/__init__.py": "",
            "cfg/stages.py": "",
            "lib/__init__.py": "",
            "lib/a.py": "from cfg.stages import X\n",
            "lib/b.py": "from ..cfg import stages\n",  # out of the package: not found
            "app.py": "import cfg\n",
        },
    )
    assert edges_from(unit, "lib", "cfg") == ["lib.a -> cfg.stages"]
    assert edges_from(unit, "app", "cfg") == ["app -> cfg"]
