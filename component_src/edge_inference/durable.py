"""Crash-safe file primitives: fsync'd writes, atomic renames, directory syncs."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

TMP_SUFFIX = ".edge-tmp"
NAME_MAX = 255  # bytes in one path component on ext4, xfs, btrfs and tmpfs
ERROR_SUFFIX = ".error.json"


def fsync_dir(path: Path) -> None:
    """Make the directory entries of ``path`` (renames into or out of it) durable."""
    fd = os.open(str(path), os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: Path, obj: Any, *, sync: bool = True) -> None:
    """Write ``obj`` as JSON to ``path``: temp file beside it, fsync, rename, fsync the folder.

    A crash leaves either the old state (plus at worst a ``.<name>.edge-tmp`` file, which
    :func:`remove_temp_files` cleans up) or the complete new file, never a partial one.
    ``sync=False`` skips both fsyncs: the rename still makes the file whole or absent when the
    process dies (SIGKILL: the kernel keeps what was written), but after a power cut it may be
    empty or missing; for records whose reader treats that as "not there" (captures).
    """
    room = NAME_MAX - len("." + TMP_SUFFIX)
    tmp = path.with_name("." + _cut(path.name, room) + TMP_SUFFIX)
    data = json.dumps(obj, allow_nan=False).encode("utf-8")  # strict JSON, never NaN
    fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if sync:
                os.fsync(handle.fileno())
        os.replace(str(tmp), str(path))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(str(tmp))
        raise
    if sync:
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


def display_name(name: str) -> str:
    """``name`` as valid text: bytes that are not UTF-8 (which ``os.fsdecode`` keeps as lone
    surrogates, invalid in JSON and UTF-8) are written ``\\xNN``."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def _cut(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` whose file-system encoding fits ``max_bytes``, never
    splitting a UTF-8 sequence."""
    raw = os.fsencode(text)
    if len(raw) <= max_bytes:
        return text
    end = max(0, max_bytes)
    while 0 < end < len(raw) and raw[end] & 0xC0 == 0x80:  # a continuation byte
        end -= 1
    return os.fsdecode(raw[:end])


def fit_name(name: str, max_bytes: int, *, extra: str = "") -> str:
    """``<stem><extra><suffix>`` shortened to ``max_bytes``: the stem is cut (marked ``~``),
    the suffix (``.npy``, ``.jpeg``) is kept so the type of the file still shows."""
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem or len(os.fsencode(suffix)) > 16:
        stem, suffix = name, ""
    else:
        suffix = "." + suffix
    full = stem + extra + suffix
    if len(os.fsencode(full)) <= max_bytes:
        return full
    room = max_bytes - len(os.fsencode("~" + extra + suffix))
    return _cut(stem, room) + "~" + extra + suffix


def unique_destination(folder: Path, name: str, tag: str) -> Path:
    """``folder/name``, or ``folder/<stem>.<tag><suffix>`` when that name is already taken.

    Inputs are identified by name; a later file with the same name must not overwrite an
    earlier one in the processed or failed folder. A name too long to store with the
    ``.error.json`` beside it is shortened here (the result keeps the full name).
    """
    limit = NAME_MAX - len(ERROR_SUFFIX)
    base = fit_name(name, limit)
    dest = folder / base
    if not dest.exists() and not (folder / (base + ERROR_SUFFIX)).exists():
        return dest
    return folder / fit_name(name, limit, extra="." + tag)


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
