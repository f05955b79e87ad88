"""The processing loop: watch the input folder, run each file once, hand results to the outbox.

While the runtime runs one input, a single worker thread decodes the next one (the runtimes and
PIL release the GIL), so preprocessing mostly hides behind inference. At most one input is
prefetched. The loop checks its stop event between files: on SIGTERM it finishes the file in
hand, returns the prefetched one to the input folder, and returns.

Batching a backlog (``BatchSize`` N > 1, a model whose batch axis is dynamic): when at least N
inputs are waiting, N of them are decoded and run as one batch, and the next N are decoded
during that run. Fewer waiting inputs run one by one, so a trickle keeps batch-1 latency. A
batch changes only how the model is called: each input is still claimed, recorded and moved on
its own (a kill mid-batch leaves recorded results recorded and re-runs the others), an input
that fails to decode fails alone, and a batch the runtime refuses is run again input by input,
so per-file failures stay per file. An input that was in progress when the process died runs
alone on the next start, so one input that crashes the runtime cannot take its batch with it.
"""

from __future__ import annotations

import collections
import concurrent.futures
import datetime
import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable, Deque, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np

from device_contract.messages import Failure, Prediction, Score
from edge_inference.capture import Capturer
from edge_inference.config import Config, ConfigStore
from edge_inference.durable import display_name
from edge_inference.inputs import BadInput, InputDecoder
from edge_inference.metrics import MetricsReporter
from edge_inference.model import LoadedModel, ModelError, load_model
from edge_inference.outbox import Drainer, Publisher
from edge_inference.retention import Retention, RetentionPolicy
from edge_inference.spool import (
    MAX_ATTEMPTS,
    ActiveRecord,
    Candidate,
    Claim,
    ClaimError,
    SettleTracker,
    Spool,
)

LOG = logging.getLogger(__name__)

Decoded = Tuple[Union[np.ndarray, str], float]  # (tensor or failure reason, decode ms)
Pending = Tuple[Claim, "concurrent.futures.Future[Decoded]"]


def _utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def decode(decoder: InputDecoder, claim: Claim, active: Optional[ActiveRecord] = None) -> Decoded:
    """Load one input; a bad input gives its reason instead of a tensor. While it runs, the
    claim is in ``active``: if the process dies here, this input is the one that counts it."""
    start = time.perf_counter()
    if active is not None:
        active.add(claim.id)
    try:
        result: Union[np.ndarray, str] = decoder.load(claim.path)
    except BadInput as err:
        result = str(err)
    except Exception as err:  # a decoder bug or odd data must fail this input, not the loop
        LOG.exception("unexpected error reading %s", claim.display)
        result = f"cannot read input: {type(err).__name__}: {err}"
    if active is not None:  # not in a finally: a crash must leave the mark
        active.discard(claim.id)
    if isinstance(result, str):  # name the input as the user knows it, not the claim path
        result = display_name(result.replace(str(claim.path), claim.name))
    return result, (time.perf_counter() - start) * 1000.0


Job = Tuple[Claim, Dict[str, object], bool, Path]  # claim, message, failed, folder


class _Finisher:
    """Runs :meth:`Spool.complete` (fsync'd result, then the move) in order on a background
    thread, so its I/O waits overlap the next inference. At most :attr:`limit` are outstanding
    (two, or a whole batch and one more, so that recording a batch overlaps the next one). A job
    that fails with ``OSError`` (disk full, a folder that cannot be written) goes to
    :attr:`failed` with its error, for the service to retry; its input stays in progress."""

    def __init__(self, spool: Spool, *, threaded: bool) -> None:
        self._spool = spool
        self._executor = (
            concurrent.futures.ThreadPoolExecutor(1, "edge-finish") if threaded else None
        )
        self._pending: Deque[Tuple[Job, concurrent.futures.Future[Path]]] = collections.deque()
        self.failed: List[Tuple[Job, OSError]] = []
        self.limit = 2

    def submit(
        self, claim: Claim, message: Dict[str, object], *, failed: bool, folder: Path
    ) -> None:
        job: Job = (claim, message, failed, folder)
        self._collect()
        while len(self._pending) >= self.limit:
            self._settle(*self._pending.popleft())
        if self._executor is None:
            try:
                self._complete(claim, message, failed, folder)
            except OSError as err:
                self.failed.append((job, err))
            return
        future = self._executor.submit(self._complete, claim, message, failed, folder)
        self._pending.append((job, future))

    def _complete(
        self, claim: Claim, message: Dict[str, object], failed: bool, folder: Path
    ) -> Path:
        return self._spool.complete(claim, message, failed=failed, folder=folder)

    def _settle(self, job: Job, future: concurrent.futures.Future[Path]) -> None:
        try:
            future.result()
        except OSError as err:
            self.failed.append((job, err))

    @property
    def outstanding(self) -> int:
        self._collect()
        return len(self._pending)

    def _collect(self) -> None:
        while self._pending and self._pending[0][1].done():
            self._settle(*self._pending.popleft())

    def wait(self) -> None:
        while self._pending:
            self._settle(*self._pending.popleft())

    def close(self) -> None:
        try:
            self.wait()
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=True)


class InferenceService:
    """Runs inputs through the model, exactly once each. Owns the drainer thread."""

    def __init__(
        self,
        *,
        config: Config,
        model: LoadedModel,
        spool: Spool,
        publisher: Publisher,
        stop: threading.Event,
        store: Optional[ConfigStore] = None,
        model_loader: Optional[Callable[[Path, str, int], LoadedModel]] = None,
        prefetch: bool = True,
        retry_backoff: Tuple[float, float] = (1.0, 60.0),
        metrics: Optional[MetricsReporter] = None,
        capture: Optional[Capturer] = None,
    ) -> None:
        self.config = config
        self.model = model
        self.spool = spool
        self.publisher = publisher
        self.stop = stop
        self.store = store
        self.prefetch = prefetch
        self._load_model = model_loader or _load_uncached
        self._decoder = InputDecoder(model.info, config.max_image_pixels)
        self._tracker = SettleTracker()
        self._drainer = Drainer(
            spool.outbox, publisher, min_backoff=retry_backoff[0], max_backoff=retry_backoff[1]
        )
        self._executor: Optional[concurrent.futures.ThreadPoolExecutor] = None
        self.capture = capture
        self._finisher = _Finisher(spool, threaded=prefetch)
        if capture is not None:
            spool.on_finished = self._captured
        self._outbox_full = False
        self._backoff = retry_backoff
        self._unfinished: List[Job] = []  # results that could not be recorded yet
        self._retry_delay = 0.0
        self._retry_at = 0.0
        self._claim_error: Optional[str] = None
        self._batch_refused = False  # the "model takes no batch" warning was given
        self._batch_broken = False  # the model refused a batch: no more batches for it
        self._batch_checked = False  # the model's first batch matched its inputs run alone
        self.retention = Retention()
        self.counts: Dict[str, int] = {"processed": 0, "failed": 0}
        self.metrics = metrics
        if metrics is not None and capture is not None:
            metrics.capture_counts = capture.counts

    def _captured(self, record: Dict[str, Any], dest: Path) -> None:
        """Offer a finished result to capture (:attr:`Spool.on_finished`: before its release,
        and again for a record that recovery finishes)."""
        assert self.capture is not None
        self.capture.offer(dest, str(record["id"]), dict(record["message"]), bool(record["failed"]))

    # -- lifecycle -------------------------------------------------------------------------

    def run(self, *, once: bool = False) -> None:
        """Process inputs until stopped; with ``once``, until the input folder is empty."""
        self.spool.lock()  # before anything touches the folders
        try:
            self._run(once)
        finally:
            self.spool.close()

    def _run(self, once: bool) -> None:
        self._make_folders(self.config)
        self.spool.open()
        backlog: Deque[Claim] = collections.deque(self.spool.recover())
        self._drainer.start()
        if self.metrics is not None:
            self.metrics.start()
        if self.capture is not None:
            self.capture.start()
        if self.prefetch:
            self._executor = concurrent.futures.ThreadPoolExecutor(1, "edge-prefetch")
        try:
            while not self.stop.is_set():
                self._apply_new_config()
                self._sweep()
                taken, waiting = self._process_available(backlog)
                self._tick_metrics()
                degraded = bool(self._unfinished)
                pending = self.store is not None and self.store.has_pending()
                busy = taken or waiting or backlog or self._outbox_full or degraded or pending
                if once and not busy:
                    break
                if once and self._outbox_full and self._drainer.failing:
                    LOG.warning("outbox full and publishing fails; leaving the rest for later")
                    break
                pause = min(self.config.poll_interval, 0.1) if once else self.config.poll_interval
                if degraded:
                    pause = min(pause, max(0.0, self._retry_at - time.monotonic()))
                self.stop.wait(pause)
        finally:
            self._finisher.close()
            if self._executor is not None:
                self._executor.shutdown(wait=True)
            self._drainer.stop(flush=once, timeout=5.0 if once else 1.0)
            if self.capture is not None:
                self.capture.stop(flush=once)
            if self.metrics is not None:
                self.metrics.stop(model=self.model.info.model_id, runtime=self.model.runtime,
                                  flush=once)  # fmt: skip
        LOG.info(
            "stopped: %d processed, %d failed, %d result(s) waiting in the outbox",
            self.counts["processed"],
            self.counts["failed"],
            self.spool.outbox.count,
        )

    # -- one pass over the input folder --------------------------------------------------------

    def _process_available(self, backlog: Deque[Claim]) -> Tuple[int, int]:
        """Process the backlog and every settled input. Returns (inputs taken, inputs still
        settling)."""
        if self._unfinished and not self._retry_unfinished():
            return 0, 0  # degraded: take nothing new until results can be recorded again
        candidates, waiting = self._tracker.scan(self.config.input_dir, self.config.settle_seconds)
        claims = self._claims(backlog, iter(candidates))
        in_flight: Deque[Pending] = collections.deque()
        taken = 0
        while not self._interrupted() and not self._finisher.failed:
            if not in_flight:
                self._feed(claims, in_flight, owed=self._finisher.outstanding)
            if not in_flight:
                break
            size = self._batch_size()
            self._finisher.limit = max(2, size + 1)
            if size > 1 and self._fill(claims, in_flight, size):
                group = [in_flight.popleft() for _ in range(size)]
                if self.prefetch:  # decode the next batch during this one
                    for _ in range(size):
                        owed = size + len(in_flight) + self._finisher.outstanding
                        if not self._feed(claims, in_flight, owed=owed):
                            break
                self._handle_batch([(claim, future.result()) for claim, future in group])
                taken += size
                self._tick_metrics()
                continue
            claim, future = in_flight.popleft()
            if self.prefetch:  # decode the next input during this inference
                owed = 1 + len(in_flight) + self._finisher.outstanding
                self._feed(claims, in_flight, owed=owed)
            self._handle(claim, future.result())
            taken += 1
            self._tick_metrics()  # a long backlog still gives one window per interval
        self._finisher.wait()
        self._hold_failures()
        for claim, future in in_flight:  # stopped or reconfigured with an input prefetched
            future.cancel()
            if self.stop.is_set():
                self.spool.unclaim(claim, self.config.input_dir)
            else:
                backlog.appendleft(claim)
        return taken, waiting

    def _tick_metrics(self) -> None:
        if self.metrics is not None:
            self.metrics.tick(model=self.model.info.model_id, runtime=self.model.runtime)

    def _sweep(self) -> None:
        config = self.config
        policy = RetentionPolicy(
            processed_days=config.processed_retention_days,
            failed_days=config.failed_retention_days,
            processed_mb=config.processed_max_mb,
            failed_mb=config.failed_max_mb,
        )
        self.retention.maybe_sweep(config.processed_dir, config.failed_dir, policy)

    # -- degraded: results that cannot be written ------------------------------------------------

    def _hold_failures(self) -> None:
        """Keep the jobs whose result could not be recorded; their inputs stay in progress."""
        if not self._finisher.failed:
            return
        first = not self._unfinished
        errors = [err for _, err in self._finisher.failed]
        self._unfinished.extend(job for job, _ in self._finisher.failed)
        self._finisher.failed.clear()
        self._schedule_retry()
        if first:
            LOG.error(
                "cannot record results (%s); not taking new inputs, retrying with backoff "
                "(nothing is lost: %d input(s) wait in progress)",
                errors[0],
                len(self._unfinished),
            )

    def _schedule_retry(self) -> None:
        low, high = self._backoff
        self._retry_delay = min(high, max(low, self._retry_delay * 2))
        self._retry_at = time.monotonic() + self._retry_delay

    def _retry_unfinished(self) -> bool:
        """Try to record the held results again; True once all are done."""
        if time.monotonic() < self._retry_at:
            return False
        while self._unfinished:
            claim, message, failed, folder = self._unfinished[0]
            try:
                self.spool.complete(claim, message, failed=failed, folder=folder)
            except OSError as err:
                self._schedule_retry()
                LOG.debug("still cannot record results (%s); next try in %.1f s", err,
                          self._retry_delay)  # fmt: skip
                return False
            self._unfinished.pop(0)
        self._retry_delay = 0.0
        LOG.info("results can be recorded again; carrying on with new inputs")
        return True

    def _interrupted(self) -> bool:
        return self.stop.is_set() or (self.store is not None and self.store.has_pending())

    def _claims(self, backlog: Deque[Claim], candidates: Iterator[Candidate]) -> Iterator[Claim]:
        """Recovered and left-over claims first, then newly claimed settled inputs."""
        while backlog:
            claim = backlog.popleft()
            if claim.attempts > MAX_ATTEMPTS:
                runs = claim.attempts - 1
                self._fail(claim, f"input was in progress in {runs} runs that crashed; not retried")
                continue
            yield claim
        for candidate in candidates:
            try:
                taken = self.spool.claim(candidate)
            except ClaimError as err:
                self._refuse(candidate, str(err))
                continue
            except OSError as err:  # the state folder cannot be written: try again later
                if self._claim_error is None:
                    LOG.error("cannot claim inputs (%s); trying again next scan", err)
                self._claim_error = str(err)
                return
            if self._claim_error is not None:
                LOG.info("claiming inputs works again")
                self._claim_error = None
            if taken is not None:
                yield taken

    def _refuse(self, candidate: Candidate, reason: str) -> None:
        """An input that cannot be moved: report it once, leave it where it is."""
        name = display_name(candidate.path.name)
        message = Failure(
            input=name,
            error=display_name(reason.replace(str(candidate.path), candidate.path.name)),
            model=self.model.info.model_id,
            runtime=self.model.runtime,
            timestamp=_utc_now(),
        ).to_dict()
        record_id = self.spool.new_id()
        self._tracker.refuse(candidate)
        try:
            self.spool.outbox.write_pending(record_id, {"id": record_id, "message": message})
        except OSError as err:  # disk full: report it on a later scan
            LOG.error("cannot record the failure of %s (%s); trying again later", name, err)
            self._tracker.forgive(candidate)
            return
        self.spool.outbox.release(record_id)
        self.counts["failed"] += 1
        if self.metrics is not None:
            self.metrics.failure(reason)
        LOG.warning("%s failed and stays in the input folder: %s", name, message["error"])

    def _batch_size(self) -> int:
        """Inputs per run: ``BatchSize``, capped by what the model takes (a fixed batch axis
        of 1, a Neo model: one by one)."""
        size = self.config.batch_size
        limit = 1 if self._batch_broken else getattr(self.model.runner, "max_batch", 1)
        if limit is not None:
            size = min(size, limit)
        if size < self.config.batch_size and not self._batch_refused and not self._batch_broken:
            self._batch_refused = True
            LOG.warning(
                "BatchSize %d: model %s takes one input per run (its batch axis is fixed); "
                "running inputs one by one",
                self.config.batch_size,
                self.model.info.model_id,
            )
        return max(1, size)

    def _fill(self, claims: Iterator[Claim], in_flight: Deque[Pending], size: int) -> bool:
        """Claim inputs until ``size`` are in flight; True when a batch of ``size`` is ready
        (at least that many inputs were waiting) and none of them was in progress when the
        process died (those run alone)."""
        while len(in_flight) < size:
            owed = len(in_flight) + self._finisher.outstanding
            if not self._feed(claims, in_flight, owed=owed):
                return False
        return all(claim.attempts == 1 for claim, _ in list(in_flight)[:size])

    def _feed(self, claims: Iterator[Claim], in_flight: Deque[Pending], *, owed: int) -> bool:
        """Claim the next input and start decoding it (on the prefetch thread if enabled).
        ``owed``: results already on their way to the outbox. False when nothing was taken."""
        if self.stop.is_set() or self._outbox_is_full(owed):
            return False
        claim = next(claims, None)
        if claim is None:
            return False
        future: concurrent.futures.Future[Decoded]
        if self._executor is not None:
            future = self._executor.submit(decode, self._decoder, claim, self.spool.active)
        else:
            future = concurrent.futures.Future()
            future.set_result(decode(self._decoder, claim, self.spool.active))
        in_flight.append((claim, future))
        return True

    def _outbox_is_full(self, owed: int = 0) -> bool:
        count, limit = self.spool.outbox.count + owed, self.config.max_outbox_files
        full = count >= limit
        if full and not self._outbox_full:
            LOG.warning(
                "outbox full: %d unpublished results (MaxOutboxFiles=%d); new inputs wait in "
                "the input folder until results are published",
                count,
                limit,
            )
        elif self._outbox_full and not full:
            LOG.info("outbox has room again (%d results); taking new inputs", count)
        self._outbox_full = full
        return full

    # -- one input -------------------------------------------------------------------------------

    def _handle(self, claim: Claim, decoded: Decoded) -> None:
        tensor, decode_ms = decoded
        if isinstance(tensor, str):
            self._fail(claim, tensor)
            return
        start = time.perf_counter()
        self.spool.active.add(claim.id)
        try:
            output = self.model.runner.run(tensor)
        except Exception as err:  # runtime errors (DLRError, ORT Fail) fail this input only
            self.spool.active.discard(claim.id)
            LOG.exception("inference failed for %s", claim.display)
            self._fail(claim, f"inference failed: {type(err).__name__}: {err}")
            return
        self.spool.active.discard(claim.id)
        infer_ms = (time.perf_counter() - start) * 1000.0
        self._record(claim, output, decode_ms, infer_ms)

    def _handle_batch(self, group: List[Tuple[Claim, Decoded]]) -> None:
        """Run the decoded inputs of ``group`` as one batch; inputs that did not decode fail
        alone, and a batch the runtime refuses (or answers in an unexpected shape) is run again
        input by input, so that a failure names the input that caused it."""
        ready: List[Tuple[Claim, np.ndarray, float]] = []
        for claim, (tensor, decode_ms) in group:
            if isinstance(tensor, str):
                self._fail(claim, tensor)
            else:
                ready.append((claim, tensor, decode_ms))
        if len(ready) < 2:
            self._handle_each(ready)
            return
        ids = [claim.id for claim, _, _ in ready]
        start = time.perf_counter()
        self.spool.active.add(*ids)
        try:
            outputs = self.model.runner.run(np.concatenate([t for _, t, _ in ready], axis=0))
            if outputs.shape[0] != len(ready):
                raise ValueError(f"{outputs.shape[0]} outputs for {len(ready)} inputs")
        except Exception as err:
            self.spool.active.discard(*ids)
            # A model whose graph names a dynamic batch axis but cannot take a batch (a reshape
            # to a fixed 1, an output that mixes the inputs) would fail every batch: stop
            # batching it after the first refusal rather than doing the work twice for good.
            self._batch_broken = True
            LOG.warning(
                "a batch of %d inputs failed (%s: %s); running them one by one, and every "
                "later input of model %s too",
                len(ready),
                type(err).__name__,
                err,
                self.model.info.model_id,
            )
            self._handle_each(ready)
            return
        # each input waited for the whole batch: that is its inference time
        infer_ms = (time.perf_counter() - start) * 1000.0
        checked = outputs if self._batch_checked else self._check_batch(ready, outputs)
        self.spool.active.discard(*ids)
        if checked is None:  # an input failed alone: each goes its own way, failures its own
            self._handle_each(ready)
            return
        for (claim, _, decode_ms), output in zip(ready, checked):
            self._record(claim, output[np.newaxis], decode_ms, infer_ms)

    def _handle_each(self, ready: List[Tuple[Claim, np.ndarray, float]]) -> None:
        """Decoded inputs of a batch that is not run as one: each through :meth:`_handle`."""
        for claim, tensor, decode_ms in ready:
            self._handle(claim, (tensor, decode_ms))

    def _check_batch(
        self, ready: List[Tuple[Claim, np.ndarray, float]], outputs: np.ndarray
    ) -> Optional[np.ndarray]:
        """The first batch of a model is also run input by input: a graph whose rows depend on
        each other (dynamic quantization's scale over the whole tensor, a softmax or a mean over
        the batch axis) gives each input a result that depends on which files arrived with it.
        Such a model is not batched again, and this batch keeps the inputs' own results. None
        when an input fails alone (the caller then handles each input by itself)."""
        try:
            alone = np.concatenate([self.model.runner.run(t) for _, t, _ in ready], axis=0)
        except Exception as err:
            self._batch_broken = True
            LOG.warning(
                "model %s: an input of a batch fails alone (%s)", self.model.info.model_id, err
            )
            return None
        scale = max(1.0, float(np.abs(alone).max())) if alone.size else 1.0
        if alone.shape == outputs.shape and np.allclose(
            outputs, alone, rtol=1e-3, atol=1e-4 * scale, equal_nan=True
        ):
            self._batch_checked = True
            return outputs
        self._batch_broken = True
        LOG.warning(
            "model %s gives an input a different result in a batch than alone (its rows depend "
            "on each other: dynamic quantization, a softmax or mean over the batch axis); "
            "running inputs one by one",
            self.model.info.model_id,
        )
        return alone

    def _record(self, claim: Claim, output: np.ndarray, decode_ms: float, infer_ms: float) -> None:
        """One input's output, as a result (or a failure when it cannot be one)."""
        try:
            finite = bool(np.isfinite(output).all())
            top = self.model.top_k(output, self.config.top_k) if finite else []
        except Exception as err:  # an output top_k cannot rank fails this input only
            LOG.exception("inference failed for %s", claim.display)
            self._fail(claim, f"inference failed: {type(err).__name__}: {err}")
            return
        if not finite:  # NaN is not JSON; a result must never carry one
            self._fail(claim, "model output holds NaN or Inf values")
            return
        result = Prediction(
            input=claim.display,
            top=tuple(Score(**entry) for entry in top),
            latency_ms=round(decode_ms + infer_ms, 3),
            inference_ms=round(infer_ms, 3),
            model=self.model.info.model_id,
            runtime=self.model.runtime,
            timestamp=_utc_now(),
        )
        self._finisher.submit(
            claim, result.to_dict(), failed=False, folder=self.config.processed_dir
        )
        self.counts["processed"] += 1
        best = result.top[0]
        if self.metrics is not None:
            self.metrics.result(result.latency_ms, best.score, best.label)
        LOG.info(
            "%s: %s (%d) %.3f in %.1f ms",
            claim.display,
            best.label,
            best.index,
            best.score,
            result.latency_ms,
        )

    def _fail(self, claim: Claim, reason: str) -> None:
        message = Failure(
            input=claim.display,
            error=reason,
            model=self.model.info.model_id,
            runtime=self.model.runtime,
            timestamp=_utc_now(),
        ).to_dict()
        self._finisher.submit(claim, message, failed=True, folder=self.config.failed_dir)
        self.counts["failed"] += 1
        if self.metrics is not None:
            self.metrics.failure(reason)
        LOG.warning("%s failed: %s", claim.display, reason)

    # -- configuration -------------------------------------------------------------------------

    def _apply_new_config(self) -> None:
        if self.store is None:
            return
        new = self.store.take()
        if new is None or new == self.config:
            return
        old = self.config
        model = self.model
        if (new.model_dir, new.runtime, new.inference_threads) != (
            old.model_dir, old.runtime, old.inference_threads
        ):  # fmt: skip
            try:
                model = self._load_model(new.model_dir, new.runtime, new.inference_threads)
            except (ModelError, ImportError, OSError) as err:
                LOG.error("configuration not applied, keeping the current one: %s", err)
                return
        try:
            self._make_folders(new)
        except OSError as err:
            LOG.error("configuration not applied, keeping the current one: %s", err)
            return
        if model is not self.model:
            self._batch_refused = self._batch_broken = self._batch_checked = False
        self.model = model
        self._decoder = InputDecoder(model.info, new.max_image_pixels)
        apply = getattr(self.publisher, "apply_config", None)
        if apply is not None:
            apply(new)
        if self.metrics is not None:
            self.metrics.configure(new)
        if self.capture is not None:
            self.capture.configure(new)
        self.config = new
        LOG.info("configuration applied: %s", _describe_changes(old, new))

    @staticmethod
    def _make_folders(config: Config) -> None:
        for folder in (config.input_dir, config.processed_dir, config.failed_dir):
            folder.mkdir(parents=True, exist_ok=True)


def _load_uncached(model_dir: Path, runtime: str, threads: int) -> LoadedModel:
    return load_model(model_dir, runtime, threads=threads)


def _describe_changes(old: Config, new: Config) -> str:
    changes: List[str] = []
    for field in new.__dataclass_fields__:
        before, after = getattr(old, field), getattr(new, field)
        if before != after:
            changes.append(f"{field} {before} -> {after}")
    return ", ".join(changes) or "no change"
