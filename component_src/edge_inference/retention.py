"""Bounded ``processed/`` and ``failed/`` folders: by age and by total size, oldest first.

A sweep removes what is older than the age limit, then, while the folder is over its size
limit, the oldest of what is left. An input and its ``NAME.error.json`` go together. Age counts
from when the input arrived in the folder: the later of the file's mtime and ctime (a rename
updates ctime on ext4, xfs, btrfs and tmpfs; mtime is the producer's and may be older). A limit
of 0 turns that bound off. Each sweep that removes anything logs one line.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import stat as stat_module
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

from edge_inference.durable import ERROR_SUFFIX, display_name

LOG = logging.getLogger(__name__)

DAY = 86400.0
MB = 1_000_000


@dataclasses.dataclass(frozen=True)
class RetentionPolicy:
    """Limits per folder; 0 means no limit. Failed inputs are kept longer by default: they
    are the ones someone needs to look at."""

    processed_days: float = 7.0
    failed_days: float = 30.0
    processed_mb: float = 1000.0
    failed_mb: float = 1000.0


def arrival(st: os.stat_result) -> float:
    return max(st.st_mtime, st.st_ctime)


class Retention:
    """Sweeps the two folders, at most every ``interval`` seconds when asked through
    :meth:`maybe_sweep`."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        stamp: Callable[[os.stat_result], float] = arrival,
        interval: float = 60.0,
    ) -> None:
        self._clock = clock
        self._stamp = stamp
        self._interval = interval
        self._next = 0.0

    def maybe_sweep(self, processed: Path, failed: Path, policy: RetentionPolicy) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self._interval
        self.sweep(processed, failed, policy)

    def sweep(self, processed: Path, failed: Path, policy: RetentionPolicy) -> None:
        self.sweep_folder(processed, policy.processed_days, policy.processed_mb)
        self.sweep_folder(failed, policy.failed_days, policy.failed_mb)

    def sweep_folder(self, folder: Path, max_days: float, max_mb: float) -> Tuple[int, int]:
        """Apply the limits to ``folder``; (files removed, bytes removed)."""
        if max_days <= 0 and max_mb <= 0:
            return 0, 0
        groups: Dict[str, Tuple[float, int, List[str]]] = {}
        try:
            entries = list(os.scandir(folder))
        except OSError as err:
            LOG.warning("retention: cannot list %s: %s", folder, err)
            return 0, 0
        for entry in entries:
            if entry.name.startswith("."):
                continue  # temp files of an atomic write in progress
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if not stat_module.S_ISREG(st.st_mode):
                continue
            name = entry.name
            key = name[: -len(ERROR_SUFFIX)] if name.endswith(ERROR_SUFFIX) else name
            when, size, names = groups.get(key, (0.0, 0, []))
            groups[key] = (max(when, self._stamp(st)), size + st.st_size, [*names, name])
        ordered = sorted(groups.items(), key=lambda item: (item[1][0], item[0]))
        total = sum(size for _, (_, size, _) in ordered)
        cutoff = self._clock() - max_days * DAY if max_days > 0 else None
        limit = int(max_mb * MB) if max_mb > 0 else None
        removed: List[Tuple[str, float]] = []
        freed = 0
        for key, (when, size, names) in ordered:
            too_old = cutoff is not None and when < cutoff
            too_big = limit is not None and total > limit
            if not (too_old or too_big):
                break  # oldest first: everything after this is newer and fits
            if self._remove(folder, names):
                removed.append((key, when))
                freed += size
                total -= size
        if removed:
            oldest, when = removed[0]
            LOG.info(
                "retention: removed %d input(s) (%.1f MB) from %s, oldest first (oldest %s from "
                "%s); limits %s days, %s MB",
                len(removed),
                freed / MB,
                folder,
                display_name(oldest),
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when)),
                max_days or "no limit",
                max_mb or "no limit",
            )
        return len(removed), freed

    @staticmethod
    def _remove(folder: Path, names: List[str]) -> bool:
        # The input before its error record: a crash in between leaves a record, not an
        # input without its reason; so does a failure (the record stays while its input does).
        for name in sorted(names, key=lambda n: n.endswith(ERROR_SUFFIX)):
            try:
                os.unlink(folder / name)
                LOG.debug("retention: removed %s", display_name(str(folder / name)))
            except FileNotFoundError:
                pass
            except OSError as err:
                LOG.warning("retention: cannot remove %s: %s", display_name(name), err)
                return False
        return True
