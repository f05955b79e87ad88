"""Which lifecycle steps the nucleus runs (aws-greengrass-nucleus v2.18.2
lifecyclemanager/GenericExternalService.java ``startup``, ``handleRunScript``, ``shouldSkip``,
``run``), on hand-written lifecycles."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from device_sim.interpolation import NucleusPaths, ResolvedService
from device_sim.lifecycle import Boot, LifecycleRunner, SkipifInvalid, should_skip, shutdown


def _runner(tmp_path: Path) -> LifecycleRunner:
    return LifecycleRunner(
        NucleusPaths(tmp_path),
        thing_name="t-1",
        region="eu-west-1",
        ipc_env=lambda name: {"SVCUID": f"TOKEN-{name}"},
    )


def _boot(tmp_path: Path, lifecycle: dict[str, object]) -> Boot:
    service = ResolvedService("c", "1.0.0", {}, lifecycle)
    return _runner(tmp_path).boot("b", {"c": service}, ["c"], {})


def _wait_for(path: Path) -> bool:
    for _ in range(100):
        if path.exists():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("expression", ["exist /tmp", "onpath", "which sh", "exists", "! "])
def test_a_malformed_skipif_is_an_error_not_a_run(expression: str) -> None:
    """``shouldSkip`` throws InputValidationException("Invalid format for skipif") unless the
    expression matches ``(exists|onpath) +(.+)`` (after an optional ``!``)."""
    with pytest.raises(SkipifInvalid, match="Invalid format for skipif"):
        should_skip(expression, os.environ["PATH"], "/root")


@pytest.mark.parametrize(
    ("step", "code"),
    [("Install", "INSTALL_CONFIG_NOT_VALID"), ("Startup", "STARTUP_CONFIG_NOT_VALID")],
)
def test_a_malformed_skipif_breaks_the_component(tmp_path: Path, step: str, code: str) -> None:
    """``run`` turns the InputValidationException into RunStatus.Errored with
    ``ComponentStatusCode.getCodeInvalidConfigForState`` (INSTALL_/STARTUP_/RUN_CONFIG_NOT_VALID);
    ``install``/``startup`` then call ``serviceErrored``: the script never runs and the
    component does not start."""
    boot = _boot(
        tmp_path,
        {step: {"Script": "touch ran", "Skipif": "exist /tmp"}, "Run": "touch run-ran"},
    )
    assert boot.broken["c"].startswith(f"{step} failed: {code}"), boot.broken
    assert "Invalid format for skipif" in boot.broken["c"]
    assert not (tmp_path / "work/c/ran").exists()
    assert "c" not in boot.processes and not (tmp_path / "work/c/run-ran").exists()


def test_a_malformed_skipif_on_run_breaks_it(tmp_path: Path) -> None:
    boot = _boot(tmp_path, {"Run": {"Script": "touch ran", "Skipif": "onpath"}})
    assert boot.broken["c"].startswith("Run failed: RUN_CONFIG_NOT_VALID"), boot.broken
    assert "c" not in boot.processes and not (tmp_path / "work/c/ran").exists()


def test_run_is_not_started_when_startup_ran(tmp_path: Path) -> None:
    """``startup()`` runs the Startup step; only when that did nothing (no Startup, or a Startup
    skipped by its Skipif: RunStatus.NothingDone) does it call ``handleRunScript``."""
    boot = _boot(tmp_path, {"Startup": "touch started", "Run": "touch ran; sleep 30"})
    assert not boot.broken
    assert (tmp_path / "work/c/started").exists()
    assert "c" not in boot.processes
    time.sleep(0.3)
    assert not (tmp_path / "work/c/ran").exists()
    assert [(r.step, r.outcome) for r in boot.results] == [("Startup", "ok")]


def test_run_is_started_when_startup_is_skipped_or_absent(tmp_path: Path) -> None:
    skipped: dict[str, object] = {
        "Startup": {"Script": "touch started", "Skipif": "onpath sh"},
        "Run": "touch ran",
    }
    boot = _boot(tmp_path, skipped)
    assert "c" in boot.processes
    assert _wait_for(tmp_path / "work/c/ran")
    assert not (tmp_path / "work/c/started").exists()
    shutdown(boot)
    (tmp_path / "work/c/ran").unlink()
    boot = _boot(tmp_path, {"Install": "true", "Run": "touch ran"})
    assert _wait_for(tmp_path / "work/c/ran")
    shutdown(boot)
