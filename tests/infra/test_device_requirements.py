"""component_src/requirements.txt resolves for every device the README promises.

Targets: CPython 3.9-3.13 on Linux x86_64 and aarch64 (glibc >= 2.31). pip evaluates markers
for the interpreter that runs it, so a check on this machine's Python proves nothing about a
device's: markers are evaluated per target with ``packaging.markers``
(``scripts/device_wheels.py``).
The ``network`` test then fetches every picked pin from PyPI for exactly that target
(``pip download --only-binary=:all: --no-deps --python-version ... --platform ...``); the
offline tests check the same against ``tests/data/device_wheels.json``, recorded by
``python scripts/device_wheels.py`` from those downloads (file name and Requires-Python).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
from packaging.specifiers import SpecifierSet
from packaging.tags import Tag
from packaging.utils import parse_wheel_filename

REPO_ROOT = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "device_wheels", REPO_ROOT / "scripts" / "device_wheels.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["device_wheels"] = module
    spec.loader.exec_module(module)
    return module


dw = _load()
RECORDED = json.loads(dw.RECORD.read_text()) if dw.RECORD.exists() else {}


def _target_tags(target) -> set[Tag]:
    """The wheel tags CPython ``target`` installs (cpXY, abi3 from cp32 up, none)."""
    minor = int(target.python.split(".")[1])
    interpreters = [f"cp3{m}" for m in range(2, minor + 1)]
    tags = {Tag(f"cp3{minor}", f"cp3{minor}", p) for p in target.platform_tags}
    tags |= {Tag(i, "abi3", p) for i in interpreters for p in target.platform_tags}
    pythons = ["py3", f"py3{minor}", f"cp3{minor}"]
    tags |= {Tag(py, "none", p) for py in pythons for p in [*target.platform_tags, "any"]}
    return tags


def test_promised_targets() -> None:
    assert dw.PYTHONS == ("3.9", "3.10", "3.11", "3.12", "3.13")
    assert dw.MACHINES == ("x86_64", "aarch64")


@pytest.mark.parametrize("target", dw.TARGETS, ids=lambda t: t.key)
def test_markers_pick_a_wheel_that_installs_on_the_target(target) -> None:
    pins = dw.picked(target)
    assert {"dlr", "numpy", "pillow", "awsiotsdk", "awscrt"} <= set(pins), pins
    recorded = RECORDED[target.key]
    assert set(recorded) == set(pins), "re-record: python scripts/device_wheels.py"
    for name, version in pins.items():
        entry = recorded[name]
        assert entry["version"] == version, "re-record: python scripts/device_wheels.py"
        wheel_name, wheel_version, _, tags = parse_wheel_filename(entry["file"])
        assert (wheel_name, str(wheel_version)) == (name, version)
        assert tags & _target_tags(target), f"{entry['file']} does not install on {target.key}"
        assert SpecifierSet(entry["requires_python"]).contains(f"{target.python}.0"), (
            f"{name}=={version} requires Python {entry['requires_python']}"
        )


@pytest.mark.network
@pytest.mark.parametrize("target", dw.TARGETS, ids=lambda t: t.key)
def test_pypi_has_a_wheel_of_every_picked_pin(target, tmp_path) -> None:
    pins = dw.picked(target)
    result = dw.download(target, pins, tmp_path)
    assert result.returncode == 0, result.stderr.strip().splitlines()[-1]
    for wheel in tmp_path.iterdir():
        assert SpecifierSet(dw.requires_python(wheel)).contains(f"{target.python}.0"), wheel.name
        if wheel.name.startswith("awsiotsdk-"):
            # The listed awscrt is the one awsiotsdk pins, so --no-deps checked the right one.
            (crt,) = [r for r in dw.requires_dist(wheel) if r.name == "awscrt"]
            assert crt.specifier.contains(pins["awscrt"]), (str(crt), pins["awscrt"])


def test_marker_evaluation_is_per_target() -> None:
    """A pin for 3.10 only must not be picked for 3.11, whatever Python runs this test."""
    picks = {t.python: dw.picked(t)["pillow"] for t in dw.TARGETS}
    assert len(set(picks.values())) == 3, picks  # one Pillow line per Python range
