"""Invariants of the spool that deliberate bugs used to slip past (issue 9, "Test gaps that
mutation found"): each test here fails when its bug is put back."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, List

import numpy as np
import pytest
from edge_inference import config as config_module
from edge_inference import durable
from edge_inference.config import ConfigError, check_folders
from edge_inference.spool import SettleTracker, Spool

from tests.component.harness import Folders, TinyPackage, make_config, random_tensor, run_once


def test_a_later_input_with_the_same_name_never_overwrites_the_earlier_one(
    folders: Folders, tiny_package: TinyPackage
):
    first, second = random_tensor(1), random_tensor(2)
    np.save(folders.input / "same.npy", first)
    run_once(folders, tiny_package.model_dir)
    np.save(folders.input / "same.npy", second)
    run_once(folders, tiny_package.model_dir)
    (folders.input / "same.npy").write_bytes(b"broken")
    run_once(folders, tiny_package.model_dir)
    (folders.input / "same.npy").write_bytes(b"broken again")
    run_once(folders, tiny_package.model_dir)

    kept = folders.names(folders.processed)
    assert len(kept) == 2 and "same.npy" in kept
    (other,) = [n for n in kept if n != "same.npy"]
    assert other.startswith("same.") and other.endswith(".npy")
    assert np.array_equal(np.load(folders.processed / "same.npy"), first)
    assert np.array_equal(np.load(folders.processed / other), second)
    failed = folders.names(folders.failed)
    assert len(failed) == 4  # two inputs, two .error.json: nothing overwritten
    contents = {(folders.failed / n).read_bytes() for n in failed if not n.endswith(".json")}
    assert contents == {b"broken", b"broken again"}


def test_a_claim_rechecks_that_the_file_did_not_change_since_the_scan(folders: Folders):
    path = folders.input / "growing.npy"
    path.write_bytes(b"part one")
    (candidate,), _ = SettleTracker().scan(folders.input, settle=0)
    with open(path, "ab") as handle:  # the writer goes on after the scan
        handle.write(b" and part two")
    spool = Spool(folders.state)
    spool.open()
    try:
        assert spool.claim(candidate) is None
        assert folders.names(folders.input) == ["growing.npy"]
        assert folders.names(folders.in_progress) == []
    finally:
        spool.close()


def test_folders_on_different_filesystems_are_refused(
    folders: Folders, tiny_package: TinyPackage, monkeypatch: Any
):
    config = make_config(folders, tiny_package.model_dir)
    check_folders(config, folders.state)  # one filesystem: accepted
    real = config_module.device_of

    def device_of(path: Path) -> int:  # the failed folder is on another mount
        return real(path) + 1 if path == folders.failed else real(path)

    monkeypatch.setattr(config_module, "device_of", device_of)
    with pytest.raises(ConfigError, match="one filesystem"):
        check_folders(config, folders.state)


def test_an_atomic_write_syncs_the_folder_that_holds_it(tmp_path: Path, monkeypatch: Any):
    synced: List[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append("folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(durable.os, "fsync", fsync)
    durable.write_json_atomic(tmp_path / "record.json", {"a": 1})

    assert synced == ["file", "folder"]  # data first, then the rename in the folder


def test_a_file_whose_mtime_is_in_the_future_settles_once_unchanged_for_the_settle_time(
    tmp_path: Path,
):
    """A network share's clock runs ahead: the mtime says "just written" for an hour."""
    path = tmp_path / "skewed.npy"
    path.write_bytes(b"data")
    future = os.stat(path).st_mtime + 3600
    os.utime(path, (future, future))
    now = [100.0]
    tracker = SettleTracker(clock=lambda: now[0])

    ready, waiting = tracker.scan(tmp_path, settle=2.0)
    assert (ready, waiting) == ([], 1)
    now[0] += 2.5
    ready, waiting = tracker.scan(tmp_path, settle=2.0)
    assert [c.path.name for c in ready] == ["skewed.npy"] and waiting == 0
