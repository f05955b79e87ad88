"""Retention invariants that no test caught before (issue 14, "Tests that catch what matters"):

- age counts from when an input arrived in the folder, not from its mtime alone: ``cp -p`` (or
  ``rsync -t``, or an unzip) keeps the producer's mtime, and such an input must not be deleted
  the moment it lands in ``processed/``. ``os.utime`` sets the mtime as ``cp -p`` does and, like
  the component's rename into the folder, sets the ctime to now (stat(2): "st_ctime ... changed
  by writing or by setting inode information");
- an input goes before its ``NAME.error.json``: a crash between the two leaves a reason without
  an input, never an input without its reason.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, List

import numpy as np
import pytest
from edge_inference import retention as retention_module
from edge_inference.retention import Retention, RetentionPolicy

from tests.component.harness import Folders, TinyPackage, random_tensor, run_once

DAY = 86400.0
BY_AGE = RetentionPolicy(processed_days=7, failed_days=30, processed_mb=0, failed_mb=0)


class Crash(BaseException):
    """Stands for the process dying: nothing in the component catches it."""


def test_an_input_copied_with_its_old_mtime_is_kept_after_processing(
    folders: Folders, tiny_package: TinyPackage
) -> None:
    """A month-old photo copied in with ``cp -p``: processed, then still in ``processed/``
    after the next start's sweep (retention defaults: 7 days for processed inputs)."""
    path = folders.input / "copied.npy"
    np.save(path, random_tensor(1))
    month_ago = time.time() - 30 * DAY
    os.utime(path, (month_ago, month_ago))  # what cp -p does

    (message,) = run_once(folders, tiny_package.model_dir)
    assert message["input"] == "copied.npy" and "top" in message
    run_once(folders, tiny_package.model_dir)  # a restart: its first pass sweeps

    assert folders.names(folders.processed) == ["copied.npy"]


def test_age_runs_from_arrival_so_an_old_mtime_does_not_shorten_it(tmp_path: Path) -> None:
    processed, failed = tmp_path / "processed", tmp_path / "failed"
    processed.mkdir()
    failed.mkdir()
    (processed / "copied.npy").write_bytes(b"x" * 100)
    month_ago = time.time() - 30 * DAY
    os.utime(processed / "copied.npy", (month_ago, month_ago))  # arrived now, mtime a month old

    Retention(clock=lambda: time.time() + 6 * DAY).sweep(processed, failed, BY_AGE)
    assert os.listdir(processed) == ["copied.npy"]
    Retention(clock=lambda: time.time() + 8 * DAY).sweep(processed, failed, BY_AGE)
    assert os.listdir(processed) == []


def test_a_crash_between_the_two_removals_leaves_the_reason_not_the_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    processed, failed = tmp_path / "processed", tmp_path / "failed"
    processed.mkdir()
    failed.mkdir()
    (failed / "bad.png").write_bytes(b"not an image")
    (failed / "bad.png.error.json").write_text('{"input": "bad.png", "error": "not an image"}')
    later = Retention(clock=lambda: time.time() + 31 * DAY)
    removed: List[str] = []
    real_unlink = os.unlink

    def unlink_then_die(path: Any) -> None:
        if removed:
            raise Crash  # the process dies before the second removal
        real_unlink(path)
        removed.append(Path(os.fsdecode(path)).name)

    with monkeypatch.context() as patch:
        patch.setattr(retention_module.os, "unlink", unlink_then_die)
        with pytest.raises(Crash):
            later.sweep(processed, failed, BY_AGE)

    assert removed == ["bad.png"]
    assert os.listdir(failed) == ["bad.png.error.json"]
    later.sweep(processed, failed, BY_AGE)  # the next sweep takes the record too
    assert os.listdir(failed) == []


def test_an_input_that_cannot_be_removed_keeps_its_error_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The same invariant when the input's removal fails instead of the process dying (an
    immutable file, a busy network share): its reason must stay beside it, and the next sweep
    tries both again."""
    processed, failed = tmp_path / "processed", tmp_path / "failed"
    processed.mkdir()
    failed.mkdir()
    (failed / "bad.png").write_bytes(b"not an image")
    (failed / "bad.png.error.json").write_text('{"input": "bad.png", "error": "not an image"}')
    later = Retention(clock=lambda: time.time() + 31 * DAY)
    real_unlink = os.unlink

    def refuse_the_input(path: Any) -> None:
        if Path(os.fsdecode(path)).name == "bad.png":
            raise PermissionError(1, "Operation not permitted", os.fsdecode(path))
        real_unlink(path)

    with monkeypatch.context() as patch:
        patch.setattr(retention_module.os, "unlink", refuse_the_input)
        later.sweep(processed, failed, BY_AGE)

    assert sorted(os.listdir(failed)) == ["bad.png", "bad.png.error.json"]
    assert "cannot remove bad.png: [Errno 1] Operation not permitted" in caplog.text
    later.sweep(processed, failed, BY_AGE)  # removable again: both go
    assert os.listdir(failed) == []
