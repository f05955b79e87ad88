"""Disk full, an unwritable processed folder, and folders that grow forever (issue 9,
defects 6 and 7)."""

from __future__ import annotations

import errno
import logging
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any, List

import numpy as np
from edge_inference import outbox as outbox_module
from edge_inference import spool as spool_module
from edge_inference.retention import Retention, RetentionPolicy
from edge_inference.spool import Spool

from tests.component.harness import (
    Folders,
    RecordingPublisher,
    TinyPackage,
    make_service,
    random_tensor,
)


def write_inputs(folders: Folders, count: int) -> List[str]:
    names = [f"in{i}.npy" for i in range(count)]
    for i, name in enumerate(names):
        np.save(folders.input / name, random_tensor(i))
    return names


class Faults:
    """Fails the first ``count`` calls of a spool I/O function, counting claims meanwhile."""

    def __init__(self, count: int, error: OSError) -> None:
        self.left = count
        self.error = error
        self.claims_while_failing = 0


def test_a_full_disk_degrades_then_carries_on_without_losing_anything(
    folders: Folders, tiny_package: TinyPackage, monkeypatch: Any, caplog: Any
):
    names = write_inputs(folders, 5)
    faults = Faults(6, OSError(errno.ENOSPC, "No space left on device"))
    real_write = outbox_module.write_json_atomic
    real_claim = Spool.claim

    def write(path: Path, obj: Any) -> None:
        if path.name.endswith(".pending") and faults.left > 0:
            faults.left -= 1
            raise faults.error
        real_write(path, obj)

    def claim(self: Spool, candidate: Any) -> Any:
        if holder and holder[0]._unfinished:  # claimed while degraded
            faults.claims_while_failing += 1
        return real_claim(self, candidate)

    holder: List[Any] = []

    monkeypatch.setattr(outbox_module, "write_json_atomic", write)
    monkeypatch.setattr(Spool, "claim", claim)
    caplog.set_level(logging.INFO, logger="edge_inference")
    publisher = RecordingPublisher()
    service = make_service(folders, tiny_package.model_dir, publisher=publisher)
    holder.append(service)
    service.run(once=True)

    assert Counter(m["input"] for m in publisher.messages) == {n: 1 for n in names}
    assert folders.names(folders.processed) == sorted(names)
    assert faults.left == 0
    assert faults.claims_while_failing == 0  # stopped taking new inputs
    degraded = [r for r in caplog.records if "No space left" in r.getMessage()]
    assert len(degraded) == 1 and degraded[0].levelno == logging.ERROR
    assert any("carrying on" in r.getMessage() for r in caplog.records)


def test_a_processed_folder_that_cannot_be_written_degrades_instead_of_crashing(
    folders: Folders, tiny_package: TinyPackage, monkeypatch: Any
):
    names = write_inputs(folders, 3)
    faults = Faults(4, PermissionError(errno.EACCES, "Permission denied"))
    real_rename = os.rename

    def rename(src: Any, dst: Any) -> None:
        if str(folders.processed) in os.fsdecode(dst) and faults.left > 0:
            faults.left -= 1
            raise faults.error
        real_rename(src, dst)

    monkeypatch.setattr(spool_module.os, "rename", rename)
    publisher = RecordingPublisher()
    make_service(folders, tiny_package.model_dir, publisher=publisher).run(once=True)

    assert Counter(m["input"] for m in publisher.messages) == {n: 1 for n in names}
    assert folders.names(folders.processed) == sorted(names)
    assert folders.names(folders.in_progress) == []


# -- retention ---------------------------------------------------------------------------------


def make_files(folder: Path, names: List[str], size: int = 1000) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"x" * size)


DAY = 86400.0


def test_retention_removes_by_age_and_keeps_failed_inputs_longer(tmp_path: Path, caplog: Any):
    processed, failed = tmp_path / "processed", tmp_path / "failed"
    make_files(processed, ["a.npy", "b.jpg"])
    make_files(failed, ["c.png", "c.png.error.json"])
    caplog.set_level(logging.INFO, logger="edge_inference")
    policy = RetentionPolicy(processed_days=7, failed_days=30, processed_mb=0, failed_mb=0)

    Retention(clock=lambda: time.time() + 8 * DAY).sweep(processed, failed, policy)

    assert sorted(os.listdir(processed)) == []
    assert sorted(os.listdir(failed)) == ["c.png", "c.png.error.json"]
    assert any("removed 2" in r.getMessage() for r in caplog.records)

    Retention(clock=lambda: time.time() + 31 * DAY).sweep(processed, failed, policy)
    assert os.listdir(failed) == []


def test_retention_by_size_removes_the_oldest_first_with_the_error_record(tmp_path: Path):
    processed, failed = tmp_path / "processed", tmp_path / "failed"
    make_files(processed, ["1.npy", "2.npy", "3.npy", "4.npy"])
    make_files(failed, ["old.npy", "old.npy.error.json", "new.npy", "new.npy.error.json"])
    for age, name in enumerate(["4.npy", "3.npy", "2.npy", "1.npy"]):  # 1.npy is the oldest
        os.utime(processed / name, (time.time() - (age + 1) * 1000,) * 2)
    retention = Retention(clock=time.time, stamp=lambda stat: stat.st_mtime)
    for name in ("old.npy", "old.npy.error.json"):
        os.utime(failed / name, (time.time() - 5000,) * 2)
    policy = RetentionPolicy(processed_days=0, failed_days=0, processed_mb=0.0025, failed_mb=0.0025)

    retention.sweep(processed, failed, policy)

    assert sorted(os.listdir(processed)) == ["3.npy", "4.npy"]
    assert sorted(os.listdir(failed)) == ["new.npy", "new.npy.error.json"]


def test_the_service_applies_retention_from_its_configuration(
    folders: Folders, tiny_package: TinyPackage
):
    make_files(folders.processed, ["ancient.npy"])
    os.utime(folders.processed / "ancient.npy", (1, 1))
    write_inputs(folders, 1)
    service = make_service(
        folders, tiny_package.model_dir, processed_max_mb=0.0001, failed_max_mb=1.0
    )
    service.run(once=True)
    assert "ancient.npy" not in folders.names(folders.processed)
