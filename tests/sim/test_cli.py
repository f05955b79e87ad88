"""``python -m device_sim``: one-line errors for bad arguments, exit codes, the step printed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra.conftest import REPO_ROOT


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "device_sim", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--assembly", "/no/such/cdk.out"], "--assembly /no/such/cdk.out: no such folder"),
        (["--stage", "qa"], "unknown stage 'qa' in"),
        (
            ["--platform", "linux/riscv64"],
            "--platform 'linux/riscv64': supported: linux/aarch64, linux/amd64",
        ),
        (["--nucleus-version", "2.x"], "--nucleus-version '2.x': expected X.Y.Z"),
        (["--images", "/no/such/dir"], "--images /no/such/dir: no such folder"),
        (["--wait", "0"], "--wait 0.0: must be positive"),
        (["--account", "12"], "--account '12': expected 12 digits"),
        (["--onnx-model", "/no/such/dir"], "--onnx-model /no/such/dir: no model.onnx in"),
    ],
)
def test_bad_argument_is_one_line(dev_assembly: Path, args: list[str], message: str) -> None:
    if "--assembly" not in args:
        args = ["--assembly", str(dev_assembly), *args]
    result = cli(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("device_sim: error: ")
    assert message in lines[0]


def test_not_an_assembly(tmp_path: Path) -> None:
    result = cli("--assembly", str(tmp_path))
    assert result.returncode == 2
    assert "not a cloud assembly (no manifest.json)" in result.stderr


def test_failed_step_is_printed_and_exit_is_1(tmp_path: Path, dev_assembly: Path) -> None:
    """GreengrassSetup.provision refuses a thing name with a colon, whatever the policies."""
    result = cli(
        "--assembly",
        str(dev_assembly),
        "--root",
        str(tmp_path / "gg"),
        "--device-name",
        "bad:name",
        "--resolve-only",
    )
    assert result.returncode == 1
    assert "FAIL provision: Thing name cannot contain colon characters" in result.stdout
    assert result.stderr.strip() == (
        "device_sim: FAILED at provision: Thing name cannot contain colon characters"
    )


def test_unknown_thing_group_fails_at_provision(tmp_path: Path, dev_assembly: Path) -> None:
    result = cli(
        "--assembly",
        str(dev_assembly),
        "--root",
        str(tmp_path / "gg"),
        "--thing-group",
        "Nope",
        "--resolve-only",
    )
    assert result.returncode == 1
    assert "--thing-group Nope: the stage has no such thing group" in result.stderr
    assert "EdgeAiDevCoreDevices" in result.stderr
