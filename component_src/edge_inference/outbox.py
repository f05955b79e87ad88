"""The outbox: durable results waiting to be published, and the thread that publishes them.

Each result is one JSON file in ``<state-dir>/outbox``. It is written as ``<id>.pending``
(fsync'd, before its input leaves the in-progress folder) and renamed to ``<id>.json`` once the
input has been moved to its final folder; only ``.json`` records are published. A record is
deleted only after the publisher accepted it, so a failed publish keeps it for a later retry,
and a crash at any point leaves each result either pending (finished on start-up) or released
(published on start-up). Publishing is at least once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
from pathlib import Path
from typing import IO, Any, Dict, List, Optional, Protocol

from device_contract.messages import encode
from edge_inference.durable import remove_temp_files, write_json_atomic

LOG = logging.getLogger(__name__)

PENDING = ".pending"
RELEASED = ".json"


class Publisher(Protocol):
    def publish(self, message: Dict[str, Any]) -> None:
        """Deliver one result; raise on failure (the result stays in the outbox)."""


class Outbox:
    """The folder of pending and released result records. Thread-safe."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.changed = threading.Event()
        self._lock = threading.Lock()
        self._count = 0

    def open(self) -> None:
        """Create the folder, drop interrupted writes, count the records waiting."""
        self.folder.mkdir(parents=True, exist_ok=True)
        remove_temp_files(self.folder)
        with self._lock:
            self._count = len(self.released_ids())
        if self._count:
            self.changed.set()

    @property
    def count(self) -> int:
        """Released records not yet published."""
        with self._lock:
            return self._count

    def write_pending(self, record_id: str, record: Dict[str, Any]) -> None:
        write_json_atomic(self.folder / (record_id + PENDING), record)

    def pending_records(self) -> Dict[str, Dict[str, Any]]:
        records: Dict[str, Dict[str, Any]] = {}
        for path in sorted(self.folder.glob("*" + PENDING)):
            record = self._read(path)
            if record is not None:
                records[path.name[: -len(PENDING)]] = record
        return records

    def release(self, record_id: str) -> None:
        """Make a pending record publishable (idempotent)."""
        pending = self.folder / (record_id + PENDING)
        try:
            os.replace(str(pending), str(self.folder / (record_id + RELEASED)))
        except FileNotFoundError:
            return
        with self._lock:
            self._count += 1
        self.changed.set()

    def released_ids(self) -> List[str]:
        """Publishable records, oldest first (ids sort by time)."""
        names = [n for n in os.listdir(self.folder) if n.endswith(RELEASED)]
        return sorted(n[: -len(RELEASED)] for n in names if not n.startswith("."))

    def read(self, record_id: str) -> Optional[Dict[str, Any]]:
        return self._read(self.folder / (record_id + RELEASED))

    def remove(self, record_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(str(self.folder / (record_id + RELEASED)))
            with self._lock:
                self._count -= 1

    def _read(self, path: Path) -> Optional[Dict[str, Any]]:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as err:
            # Written atomically, so this is disk corruption: keep it aside, do not loop on it.
            LOG.error("outbox record %s is unreadable (%s); renamed to .corrupt", path, err)
            with contextlib.suppress(OSError):
                os.replace(str(path), str(path) + ".corrupt")
            return None
        return record if isinstance(record, dict) else None


class StdoutPublisher:
    """Local mode: one JSON object per line on stdout."""

    def __init__(self, stream: Optional[IO[str]] = None) -> None:
        self._stream = stream

    def publish(self, message: Dict[str, Any]) -> None:
        stream = self._stream or sys.stdout
        stream.write(encode(message) + "\n")
        stream.flush()


class Drainer:
    """Publishes released records in order on a background thread, with exponential backoff
    (``min_backoff`` doubling to ``max_backoff``) while the publisher fails."""

    def __init__(
        self,
        outbox: Outbox,
        publisher: Publisher,
        *,
        min_backoff: float = 1.0,
        max_backoff: float = 60.0,
    ) -> None:
        self.outbox = outbox
        self.publisher = publisher
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._failures = 0

    @property
    def failing(self) -> bool:
        """The last publish attempt failed."""
        return self._failures > 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="outbox-drainer", daemon=True)
        self._thread.start()

    def stop(self, *, flush: bool, timeout: float = 2.0) -> None:
        """Stop the thread (waiting at most ``timeout`` for a publish in flight); with ``flush``,
        then try once more to publish everything waiting."""
        self._stop.set()
        self.outbox.changed.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                LOG.warning("a publish is still in flight; unpublished results stay in the outbox")
                return
        if flush:
            self.drain_once(stoppable=False)

    def drain_once(self, *, stoppable: bool = True) -> bool:
        """Publish every released record; False at the first failure."""
        for record_id in self.outbox.released_ids():
            if stoppable and self._stop.is_set():
                return True
            record = self.outbox.read(record_id)
            if record is None:
                continue
            try:
                self.publisher.publish(record["message"])
            except Exception as err:  # any publisher failure: keep the record, retry later
                self._failures += 1
                LOG.warning(
                    "publishing result %s failed (%s: %s); %d result(s) kept in the outbox",
                    record_id,
                    type(err).__name__,
                    err,
                    self.outbox.count,
                )
                return False
            self.outbox.remove(record_id)
        if self._failures:
            LOG.info("publishing works again after %d failed attempt(s)", self._failures)
        self._failures = 0
        return True

    def _loop(self) -> None:
        delay = 0.0
        while not self._stop.is_set():
            if delay:
                if self._stop.wait(delay):
                    break
            else:
                self.outbox.changed.wait(timeout=5.0)
            self.outbox.changed.clear()
            if self._stop.is_set():
                break
            if self.drain_once():
                delay = 0.0
            else:
                delay = min(self.max_backoff, max(self.min_backoff, delay * 2))
                LOG.info("retrying publish in %.0f s", delay)
