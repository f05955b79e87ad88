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
name gets ``.<id>`` before the suffix). A name too long to carry the ``<id>-`` prefix is
shortened in ``in-progress`` and its full name kept in ``state/names/<id>`` (written before the
claim), so results always carry the name the user gave.

Only the inputs being decoded or run when the process died count as an attempt: their ids are
in ``state/active`` (one small in-place write when a run starts or ends, no fsync: it only has to
survive a process crash). A claimed input that was merely prefetched is run again uncounted.

The state folder is locked (``flock`` on ``state/lock``) while a process uses it: a second
instance on the same folders would re-run the first one's inputs and publish them twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import re
import stat as stat_module
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from edge_inference.durable import (
    NAME_MAX,
    display_name,
    fit_name,
    remove_temp_files,
    unique_destination,
    write_json_atomic,
)
from edge_inference.outbox import Outbox

LOG = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
IGNORED_SUFFIXES = (".tmp", ".part")
_CLAIM_NAME = re.compile(r"^([0-9a-f]{16})-(.+)$", re.DOTALL)  # names may hold newlines
_CLAIM_PREFIX = 17  # "<16 hex digits>-"
# state/active: the ids of a whole batch (BatchSize is at most 32) and the input decoded beside
# it, padded so that one write replaces it all
_ACTIVE_BYTES = 1024

Signature = Tuple[int, int]  # (size, mtime_ns)


class SpoolLocked(Exception):
    """Another process holds the state folder's lock."""


class ClaimError(Exception):
    """The input cannot be taken (not ours to move, ...): the message says why."""


@dataclasses.dataclass(frozen=True)
class Claim:
    """An input owned by this process, in the in-progress folder."""

    id: str
    name: str
    path: Path
    attempts: int = 1

    @property
    def display(self) -> str:
        """The name as valid text, for results and logs."""
        return display_name(self.name)


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A settled input file, as it was when scanned."""

    path: Path
    signature: Signature


class SettleTracker:
    """Picks the input files that have stopped changing.

    A file is settled when its (size, mtime) was last modified at least ``settle`` seconds ago,
    or has been seen unchanged by this tracker for ``settle`` seconds (clock skew on network
    folders). A writer that pauses longer than that leaves a truncated file, which then fails
    as a bad input. Entries that are never taken (folders, symlinks, FIFOs, dotfiles) are
    logged once each; files that could not be claimed are skipped until they change.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._wall = wall
        self._seen: Dict[str, Tuple[Signature, float]] = {}
        self._reported: Set[str] = set()
        self._refused: Dict[str, Signature] = {}

    def refuse(self, candidate: Candidate) -> None:
        """Skip this file until its size or mtime changes (it could not be claimed)."""
        self._refused[candidate.path.name] = candidate.signature

    def forgive(self, candidate: Candidate) -> None:
        """Try this file again on the next scan."""
        self._refused.pop(candidate.path.name, None)

    def _report(self, name: str, what: str, reported: Set[str]) -> None:
        reported.add(name)
        if name not in self._reported:
            LOG.info("ignored in the input folder: %s (%s)", display_name(name), what)

    def scan(self, folder: Path, settle: float) -> Tuple[List[Candidate], int]:
        """(settled candidates, oldest first; number of files still changing)."""
        now, wall = self._clock(), self._wall()
        seen: Dict[str, Tuple[Signature, float]] = {}
        reported: Set[str] = set()
        refused: Dict[str, Signature] = {}
        ready: List[Tuple[int, str, Candidate]] = []
        waiting = 0
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            return [], 0
        for entry in entries:
            name = entry.name
            if name.lower().endswith(IGNORED_SUFFIXES):
                continue  # still being written, by convention: not worth a log line
            if name.startswith("."):
                self._report(name, "a dotfile", reported)
                continue
            try:
                stat = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if not stat_module.S_ISREG(stat.st_mode):
                self._report(name, _kind(stat.st_mode), reported)
                continue
            signature = (stat.st_size, stat.st_mtime_ns)
            if self._refused.get(name) == signature:
                refused[name] = signature
                continue
            previous = self._seen.get(name)
            since = previous[1] if previous and previous[0] == signature else now
            seen[name] = (signature, since)
            quiet_for = max(wall - stat.st_mtime, now - since)
            if settle <= 0 or quiet_for >= settle:
                candidate = Candidate(Path(entry.path), signature)
                ready.append((stat.st_mtime_ns, name, candidate))
            else:
                waiting += 1
        self._seen = seen
        self._reported = reported
        self._refused = refused
        ready.sort(key=lambda item: (item[0], item[1]))
        return [item[2] for item in ready], waiting


def _kind(mode: int) -> str:
    if stat_module.S_ISDIR(mode):
        return "a folder"
    if stat_module.S_ISLNK(mode):
        return "a symbolic link"
    if stat_module.S_ISFIFO(mode):
        return "a FIFO"
    return "not a regular file"


class ActiveRecord:
    """``state/active``: the ids being decoded or run right now. Thread-safe.

    Rewritten in place with one fixed-size ``pwrite`` per change (no fsync): a process crash
    cannot leave it half written, and it costs microseconds per input.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: Optional[int] = None
        self._ids: Set[str] = set()
        self._lock = threading.Lock()

    def read(self) -> Set[str]:
        try:
            text = self.path.read_text(encoding="ascii", errors="replace")
        except FileNotFoundError:
            return set()
        ids = (part.strip() for part in text.split(","))
        return {part for part in ids if re.fullmatch(r"[0-9a-f]{16}", part)}

    def open(self) -> None:
        self._fd = os.open(str(self.path), os.O_RDWR | os.O_CREAT, 0o644)
        self._write()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def add(self, *record_ids: str) -> None:
        with self._lock:
            self._ids.update(record_ids)
            self._write()

    def discard(self, *record_ids: str) -> None:
        with self._lock:
            self._ids.difference_update(record_ids)
            self._write()

    def _write(self) -> None:
        if self._fd is None:
            return
        data = ",".join(sorted(self._ids)).encode("ascii")[:_ACTIVE_BYTES]
        try:
            os.pwrite(self._fd, data.ljust(_ACTIVE_BYTES, b" "), 0)
        except OSError as err:  # best effort: a lost mark only means an uncounted attempt
            LOG.debug("cannot update %s: %s", self.path, err)


class Spool:
    """The in-progress folder and the moves around it. Used from one thread (the active
    record also from the prefetch thread)."""

    def __init__(self, state_dir: Path, outbox: Optional[Outbox] = None) -> None:
        self.state_dir = state_dir
        self.in_progress = state_dir / "in-progress"
        self.attempts_dir = state_dir / "attempts"
        self.names_dir = state_dir / "names"
        self.outbox = outbox or Outbox(state_dir / "outbox")
        self.active = ActiveRecord(state_dir / "active")
        # Called with each finished record and where its input went, after the move and before
        # the release, also when recovery finishes a record: what must follow every result
        # (its capture) survives a kill between the two. It must not raise, and may run twice
        # for one record (a kill after it and before the release): act idempotently by id.
        self.on_finished: Optional[Callable[[Dict[str, Any], Path], None]] = None
        self._last_id = 0
        self._lock_fd: Optional[int] = None

    def lock(self) -> None:
        """Take the state folder for this process; :class:`SpoolLocked` if another has it.

        ``flock`` locks go with the open file, so the kernel drops it when the process dies,
        however it dies: a restarted component is never locked out by its dead predecessor.
        """
        if self._lock_fd is not None:
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path = self.state_dir / "lock"
        fd = os.open(str(path), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            raise SpoolLocked(
                f"another instance is using the state folder {self.state_dir} "
                f"(it holds the lock on {path}); stop it or give this one its own folders"
            ) from err
        self._lock_fd = fd

    def open(self) -> None:
        self.lock()
        for folder in (self.in_progress, self.attempts_dir, self.names_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.outbox.open()

    def close(self) -> None:
        """Release the lock (the process ending does the same)."""
        self.active.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def new_id(self) -> str:
        self._last_id = max(time.time_ns(), self._last_id + 1)
        return f"{self._last_id:016x}"

    def claim(self, candidate: Candidate) -> Optional[Claim]:
        """Take the input (atomic rename), or None if it changed or vanished since the scan;
        :class:`ClaimError` if it cannot be moved (permissions, ...)."""
        src = candidate.path
        try:
            stat = os.stat(src)
        except FileNotFoundError:
            return None
        except OSError as err:
            raise ClaimError(f"cannot read file: {err.strerror or err}") from err
        if (stat.st_size, stat.st_mtime_ns) != candidate.signature:
            return None
        claim_id = self.new_id()
        stored = fit_name(src.name, NAME_MAX - _CLAIM_PREFIX)
        names_file = self.names_dir / claim_id
        if stored != src.name:  # keep the full name: the claim's file name cannot hold it
            write_json_atomic(names_file, {"name": src.name})
        dest = self.in_progress / f"{claim_id}-{stored}"
        try:
            os.rename(str(src), str(dest))
        except OSError as err:
            if stored != src.name:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(str(names_file))
            if isinstance(err, FileNotFoundError):
                return None
            raise ClaimError(f"cannot take the file: {err.strerror or err}") from err
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
        self._forget(claim.id)
        return True

    def _forget(self, claim_id: str) -> None:
        for path in (self.attempts_dir / claim_id, self.names_dir / claim_id):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(str(path))

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
        if self.on_finished is not None:
            try:
                self.on_finished(record, dest)
            except Exception:  # the result is recorded: nothing here may undo or redo it
                LOG.exception("after recording %s", record["id"])
        self.outbox.release(record["id"])
        self._forget(record["id"])
        return dest

    def recover(self) -> List[Claim]:
        """Finish interrupted work; return the in-progress inputs to run again, oldest first.

        Claims whose ``attempts`` exceed :data:`MAX_ATTEMPTS` are returned too: the caller
        fails them instead of running them.
        """
        for folder in (self.in_progress, self.attempts_dir, self.names_dir):
            remove_temp_files(folder)
        crashed = self.active.read()
        self.active.open()
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
                (match.group(1), match.group(2)) if match else (self.new_id(), path.name)
            )
            name = self._full_name(claim_id, name)
            attempts = self._attempts(claim_id, count_one=claim_id in crashed)
            claims.append(Claim(claim_id, name, path, attempts=attempts))
        for stale in os.listdir(self.names_dir):  # claims that were finished or never made
            if not any(claim.id == stale for claim in claims):
                self._forget(stale)
        if finished or claims:
            LOG.warning(
                "recovered after an unclean stop: %d result(s) finished, %d input(s) to run again",
                finished,
                len(claims),
            )
        return claims

    def _full_name(self, claim_id: str, stored: str) -> str:
        try:
            record = json.loads((self.names_dir / claim_id).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return stored
        name = record.get("name") if isinstance(record, dict) else None
        return name if isinstance(name, str) and name else stored

    def _attempts(self, claim_id: str, *, count_one: bool) -> int:
        """1 + the runs of this input that were cut short by the process dying; with
        ``count_one``, it was being decoded or run when the process stopped: count that run."""
        path = self.attempts_dir / claim_id
        try:
            crashes = int(path.read_text(encoding="ascii").strip() or "0")
        except (FileNotFoundError, ValueError):
            crashes = 0
        if count_one:
            crashes += 1
            try:
                write_json_atomic(path, crashes)
            except OSError as err:  # disk full at start-up must not become a crash loop
                LOG.warning("cannot record an attempt of input %s: %s", claim_id, err)
        return crashes + 1
