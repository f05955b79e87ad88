"""Which distribution each device requirement resolves to, per promised device target.

The runtime component runs ``pip install -r component_src/requirements.txt`` on the device,
with the device's Python. pip evaluates environment markers for the interpreter that runs it
(``pip download --python-version`` does not change that), so the markers are evaluated here
with ``packaging.markers`` for each target, and each picked pin is then fetched from PyPI for
exactly that target (``pip download --only-binary=:all: --no-deps --python-version X
--implementation cp --abi cpXY --platform P``), which fails when no wheel fits.

Targets: CPython 3.9-3.13 on Linux x86_64 and aarch64 with glibc >= 2.31 (Ubuntu 20.04 /
JetPack 5 and newer), the device Pythons the README promises.

    python scripts/device_wheels.py            # record tests/data/device_wheels.json (network)

The recorded table (file name and Requires-Python of every picked wheel, per target) is the
offline complement the tests check the markers against; the ``network`` test re-fetches.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement

REPO_ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = REPO_ROOT / "component_src" / "requirements.txt"
RECORD = REPO_ROOT / "tests" / "data" / "device_wheels.json"
PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13")
MACHINES = ("x86_64", "aarch64")
GLIBC = "2_31"


@dataclass(frozen=True)
class Target:
    python: str
    machine: str

    @property
    def key(self) -> str:
        return f"cp{self.python.replace('.', '')}-{self.machine}"

    @property
    def platform_tags(self) -> list[str]:
        """Every manylinux tag a glibc-2.31 Linux accepts (PEP 600; pip does not expand
        ``--platform manylinux_2_31`` to the older tags itself)."""
        newest = int(GLIBC.split("_")[1])
        tags = [f"manylinux_2_{minor}_{self.machine}" for minor in range(newest, 4, -1)]
        legacy = ["manylinux2014"] + (
            ["manylinux2010", "manylinux1"] if self.machine == "x86_64" else []
        )
        return tags + [f"{name}_{self.machine}" for name in legacy]

    def environment(self) -> dict[str, str]:
        """PEP 508 marker environment of this target (CPython on Linux)."""
        return {
            "python_version": self.python,
            "python_full_version": f"{self.python}.0",
            "platform_machine": self.machine,
            "platform_system": "Linux",
            "sys_platform": "linux",
            "os_name": "posix",
            "platform_python_implementation": "CPython",
            "implementation_name": "cpython",
            "implementation_version": f"{self.python}.0",
            "platform_release": "",
            "platform_version": "",
            "extra": "",
        }


TARGETS = tuple(Target(p, m) for p in PYTHONS for m in MACHINES)


def requirements(path: Path = REQUIREMENTS) -> list[Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line]


def picked(target: Target, path: Path = REQUIREMENTS) -> dict[str, str]:
    """name -> exact version the markers select for ``target``; every name at most once."""
    chosen: dict[str, str] = {}
    for requirement in requirements(path):
        marker: Marker | None = requirement.marker
        if marker is not None and not marker.evaluate(target.environment()):
            continue
        (specifier,) = requirement.specifier
        if specifier.operator != "==":
            raise ValueError(f"{requirement}: device requirements must be exact pins")
        name = requirement.name.lower()
        if name in chosen:
            raise ValueError(f"{name}: two pins selected for {target.key}")
        chosen[name] = specifier.version
    return chosen


def _pip_env() -> dict[str, str]:
    """PyPI only: no local wheel folders or extra indexes from this machine's pip config."""
    env = {k: v for k, v in os.environ.items() if k not in ("PIP_FIND_LINKS", "PIP_INDEX_URL")}
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


def download(target: Target, pins: dict[str, str], dest: Path) -> subprocess.CompletedProcess[str]:
    tag = target.python.replace(".", "")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--disable-pip-version-check",
            "--no-deps",
            "--only-binary=:all:",
            "--index-url",
            "https://pypi.org/simple",
            "--python-version",
            target.python,
            "--implementation",
            "cp",
            "--abi",
            f"cp{tag}",
            "--abi",
            "abi3",
            "--abi",
            "none",
            *(arg for tag in target.platform_tags for arg in ("--platform", tag)),
            "-d",
            str(dest),
            *(f"{name}=={version}" for name, version in sorted(pins.items())),
        ],
        env=_pip_env(),
        capture_output=True,
        text=True,
        check=False,
    )


def _metadata(wheel: Path):  # type: ignore[no-untyped-def]
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return Parser().parsestr(archive.read(metadata).decode())


def requires_python(wheel: Path) -> str:
    return str(_metadata(wheel).get("Requires-Python", ""))


def requires_dist(wheel: Path) -> list[Requirement]:
    return [Requirement(r) for r in _metadata(wheel).get_all("Requires-Dist") or []]


def record() -> dict[str, dict[str, dict[str, str]]]:
    """{target: {name: {"version", "file", "requires_python"}}}, fetched from PyPI."""
    table: dict[str, dict[str, dict[str, str]]] = {}
    for target in TARGETS:
        pins = picked(target)
        with tempfile.TemporaryDirectory() as tmp:
            result = download(target, pins, Path(tmp))
            if result.returncode != 0:
                raise SystemExit(f"{target.key}: {result.stderr.strip().splitlines()[-1]}")
            files = {
                p.name.split("-", 1)[0].lower().replace("_", "-"): p for p in Path(tmp).iterdir()
            }
            table[target.key] = {
                name: {
                    "version": version,
                    "file": files[name].name,
                    "requires_python": requires_python(files[name]),
                }
                for name, version in sorted(pins.items())
            }
    return table


if __name__ == "__main__":
    RECORD.write_text(json.dumps(record(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {RECORD}")
