"""The device's metrics: one :class:`device_contract.messages.Metrics` per window, published on
the metrics topic through a bounded, durable queue.

Why MQTT through the component's own queue rather than the AWS-provided
``aws.greengrass.Cloudwatch`` component (``docs/OBSERVABILITY.md`` has the whole reasoning):
that component keeps what it has not sent in memory (aws-greengrass-cloudwatch-metrics
``src/metric/publisher.py``, a ``queue.PriorityQueue``), so a restart while offline loses it,
and it sends at most 20 datums per ``PutMetricData`` call (``METRIC_BATCH_SIZE = 20``), while a
window here holds about 20 numbers per device. One window is one MQTT message here, kept on
disk until IoT Core accepted it.

Bounds, so that nothing grows while the device is offline:

- a window is a few hundred bytes, whatever the traffic: latencies are kept in a fixed-size
  sample (:data:`LATENCY_SAMPLE`), classes beyond :data:`MAX_CLASSES` are counted as
  ``other``, failure reasons beyond :data:`MAX_REASONS` too;
- at most ``MetricsKeepWindows`` unpublished windows stay on disk (``<state>/metrics``); to
  make room, the oldest are dropped and the next window says how many
  (``dropped_windows``);
- a crash (SIGKILL, power loss) loses the window in progress, at most one window; a stop
  (SIGTERM) writes it first.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import random
import re
import shutil
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Callable, List, Optional, Tuple

from device_contract.messages import (
    Count,
    Latency,
    Metrics,
    confidence_bucket,
    confidence_buckets,
)
from edge_inference.config import Config
from edge_inference.outbox import Drainer, Outbox, Publisher

LOG = logging.getLogger(__name__)

#: Latencies kept per window for the percentiles (a uniform reservoir sample beyond this).
LATENCY_SAMPLE = 2048
#: Predicted classes listed per window, most frequent first; the rest add up in ``other``.
MAX_CLASSES = 20
#: Failure reasons listed per window; the rest add up in ``other``.
MAX_REASONS = 10
OTHER = "other"
REASON_CHARS = 64


def failure_reason(error: str) -> str:
    """The reason a failure is counted under: the error up to its first colon, numbers as
    ``N`` (``"input was in progress in N runs that crashed; not retried"``), at most 64
    characters, so that reasons group rather than one per input."""
    head = error.split(":", 1)[0].strip()
    head = re.sub(r"\d+", "N", head)
    return head[:REASON_CHARS] or "unknown"


def percentile(sorted_values: List[float], fraction: float) -> float:
    """The nearest-rank percentile of ``sorted_values`` (0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * fraction // 1))  # ceil(n * fraction), at least 1
    return sorted_values[int(rank) - 1]


def _iso(epoch: float) -> str:
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Window:
    """What one window has seen so far. Not thread-safe: :class:`MetricsReporter` locks."""

    def __init__(self, start: float, *, seed: int = 0) -> None:
        self.start = start
        self.processed = 0
        self.failed: Counter[str] = Counter()
        self.confidence: Counter[str] = Counter()
        self.classes: Counter[str] = Counter()
        self.latencies: List[float] = []
        self.max_latency = 0.0
        self._seen_latencies = 0
        self._random = random.Random(seed)  # noqa: S311 - a sample, not a secret

    @property
    def empty(self) -> bool:
        return self.processed == 0 and not self.failed

    def result(self, latency_ms: float, score: float, label: str) -> None:
        self.processed += 1
        self.confidence[confidence_bucket(score)] += 1
        self.classes[label] += 1
        self.max_latency = max(self.max_latency, latency_ms)
        self._seen_latencies += 1
        if len(self.latencies) < LATENCY_SAMPLE:
            self.latencies.append(latency_ms)
        else:  # reservoir sampling (Vitter's algorithm R): every latency equally likely kept
            slot = self._random.randrange(self._seen_latencies)
            if slot < LATENCY_SAMPLE:
                self.latencies[slot] = latency_ms

    def failure(self, error: str) -> None:
        self.failed[failure_reason(error)] += 1

    def message(
        self,
        *,
        end: float,
        thing: str,
        model: str,
        runtime: str,
        backlog: Tuple[int, float],
        disk_free: int,
        dropped: int,
        capture: Tuple[int, int, int, int] = (0, 0, 0, 0),
    ) -> Metrics:
        ordered = sorted(self.latencies)
        return Metrics(
            thing=thing,
            model=model,
            runtime=runtime,
            window_start=_iso(self.start),
            window_seconds=round(max(0.0, end - self.start), 3),
            processed=self.processed,
            failed=_top(self.failed, MAX_REASONS),
            latency=Latency(
                p50_ms=round(percentile(ordered, 0.50), 3),
                p95_ms=round(percentile(ordered, 0.95), 3),
                max_ms=round(self.max_latency, 3),
            ),
            confidence=tuple(Count(name, self.confidence[name]) for name in confidence_buckets()),
            classes=_top(self.classes, MAX_CLASSES),
            backlog_files=backlog[0],
            backlog_oldest_seconds=round(backlog[1], 3),
            disk_free_bytes=disk_free,
            dropped_windows=dropped,
            captured=capture[0],
            capture_dropped=capture[1],
            capture_uploaded=capture[2],
            capture_waiting=capture[3],
        )


def _top(counts: Counter[str], limit: int) -> Tuple[Count, ...]:
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    shown = [Count(name, n) for name, n in ranked[:limit]]
    rest = sum(n for _, n in ranked[limit:])
    return tuple(shown + ([Count(OTHER, rest)] if rest else []))


def backlog_of(folder: Path, now: float) -> Tuple[int, float]:
    """(files waiting in ``folder``, age in seconds of the oldest); (0, 0) if none or
    unreadable. Hidden files (a writer's temporary files) do not count."""
    count, oldest = 0, now
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                with contextlib.suppress(OSError):
                    if entry.is_file(follow_symlinks=False):
                        count += 1
                        oldest = min(oldest, entry.stat(follow_symlinks=False).st_mtime)
    except OSError:
        return 0, 0.0
    return count, (max(0.0, now - oldest) if count else 0.0)


def disk_free_of(folder: Path) -> int:
    try:
        return int(shutil.disk_usage(folder).free)
    except OSError:
        return 0


class MetricsReporter:
    """Counts results and failures into windows of ``interval`` seconds, writes each finished
    window to ``outbox`` (at most ``keep`` waiting, oldest dropped first) and, with a
    ``publisher``, publishes them on a background thread. ``interval`` 0: off."""

    def __init__(
        self,
        outbox: Outbox,
        publisher: Optional[Publisher],
        *,
        interval: float,
        keep: int,
        thing: str,
        input_dir: Path,
        clock: Callable[[], float] = time.time,
        backoff: Tuple[float, float] = (1.0, 60.0),
    ) -> None:
        self.outbox = outbox
        self.interval = interval
        self.keep = keep
        self.thing = thing
        self.input_dir = input_dir
        self._clock = clock
        self._lock = threading.Lock()
        self._window = Window(clock())
        self._dropped = 0
        self._sequence = 0
        self.publisher = publisher
        #: (captured, dropped, uploaded, waiting) since the last window; set by the service.
        self.capture_counts: Optional[Callable[[], Tuple[int, int, int, int]]] = None
        self._drainer = (
            Drainer(outbox, publisher, min_backoff=backoff[0], max_backoff=backoff[1])
            if publisher is not None
            else None
        )

    @property
    def enabled(self) -> bool:
        return self.interval > 0

    def start(self) -> None:
        if not self.enabled:
            return
        self.outbox.open()
        if self._drainer is not None:
            self._drainer.start()

    def configure(self, config: Config) -> None:
        """A new configuration: the current window goes on under the new settings (its
        topic, interval, bound and input folder)."""
        apply = getattr(self.publisher, "apply_config", None)
        if apply is not None:
            apply(config)
        with self._lock:
            was_enabled = self.enabled
            self.interval = config.metrics_interval
            self.keep = config.metrics_keep_windows
            self.input_dir = config.input_dir
        if self.enabled and not was_enabled:
            self._window = Window(self._clock())
            self.start()

    def result(self, latency_ms: float, score: float, label: str) -> None:
        with self._lock:
            self._window.result(latency_ms, score, label)

    def failure(self, error: str) -> None:
        with self._lock:
            self._window.failure(error)

    def tick(self, *, model: str, runtime: str) -> Optional[Metrics]:
        """Close the window if its time is up; the message written, or None."""
        if not self.enabled:
            return None
        now = self._clock()
        with self._lock:
            if now - self._window.start < self.interval and now >= self._window.start:
                return None  # (a clock set back restarts the window rather than waiting)
        return self.close_window(model=model, runtime=runtime, now=now)

    def close_window(
        self, *, model: str, runtime: str, now: Optional[float] = None, only_if_used: bool = False
    ) -> Optional[Metrics]:
        """Write the current window and start the next; with ``only_if_used``, only a window
        that saw an input. Disk trouble is logged and the window dropped (metrics never stop
        inference)."""
        if not self.enabled:
            return None
        now = self._clock() if now is None else now
        with self._lock:
            window, self._window = self._window, Window(now, seed=self._sequence + 1)
            if only_if_used and window.empty:
                return None
            try:
                self._make_room()  # first: the window says how many it pushed out
            except OSError as err:
                LOG.warning("cannot list the metrics queue (%s)", err)
            message = window.message(
                end=now,
                thing=self.thing,
                model=model,
                runtime=runtime,
                backlog=backlog_of(self.input_dir, now),
                disk_free=disk_free_of(self.input_dir),
                dropped=self._dropped,
                capture=self._capture_counts(),
            )
            record_id = f"{int(window.start * 1000):015d}-{self._sequence:06d}"
            self._sequence += 1
            try:
                self.outbox.write_pending(
                    record_id, {"id": record_id, "message": message.to_dict()}
                )
                self.outbox.release(record_id)
            except OSError as err:
                self._dropped += 1
                LOG.warning("metrics window of %s not kept (%s)", message.window_start, err)
                return None
            self._dropped = 0
        return message

    def _capture_counts(self) -> Tuple[int, int, int, int]:
        if self.capture_counts is None:
            return (0, 0, 0, 0)
        try:
            return self.capture_counts()
        except OSError:
            return (0, 0, 0, 0)

    def _make_room(self) -> None:
        waiting = self.outbox.released_ids()
        excess = len(waiting) - (self.keep - 1)
        for record_id in waiting[: max(0, excess)]:
            self.outbox.remove(record_id)
            self._dropped += 1
        if excess > 0:
            LOG.warning(
                "%d unpublished metrics window(s) dropped (MetricsKeepWindows=%d)",
                excess,
                self.keep,
            )

    def stop(self, *, model: str, runtime: str, flush: bool) -> None:
        """Stop publishing, then write the window in progress (if it saw anything); with
        ``flush``, try once to publish every waiting window (else the next start does)."""
        if not self.enabled:
            return
        if self._drainer is not None:
            self._drainer.stop(flush=False, timeout=1.0)
        self.close_window(model=model, runtime=runtime, only_if_used=True)
        if flush and self._drainer is not None:
            self._drainer.drain_once(stoppable=False)
