"""The bundled runtime installs once per version and survives an offline reboot.

The nucleus runs a component's ``Install`` step every time the component starts (every boot and
nucleus restart, ``lifecycle/Lifecycle.java``: NEW -> INSTALLED on each launch) unless the
step's ``Skipif`` holds. ``lifecycle/GenericExternalService.java`` (``shouldSkip``) accepts
``(exists|onpath) +(.+)`` (``SKIP_COMMAND_REGEX``), optionally negated with ``!``; ``exists P``
holds when ``Files.exists(P)``. Recipe variables such as ``{work:path}`` in lifecycle steps
are interpolated (``componentmanager/KernelConfigResolver.java``).

These tests run the rendered Install script for real (``sh -c``, as the nucleus does on Linux)
in a temporary work folder, with pip pointed at a local wheel and no index: the same offline
conditions a device has after a reboot without network.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from edge_constructs.greengrass import recipes
from tests.infra.rendering import component_recipes

SKIP_COMMAND = re.compile(r"(exists|onpath) +(.+)")
RUNTIME = "com.example.edgeai.dev.DlrRuntime"


def should_skip(step: dict[str, Any], interpolate) -> bool:
    """GenericExternalService.shouldSkip, for the ``exists`` operator."""
    if "Skipif" not in step:
        return False
    expr = interpolate(step["Skipif"]).strip()
    negate = expr.startswith("!")
    if negate:
        expr = expr[1:].strip()
    match = SKIP_COMMAND.fullmatch(expr)
    assert match, f"invalid Skipif {expr!r}: the nucleus would fail the component"
    assert match.group(1) == "exists"
    return Path(match.group(2)).exists() ^ negate


def _fake_dlr_wheel(folder: Path) -> Path:
    """A minimal ``dlr`` wheel (the install script imports dlr to switch off its phone-home)."""
    wheel = folder / "dlr-1.10.0-py3-none-any.whl"
    files = {
        "dlr/__init__.py": b"",
        "dlr-1.10.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: dlr\nVersion: 1.10.0\n",
        "dlr-1.10.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\n"
        b"Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append(f"{name},sha256={digest.decode()},{len(data)}")
        record.append("dlr-1.10.0.dist-info/RECORD,,")
        archive.writestr("dlr-1.10.0.dist-info/RECORD", "\n".join(record) + "\n")
    return wheel


class Device:
    """One runtime component's folders on a device, and its Install step."""

    def __init__(self, root: Path) -> None:
        self.work = root / "work" / RUNTIME
        self.artifacts = root / "artifacts" / RUNTIME
        self.work.mkdir(parents=True)
        self.artifacts.mkdir(parents=True)
        self.wheel = _fake_dlr_wheel(root)

    def interpolate(self, text: str) -> str:
        text = text.replace("{work:path}", str(self.work))
        text = text.replace("{artifacts:path}", str(self.artifacts))
        assert not re.search(r"\{[\w.-]+:[^{}\s]*\}", text), text
        return text

    def launch(self, recipe: dict[str, Any], requirements: str) -> str:
        """What the nucleus does at a component launch: Install unless Skipif holds."""
        (manifest,) = recipe["Manifests"]
        (artifact,) = manifest["Artifacts"]
        (self.artifacts / artifact["Uri"].rsplit("/", 1)[1]).write_text(requirements)
        step = manifest["Lifecycle"]["Install"]
        if should_skip(step, self.interpolate):
            return "skipped"
        env = {
            **os.environ,
            "PIP_NO_INDEX": "1",  # no network, as after an offline reboot
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
        env.pop("VIRTUAL_ENV", None)
        result = subprocess.run(
            ["sh", "-c", self.interpolate(step["Script"])],
            env=env,
            capture_output=True,
            text=True,
            timeout=step["Timeout"],
            check=False,
        )
        return "installed" if result.returncode == 0 else f"failed: {result.stderr[-300:]}"


@pytest.fixture(scope="module")
def runtime_recipe(dev) -> dict[str, Any]:
    return component_recipes(dev.template_json("dev/Pipeline"))[RUNTIME]


def _other_version(recipe: dict[str, Any], version: str) -> dict[str, Any]:
    (manifest,) = recipe["Manifests"]
    (artifact,) = manifest["Artifacts"]
    return recipes.runtime_recipe(
        name=RUNTIME,
        version=version,
        requirements_uri=artifact["Uri"],
        requirements_file=artifact["Uri"].rsplit("/", 1)[1],
    )


@pytest.mark.slow
def test_runtime_installs_once_per_version_and_boots_offline(runtime_recipe, tmp_path) -> None:
    device = Device(tmp_path)
    requirements = f"{device.wheel}\n"
    assert device.launch(runtime_recipe, requirements) == "installed"
    python = device.work / "venv" / "bin" / "python"
    check = subprocess.run(
        [str(python), "-c", "import dlr, pathlib; print(pathlib.Path(dlr.__file__).parent)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert (Path(check.stdout.strip()) / "counter" / "ccm_config.json").is_file()

    # A reboot: Install must be skipped (no network needed), the venv kept as it is.
    before = python.resolve().stat().st_mtime_ns, sorted(p.name for p in device.work.rglob("*"))
    assert device.launch(runtime_recipe, requirements) == "skipped"
    assert (
        python.resolve().stat().st_mtime_ns,
        sorted(p.name for p in device.work.rglob("*")),
    ) == before

    # A new runtime version rebuilds; the inference component's launcher still finds python.
    newer = _other_version(runtime_recipe, "1.0.999")
    assert device.launch(newer, requirements) == "installed"
    assert device.launch(newer, requirements) == "skipped"
    assert recipes.bundled_launcher(RUNTIME) == f'exec "{{{RUNTIME}:work:path}}/venv/bin/python"'
    assert python.exists()


@pytest.mark.slow
def test_a_half_built_runtime_is_never_taken_as_installed(runtime_recipe, tmp_path) -> None:
    device = Device(tmp_path)
    # The install fails part-way (pip cannot find a requirement): the next launch retries.
    missing = f"{tmp_path / 'missing-0.0.0-py3-none-any.whl'}\n"
    assert device.launch(runtime_recipe, missing).startswith("failed")
    assert (device.work / "venv" / "bin" / "python").exists()  # the venv is half-built...
    assert device.launch(runtime_recipe, missing).startswith("failed")  # ...and not skipped
    # Once the requirement is there, it installs and then stays installed.
    assert device.launch(runtime_recipe, f"{device.wheel}\n") == "installed"
    assert device.launch(runtime_recipe, f"{device.wheel}\n") == "skipped"
