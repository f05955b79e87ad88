"""The configuration and the constructs depend one way: ``app_config`` reads a few
standard-library modules of ``edge_constructs`` (types, the Neo catalog, limits, public
component pins), and nothing in ``edge_constructs`` imports ``app_config``."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.infra.conftest import REPO_ROOT


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_nothing_in_edge_constructs_imports_app_config() -> None:
    offenders = sorted(
        str(path.relative_to(REPO_ROOT))
        for path in (REPO_ROOT / "edge_constructs").rglob("*.py")
        if any(m == "app_config" or m.startswith("app_config.") for m in _imported_modules(path))
    )
    assert offenders == []


def test_the_import_check_sees_an_import_of_app_config(tmp_path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from app_config.keys import KEYS\n    return KEYS\n")
    assert "app_config.keys" in _imported_modules(module)


def test_app_config_loads_without_the_cdk() -> None:
    """Importing the configuration (and validating one) pulls in no CDK module: what it takes
    from edge_constructs is standard-library code."""
    code = (
        "import sys\n"
        "from app_config import build_config, merge_context\n"
        "build_config('dev', merge_context({}, {}, {}))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('aws_cdk', 'constructs', 'jsii', 'cdk_nag')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
