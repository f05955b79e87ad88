"""The job's cache under ``<out>/cache``: folders built once, keyed by what decides them."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from main_job.paths import ROOT


def digest_files(paths: Sequence[Path], *extra: str) -> str:
    """A cache key: each file's path in the repository and bytes, then ``extra``."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.relative_to(ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    for text in extra:
        digest.update(text.encode())
    return digest.hexdigest()[:16]


def _manifest(folder: Path) -> dict[str, int]:
    """Every file under ``folder`` but ``COMPLETE``, by relative path, with its size."""
    return {
        p.relative_to(folder).as_posix(): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p != folder / "COMPLETE"
    }


def _cache_intact(folder: Path) -> bool:
    """``COMPLETE`` is there and lists exactly the files (names and sizes) that are there: a
    cache entry someone partly deleted is rebuilt, not trusted forever."""
    try:
        recorded = json.loads((folder / "COMPLETE").read_text())
        return isinstance(recorded, dict) and recorded == _manifest(folder)
    except (OSError, ValueError):
        return False


def cached(folder: Path, build: Callable[[Path], None]) -> bool:
    """``folder`` built once: ``build(scratch)`` then renamed; True when it was there already,
    intact (``COMPLETE`` records what ``build`` wrote, checked by :func:`_cache_intact`)."""
    if _cache_intact(folder):
        return True
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = folder.parent / f".{folder.name}.tmp"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    build(scratch)
    (scratch / "COMPLETE").write_text(json.dumps(_manifest(scratch), sort_keys=True))
    shutil.rmtree(folder, ignore_errors=True)
    scratch.rename(folder)
    return False
