"""Crash-safe file primitives: fsync'd writes, atomic renames, directory syncs."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

TMP_SUFFIX = ".edge-tmp"


def fsync_dir(path: Path) -> None:
    """Make the directory entries of ``path`` (renames into or out of it) durable."""
    fd = os.open(str(path), os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path``: temp file beside it, fsync, rename, fsync the folder.

    A crash leaves either the old state (plus at worst a ``.<name>.edge-tmp`` file, which
    :func:`remove_temp_files` cleans up) or the complete new file, never a partial one.
    """
    tmp = path.with_name("." + path.name + TMP_SUFFIX)
    data = json.dumps(obj).encode("utf-8")
    fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(str(tmp), str(path))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(str(tmp))
        raise
    fsync_dir(path.parent)


def remove_temp_files(folder: Path) -> int:
    """Delete the temp files an interrupted :func:`write_json_atomic` left in ``folder``."""
    removed = 0
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        if entry.name.startswith(".") and entry.name.endswith(TMP_SUFFIX):
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
                removed += 1
    return removed


def unique_destination(folder: Path, name: str, tag: str) -> Path:
    """``folder/name``, or ``folder/<stem>.<tag><suffix>`` when that name is already taken.

    Inputs are identified by name; a later file with the same name must not overwrite an
    earlier one in the processed or failed folder.
    """
    dest = folder / name
    if not dest.exists() and not (folder / (name + ".error.json")).exists():
        return dest
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem:
        return folder / f"{name}.{tag}"
    return folder / f"{stem}.{tag}.{suffix}"


def device_of(path: Path) -> int:
    """``st_dev`` of ``path`` or of its nearest existing ancestor (for same-filesystem checks)."""
    current = path
    while True:
        try:
            return current.stat().st_dev
        except FileNotFoundError:
            if current.parent == current:
                raise
            current = current.parent
