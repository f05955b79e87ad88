"""The folder state machine that makes each input processed exactly once, across crashes.

::

    input/NAME --claim (rename)--> state/in-progress/<id>-NAME
        --result written: state/outbox/<id>.pending (fsync'd)-->
        --move (rename)--> processed/NAME  or  failed/NAME + failed/NAME.error.json
        --release--> state/outbox/<id>.json --published--> (deleted)

Every step is an ``os.rename`` within one filesystem or an fsync'd write-to-temp + rename, so a
crash leaves each input in exactly one place. Only the pending record is fsync'd (file and
folder): on a journaling filesystem (ext4, xfs) that also commits the claim rename before it,
and the later renames are redone from the record if a power cut loses them.

On start-up :meth:`Spool.recover` finishes what was interrupted: an in-progress file with a
pending result is moved on (not re-run); one without is run again, unless it has already been
in progress :data:`MAX_ATTEMPTS` times (an input that crashes the process is then failed instead
of crash-looping it). ``<id>`` is a 16-digit hex timestamp, unique per claim, so names sort by
claim time and a later input with the same name never collides with an earlier one (its final
name gets ``.<id>`` before the suffix).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from edge_inference.durable import remove_temp_files, unique_destination, write_json_atomic
from edge_inference.outbox import Outbox

LOG = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
IGNORED_SUFFIXES = (".tmp", ".part")
_CLAIM_NAME = re.compile(r"^([0-9a-f]{16})-(.+)$")

Signature = Tuple[int, int]  # (size, mtime_ns)


@dataclasses.dataclass(frozen=True)
class Claim:
    """An input owned by this process, in the in-progress folder."""

    id: str
    name: str
    path: Path
    attempts: int = 1


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A settled input file, as it was when scanned."""

    path: Path
    signature: Signature


def is_ignored(name: str) -> bool:
    """Dotfiles and ``*.tmp`` / ``*.part`` are files still being written by convention."""
    return name.startswith(".") or name.lower().endswith(IGNORED_SUFFIXES)


class SettleTracker:
    """Picks the input files that have stopped changing.

    A file is settled when its (size, mtime) was last modified at least ``settle`` seconds ago,
    or has been seen unchanged by this tracker for ``settle`` seconds (clock skew on network
    folders). A writer that pauses longer than that leaves a truncated file, which then fails
    as a bad input.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._wall = wall
        self._seen: Dict[str, Tuple[Signature, float]] = {}

    def scan(self, folder: Path, settle: float) -> Tuple[List[Candidate], int]:
        """(settled candidates, oldest first; number of files still changing)."""
        now, wall = self._clock(), self._wall()
        seen: Dict[str, Tuple[Signature, float]] = {}
        ready: List[Tuple[int, str, Candidate]] = []
        waiting = 0
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            return [], 0
        for entry in entries:
            if is_ignored(entry.name):
                continue
            try:
                if not entry.is_file(follow_symlinks=False):
                    continue
                stat = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            signature = (stat.st_size, stat.st_mtime_ns)
            previous = self._seen.get(entry.name)
            since = previous[1] if previous and previous[0] == signature else now
            seen[entry.name] = (signature, since)
            quiet_for = max(wall - stat.st_mtime, now - since)
            if settle <= 0 or quiet_for >= settle:
                candidate = Candidate(Path(entry.path), signature)
                ready.append((stat.st_mtime_ns, entry.name, candidate))
            else:
                waiting += 1
        self._seen = seen
        ready.sort(key=lambda item: (item[0], item[1]))
        return [item[2] for item in ready], waiting


class Spool:
    """The in-progress folder and the moves around it. Used from one thread."""

    def __init__(self, state_dir: Path, outbox: Optional[Outbox] = None) -> None:
        self.state_dir = state_dir
        self.in_progress = state_dir / "in-progress"
        self.attempts_dir = state_dir / "attempts"
        self.outbox = outbox or Outbox(state_dir / "outbox")
        self._last_id = 0

    def open(self) -> None:
        for folder in (self.in_progress, self.attempts_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.outbox.open()

    def _new_id(self) -> str:
        self._last_id = max(time.time_ns(), self._last_id + 1)
        return f"{self._last_id:016x}"

    def claim(self, candidate: Candidate) -> Optional[Claim]:
        """Take the input (atomic rename), or None if it changed or vanished since the scan."""
        src = candidate.path
        try:
            stat = os.stat(src)
        except FileNotFoundError:
            return None
        if (stat.st_size, stat.st_mtime_ns) != candidate.signature:
            return None
        claim_id = self._new_id()
        dest = self.in_progress / f"{claim_id}-{src.name}"
        try:
            os.rename(str(src), str(dest))
        except FileNotFoundError:
            return None
        return Claim(id=claim_id, name=src.name, path=dest)

    def unclaim(self, claim: Claim, input_dir: Path) -> bool:
        """Give an unprocessed input back (on shutdown); False leaves it recoverable here."""
        target = input_dir / claim.name
        if target.exists():
            return False
        try:
            os.rename(str(claim.path), str(target))
        except OSError as err:
            LOG.warning(
                "could not return %s to %s (%s); it stays in progress", claim.name, input_dir, err
            )
            return False
        with contextlib.suppress(FileNotFoundError):
            os.unlink(str(self.attempts_dir / claim.id))
        return True

    def complete(
        self, claim: Claim, message: Dict[str, Any], *, failed: bool, folder: Path
    ) -> Path:
        """Record the result durably, then move the input to ``folder``; returns where it went."""
        folder.mkdir(parents=True, exist_ok=True)
        dest = unique_destination(folder, claim.name, claim.id)
        record = {
            "id": claim.id,
            "claim": claim.path.name,
            "dest": str(dest),
            "failed": failed,
            "message": message,
        }
        self.outbox.write_pending(claim.id, record)
        return self._finish(record)

    def _finish(self, record: Dict[str, Any]) -> Path:
        src = self.in_progress / record["claim"]
        dest = Path(record["dest"])
        if src.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.exists():  # taken since the record was written (only after a crash)
                dest = unique_destination(dest.parent, dest.name, record["id"])
            if record["failed"]:
                write_json_atomic(dest.with_name(dest.name + ".error.json"), record["message"])
            # No fsync here: until this rename is durable, the durable pending record makes
            # recovery redo it. That keeps the cost per input to one file + one folder fsync.
            os.rename(str(src), str(dest))
        self.outbox.release(record["id"])
        with contextlib.suppress(FileNotFoundError):
            os.unlink(str(self.attempts_dir / record["id"]))
        return dest

    def recover(self) -> List[Claim]:
        """Finish interrupted work; return the in-progress inputs to run again, oldest first.

        Claims whose ``attempts`` exceed :data:`MAX_ATTEMPTS` are returned too: the caller
        fails them instead of running them.
        """
        for folder in (self.in_progress, self.attempts_dir):
            remove_temp_files(folder)
        finished = 0
        for record in self.outbox.pending_records().values():
            self._finish(record)
            finished += 1
        claims: List[Claim] = []
        for path in sorted(self.in_progress.iterdir()):
            if path.name.startswith(".") or not path.is_file():
                continue
            match = _CLAIM_NAME.match(path.name)
            claim_id, name = (
                (match.group(1), match.group(2)) if match else (self._new_id(), path.name)
            )
            claims.append(Claim(claim_id, name, path, attempts=self._count_attempt(claim_id)))
        if finished or claims:
            LOG.warning(
                "recovered after an unclean stop: %d result(s) finished, %d input(s) to run again",
                finished,
                len(claims),
            )
        return claims

    def _count_attempt(self, claim_id: str) -> int:
        """Count one more run of an input that was in progress when the process stopped."""
        path = self.attempts_dir / claim_id
        try:
            attempts = int(path.read_text(encoding="ascii").strip() or "1")
        except (FileNotFoundError, ValueError):
            attempts = 1
        attempts += 1
        write_json_atomic(path, attempts)
        return attempts
