"""Capture: inputs the fleet should learn from, kept on disk and sent to S3 in the background.

Which inputs (``capture_reason``): a failed input; one whose top-1 confidence is below
``CaptureBelowConfidence``; a random ``CaptureSampleRate`` of the others. Each becomes two files
in ``<state>/captures``: the input itself (``<id>.data``, a hard link to the file in the
processed or failed folder, so capturing costs no copy and retention there does not remove it)
and ``<id>.json``, its sidecar (the prediction or failure message, the model, why it was
captured, when). The sidecar is written last, atomically: it is what makes a capture exist, so
a crash between the two leaves a data file without sidecar, which :meth:`CaptureStore.open`
removes.

Where they go: with ``CaptureBucket`` set, :class:`CaptureSender` uploads each capture (input
first, sidecar second) to ``<CapturePrefix><yyyy>/<mm>/<dd>/<id>-<name>`` and deletes it
locally only once both uploads succeeded. The date is the capture's (in the sidecar), not the
upload's, so a retry after a crash, a reboot or a clock change writes the same keys again:
one object per input, whatever the number of attempts. Without a bucket, captures stay on disk.

Bounds: at most ``CaptureMaxMB`` on disk; to make room the oldest captures are dropped and
counted (the metrics window's ``capture_dropped``). Capturing runs on the finisher thread after
the result is recorded and never fails or delays an input: a disk that cannot take the capture
drops it (logged, counted). Uploading runs on its own thread.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import random
import re
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Protocol, Set, Tuple

from edge_inference.durable import remove_temp_files, write_json_atomic

LOG = logging.getLogger(__name__)

REASON_FAILED = "failed"
REASON_LOW_CONFIDENCE = "low-confidence"
REASON_SAMPLE = "sample"
REASONS = (REASON_FAILED, REASON_LOW_CONFIDENCE, REASON_SAMPLE)

DATA = ".data"
SIDECAR = ".json"
MB = 1024 * 1024
LOG_EVERY_SECONDS = 60.0
#: S3 object keys are at most 1024 bytes of UTF-8 (S3 User Guide, "Naming Amazon S3 objects":
#: "The object key name is a sequence of Unicode characters with UTF-8 encoding of up to
#: 1,024 bytes long"). The input's name is cut to this many bytes in the key.
KEY_NAME_BYTES = 100
#: The same page's "safe characters": alphanumerics and ``! - _ . * ' ( )``. Anything else in
#: an input's name becomes ``_`` in its key (the sidecar keeps the name as it was).
_UNSAFE = re.compile(r"[^0-9A-Za-z!\-_.*'()]")


def capture_reason(
    message: Dict[str, Any],
    failed: bool,
    *,
    below: float,
    rate: float,
    draw: Callable[[], float] = random.random,
) -> Optional[str]:
    """Why this result should be captured, or None. ``below`` 0 and ``rate`` 0 capture
    failures only."""
    if failed:
        return REASON_FAILED
    top = message.get("top") or []
    score = float(top[0]["score"]) if top else 0.0
    if score < below:
        return REASON_LOW_CONFIDENCE
    if rate > 0 and draw() < rate:
        return REASON_SAMPLE
    return None


def key_name(record_id: str, name: str) -> str:
    """``<id>-<name>``, the name reduced to S3's safe characters and at most
    :data:`KEY_NAME_BYTES` (the extension is kept)."""
    safe = _UNSAFE.sub("_", name) or "input"
    if len(safe) > KEY_NAME_BYTES:
        _stem, dot, suffix = safe.rpartition(".")
        suffix = "." + suffix if dot and len(suffix) <= 16 else ""
        safe = safe[: KEY_NAME_BYTES - len(suffix)] + suffix
    return f"{record_id}-{safe}"


def date_path(epoch: float) -> str:
    """``yyyy/mm/dd`` (UTC) of ``epoch``."""
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
    return moment.strftime("%Y/%m/%d")


def _iso(epoch: float) -> str:
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


#: When the bound is passed, the oldest captures go until the folder holds this share of it.
LOW_WATER = 0.9


class CaptureStore:
    """The ``<state>/captures`` folder: captures waiting to be uploaded, bounded. Thread-safe."""

    def __init__(self, folder: Path, *, max_bytes: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.changed = threading.Event()
        self._lock = threading.Lock()
        self._bytes = 0
        self._counts = {"captured": 0, "dropped": 0, "uploaded": 0}
        self._unlogged = 0
        self._logged_at = -LOG_EVERY_SECONDS
        # Captures this process is done with but could not delete (a read-only folder): not
        # listed again, else each retry would upload them again, for good.
        self._done: Set[str] = set()

    def open(self) -> None:
        """Create the folder, drop interrupted writes and data files with no sidecar (a crash
        between the two), and count what is kept."""
        self.folder.mkdir(parents=True, exist_ok=True)
        remove_temp_files(self.folder)
        ids = set(self.ids())
        total = 0
        for entry in os.listdir(self.folder):
            path = self.folder / entry
            if entry.endswith(DATA) and entry[: -len(DATA)] not in ids:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                continue
            with contextlib.suppress(OSError):
                total += path.stat().st_size
        with self._lock:
            self._bytes = total
        if ids:
            self.changed.set()

    def ids(self) -> List[str]:
        """Captures waiting, oldest first (ids sort by time)."""
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return []
        return sorted(
            n[: -len(SIDECAR)]
            for n in names
            if n.endswith(SIDECAR) and n[0] != "." and n[: -len(SIDECAR)] not in self._done
        )

    @property
    def bytes(self) -> int:
        with self._lock:
            return self._bytes

    def take_counts(self) -> Dict[str, int]:
        """Captures made, dropped and uploaded since the last call (for the metrics window)."""
        with self._lock:
            counts, self._counts = self._counts, {"captured": 0, "dropped": 0, "uploaded": 0}
        return counts

    def add(
        self, source: Path, record_id: str, message: Dict[str, Any], reason: str, now: float
    ) -> bool:
        """Capture ``source`` (the input, already in its final folder). False if it could not
        be kept (logged); never raises for disk trouble."""
        if self.max_bytes <= 0:
            return False
        data = self.folder / (record_id + DATA)
        try:
            size = source.stat().st_size
            if size > self.max_bytes:
                LOG.warning(
                    "capture of %s skipped: %d bytes is more than CaptureMaxMB", source.name, size
                )
                self._count("dropped")
                return False
            self.folder.mkdir(parents=True, exist_ok=True)
            _link_or_copy(source, data)
            sidecar = {
                "id": record_id,
                "input": message.get("input", source.name),
                "reason": reason,
                "captured_at": _iso(now),
                "date": date_path(now),
                "key_name": key_name(record_id, source.name),
                "bytes": size,  # the input's
                "model": message.get("model"),
                "message": message,
            }
            # No fsync (two per input on the finisher thread, 0.81x the throughput of a 500
            # inputs/s model with every input captured: bench/component.py --watch): a
            # SIGKILL keeps the file, a power cut may leave it empty, which read() drops.
            write_json_atomic(self.folder / (record_id + SIDECAR), sidecar, sync=False)
            size += (self.folder / (record_id + SIDECAR)).stat().st_size
        except OSError as err:
            with contextlib.suppress(OSError):
                data.unlink()
            LOG.warning("capture of %s dropped (%s)", source.name, err)
            self._count("dropped")
            return False
        with self._lock:
            self._bytes += size
            self._counts["captured"] += 1
            over = self._bytes > self.max_bytes
        if over:  # listing the folder costs: only when something must go
            self._make_room()
        self.changed.set()
        return True

    def read(self, record_id: str) -> Optional[Dict[str, Any]]:
        try:
            record = json.loads((self.folder / (record_id + SIDECAR)).read_text("utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as err:
            LOG.error("capture %s is unreadable (%s); dropped", record_id, err)
            self.remove(record_id)
            self._count("dropped")
            return None
        if not isinstance(record, dict):
            self.drop(record_id, "its sidecar is not a JSON object")
            return None
        return record

    def drop(self, record_id: str, why: str) -> None:
        """Remove a capture that can never be sent, counted as dropped."""
        LOG.error("capture %s dropped: %s", record_id, why)
        self.remove(record_id)
        self._count("dropped")

    def data_path(self, record_id: str) -> Path:
        return self.folder / (record_id + DATA)

    def remove(self, record_id: str, *, uploaded: bool = False) -> None:
        freed = 0
        for suffix in (SIDECAR, DATA):  # the sidecar first: a crash leaves no half capture
            path = self.folder / (record_id + suffix)
            try:
                size = path.stat().st_size
                path.unlink()
                freed += size
            except FileNotFoundError:
                pass
            except OSError as err:  # a folder that refuses deletes: done with it all the same
                with self._lock:
                    first = not self._done
                    self._done.add(record_id)
                if first:
                    LOG.error(
                        "cannot remove captures from %s (%s); those sent or dropped stay on "
                        "disk and are not sent again by this process",
                        self.folder,
                        err,
                    )
                break
        with self._lock:
            self._bytes = max(0, self._bytes - freed)
            if uploaded:
                self._counts["uploaded"] += 1

    def _count(self, what: str) -> None:
        with self._lock:
            self._counts[what] += 1

    def _disk_bytes(self) -> int:
        total = 0
        try:
            with os.scandir(self.folder) as entries:
                for entry in entries:
                    with contextlib.suppress(OSError):
                        total += entry.stat(follow_symlinks=False).st_size
        except OSError:
            return 0
        return total

    def _make_room(self) -> None:
        """Drop the oldest captures until the folder holds at most ``max_bytes``. The count is
        first taken again from the disk: captures removed under the store (an operator's
        ``rm -rf``, the folder deleted) must not count against the bound."""
        actual = self._disk_bytes()
        with self._lock:
            self._bytes = actual
        if actual <= self.max_bytes:
            return
        # Down to LOW_WATER of the bound, not just under it: at the bound every new capture
        # would otherwise list and sort the whole folder again (61,000 small captures: half a
        # second per input, on the thread that finishes results; found by the hostile review).
        target = self.max_bytes * LOW_WATER
        dropped = 0
        for record_id in self.ids():
            if self.bytes <= target:
                break
            self.remove(record_id)
            dropped += 1
        if dropped:
            with self._lock:
                self._counts["dropped"] += dropped
                self._unlogged += dropped
                now = time.monotonic()
                if now - self._logged_at < LOG_EVERY_SECONDS:
                    return  # offline for days: one line a minute, not one per input
                self._logged_at, unlogged, self._unlogged = now, self._unlogged, 0
            LOG.warning(
                "%d oldest capture(s) dropped to stay within CaptureMaxMB (%.1f MB)",
                unlogged,
                self.max_bytes / MB,
            )


def _link_or_copy(source: Path, dest: Path) -> None:
    """A hard link (no copy, and the processed folder's retention cannot take it away), or a
    copy where links do not work (another file system, a file system without them)."""
    with contextlib.suppress(FileNotFoundError):
        dest.unlink()
    try:
        os.link(str(source), str(dest))
    except OSError:
        shutil.copyfile(str(source), str(dest))


class Uploader(Protocol):
    def put(self, key: str, body: bytes, content_type: str) -> None:
        """Store ``body`` at ``key``; raise on failure (the capture stays for a retry)."""


CONTENT_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".npy": "application/octet-stream",
}


def content_type(name: str) -> str:
    return CONTENT_TYPES.get(os.path.splitext(name)[1].lower(), "application/octet-stream")


_DATE_RE = re.compile(r"^\d{4}/\d{2}/\d{2}$")


def capture_keys(prefix: str, record: Dict[str, Any]) -> Tuple[str, str]:
    """(input key, sidecar key) of a capture under ``prefix``; ValueError for a record whose
    ``date`` or ``key_name`` is not what :meth:`CaptureStore.add` writes."""
    date, name = record["date"], record["key_name"]
    if not isinstance(date, str) or not _DATE_RE.match(date):
        raise ValueError(f"date {date!r}")
    if not isinstance(name, str) or not name or "/" in name:
        raise ValueError(f"key_name {name!r}")
    base = f"{prefix}{date}/{name}"
    return base, base + ".json"


class CaptureSender:
    """Uploads captures oldest first on a background thread; exponential backoff
    (``min_backoff`` doubling to ``max_backoff``) while uploads fail."""

    def __init__(
        self,
        store: CaptureStore,
        uploader: Uploader,
        prefix: str,
        *,
        min_backoff: float = 1.0,
        max_backoff: float = 300.0,
    ) -> None:
        self.store = store
        self.uploader = uploader
        self.prefix = prefix
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.failures = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="capture-sender", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        self._stop.set()
        self.store.changed.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def send_once(self) -> bool:
        """Upload every waiting capture; False at the first failure."""
        for record_id in self.store.ids():
            if self._stop.is_set():
                return True
            record = self.store.read(record_id)
            if record is None:
                continue
            try:
                data_key, sidecar_key = capture_keys(self.prefix, record)
                kind = content_type(str(record["key_name"]))
            except (KeyError, TypeError, ValueError) as err:  # a sidecar not written by us
                self.store.drop(record_id, f"its sidecar has no usable {err}")
                continue
            try:
                body = self.store.data_path(record_id).read_bytes()
            except FileNotFoundError:  # removed under us (a folder deleted): nothing to send
                self.store.remove(record_id)
                continue
            except OSError as err:
                LOG.warning("capture %s cannot be read (%s); dropped", record_id, err)
                self.store.remove(record_id)
                continue
            try:
                self.uploader.put(data_key, body, kind)
                sidecar = json.dumps(record, sort_keys=True).encode("utf-8")
                self.uploader.put(sidecar_key, sidecar, "application/json")
            except Exception as err:  # any upload failure: keep it, retry later
                self.failures += 1
                LOG.warning(
                    "uploading capture %s failed (%s: %s); %d capture(s) waiting",
                    record_id,
                    type(err).__name__,
                    err,
                    len(self.store.ids()),
                )
                return False
            self.store.remove(record_id, uploaded=True)
        if self.failures:
            LOG.info("capture uploads work again after %d failed attempt(s)", self.failures)
        self.failures = 0
        return True

    def _loop(self) -> None:
        delay = 0.0
        while not self._stop.is_set():
            if delay:
                if self._stop.wait(delay):
                    break
            else:
                self.store.changed.wait(timeout=30.0)
            self.store.changed.clear()
            if self._stop.is_set():
                break
            try:
                ok = self.send_once()
            except OSError as err:  # the capture folder itself is gone or unreadable
                LOG.warning("capture folder unusable (%s); retrying", err)
                ok = False
                with contextlib.suppress(OSError):
                    self.store.folder.mkdir(parents=True, exist_ok=True)
            except Exception:  # never let the uploads stop for good: log, back off, go on
                LOG.exception("capture upload pass failed; retrying")
                ok = False
            delay = 0.0 if ok else min(self.max_backoff, max(self.min_backoff, delay * 2))


UploaderFactory = Callable[[str], Uploader]


def s3_uploader(bucket: str) -> Uploader:
    """The device's uploader: S3 with the token-exchange service's credentials."""
    from edge_inference.s3_upload import S3Uploader

    return S3Uploader(bucket)


class Capturer:
    """Decides which results are captured, keeps them (:class:`CaptureStore`) and, with a
    bucket configured, uploads them (:class:`CaptureSender`). Follows configuration updates."""

    def __init__(
        self,
        folder: Path,
        config: Any,
        *,
        thing_name: Optional[str],
        uploader_factory: UploaderFactory = s3_uploader,
        draw: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
        backoff: Tuple[float, float] = (1.0, 300.0),
    ) -> None:
        self.store = CaptureStore(folder, max_bytes=int(config.capture_max_mb * MB))
        self.thing_name = thing_name
        self._factory = uploader_factory
        self._draw = draw
        self._clock = clock
        self._backoff = backoff
        self._config = config
        self.sender: Optional[CaptureSender] = None
        self._started = False

    def start(self) -> None:
        try:
            self.store.open()
        except OSError as err:
            LOG.warning("capture folder %s unusable (%s); captures dropped", self.store.folder, err)
        self._started = True
        self._start_sender()

    def _start_sender(self) -> None:
        config = self._config
        if not config.capture_bucket:
            return
        from edge_inference.config import ConfigError, resolve_prefix

        try:
            prefix = resolve_prefix(config.capture_prefix, self.thing_name)
            uploader = self._factory(config.capture_bucket)
        except (ConfigError, RuntimeError) as err:
            LOG.error("captures stay on the device: %s", err)
            return
        self.sender = CaptureSender(
            self.store,
            uploader,
            prefix,
            min_backoff=self._backoff[0],
            max_backoff=self._backoff[1],
        )
        self.sender.start()
        LOG.info("captures go to s3://%s/%s", config.capture_bucket, prefix)

    def configure(self, config: Any) -> None:
        old, self._config = self._config, config
        self.store.max_bytes = int(config.capture_max_mb * MB)
        moved = (old.capture_bucket, old.capture_prefix) != (
            config.capture_bucket,
            config.capture_prefix,
        )
        if moved and self._started:
            if self.sender is not None:
                self.sender.stop()
                self.sender = None
            self._start_sender()

    def offer(self, dest: Path, record_id: str, message: Dict[str, Any], failed: bool) -> None:
        """Capture this result if it qualifies (called after it was recorded)."""
        config = self._config
        reason = capture_reason(
            message,
            failed,
            below=config.capture_below_confidence,
            rate=config.capture_sample_rate,
            draw=self._draw,
        )
        if reason is not None:
            self.store.add(dest, record_id, message, reason, self._clock())

    def counts(self) -> Tuple[int, int, int, int]:
        """(captured, dropped, uploaded) since the last call, and captures waiting now."""
        taken = self.store.take_counts()
        return taken["captured"], taken["dropped"], taken["uploaded"], len(self.store.ids())

    def stop(self, *, flush: bool = False) -> None:
        if self.sender is not None:
            self.sender.stop()
            if flush:
                self.sender.send_once()
