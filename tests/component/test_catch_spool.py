"""Spool invariants that no test caught before (issue 14, "Tests that catch what matters"):

- a name too long to carry the claim's ``<id>-`` prefix keeps its full name across a crash, so
  the full-name record (``state/names/<id>``) must be durable before the claim rename;
- a file that is still growing is never settled, however long ago the tracker first saw it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, List

import numpy as np
import pytest
from edge_inference import spool as spool_module
from edge_inference.spool import SettleTracker

from tests.component.harness import Folders, TinyPackage, random_tensor, run_once

LONG_NAME = "\u732b" * 80 + ".npy"  # 244 bytes: too long once the 17-byte claim id is prefixed


class Crash(BaseException):
    """Stands for the process dying: nothing in the component catches it."""


def test_a_long_name_claimed_just_before_a_crash_comes_back_under_its_full_name(
    folders: Folders, tiny_package: TinyPackage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process dies the instant the claim rename is done: the input is in ``in-progress``
    under its shortened name. Recovery must run it and report it under the name the user gave,
    which only a full-name record written before the rename can tell it."""
    assert len(LONG_NAME.encode()) > 255 - 17
    np.save(folders.input / LONG_NAME, random_tensor(1))
    real_rename = os.rename

    def rename_then_die(src: Any, dst: Any) -> None:
        real_rename(src, dst)
        if Path(os.fsdecode(dst)).parent == folders.in_progress:
            raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(spool_module.os, "rename", rename_then_die)
        with pytest.raises(Crash):
            run_once(folders, tiny_package.model_dir)
    (claimed,) = folders.names(folders.in_progress)
    assert claimed != LONG_NAME and not claimed.endswith(LONG_NAME)  # stored shortened

    messages = run_once(folders, tiny_package.model_dir)

    assert [m["input"] for m in messages] == [LONG_NAME]
    assert "top" in messages[0]
    assert folders.names(folders.processed) == [LONG_NAME]
    assert folders.names(folders.in_progress) == []
    assert folders.names(folders.state / "names") == []


def test_a_file_still_growing_is_not_settled_however_long_it_has_been_seen(
    tmp_path: Path,
) -> None:
    """Settled means unchanged for ``settle`` seconds, not first seen ``settle`` seconds ago:
    a slow copy that appends every 1.5 s (settle 2 s) waits for as long as it grows."""
    path = tmp_path / "copying.npy"
    now, wall = [0.0], [1_000_000.0]
    tracker = SettleTracker(clock=lambda: now[0], wall=lambda: wall[0])

    def write(data: bytes) -> None:
        with open(path, "ab") as handle:
            handle.write(data)
        os.utime(path, (wall[0], wall[0]))  # the writer's own clock: mtime is "now"

    def scan() -> List[str]:
        ready, waiting = tracker.scan(tmp_path, settle=2.0)
        names = [c.path.name for c in ready]
        assert waiting == (0 if names else 1)
        return names

    write(b"part 1")
    assert scan() == []
    for part in range(2, 6):  # 1.5 s .. 6 s after it was first seen, growing all along
        now[0] += 1.5
        wall[0] += 1.5
        write(f" part {part}".encode())
        assert scan() == [], f"settled while growing, {now[0]} s after it was first seen"

    now[0] += 2.5  # the copy has finished: unchanged for longer than the settle time
    wall[0] += 2.5
    assert scan() == ["copying.npy"]
