"""The device's metrics windows (issue 15): what a window counts, that it is bounded while the
device is offline, that each window is published once, and that the component sends them on
its metrics topic.

Why windows go over MQTT through the component's own on-disk queue, not through
``aws.greengrass.Cloudwatch``: that component keeps unsent metrics in memory only
(aws-greengrass/aws-greengrass-cloudwatch-metrics ``src/metric/publisher.py``: a
``queue.PriorityQueue``; ``src/metric/manager.py``: when ``MaxMetricsToRetain`` is exceeded
the oldest of a namespace is replaced), so they are lost on a restart while offline.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Dict, List

import jsonschema
import numpy as np
import pytest
from edge_inference.metrics import (
    LATENCY_SAMPLE,
    MAX_CLASSES,
    MetricsReporter,
    Window,
    failure_reason,
    percentile,
)
from edge_inference.model import load_model
from edge_inference.outbox import Outbox
from edge_inference.service import InferenceService
from edge_inference.spool import Spool

from device_contract import messages, settings, topics
from tests.component.harness import (
    Folders,
    RecordingPublisher,
    TinyPackage,
    make_config,
    random_tensor,
    run_cli,
    wait_for,
)
from tests.component.test_ipc import FakeIpcClient, recipe_defaults, start_ipc_service


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def reporter(
    folder: Path, *, publisher: Any = None, keep: int = 1440, clock: Any = None
) -> MetricsReporter:
    folder.mkdir(parents=True, exist_ok=True)
    return MetricsReporter(
        Outbox(folder / "metrics"),
        publisher,
        interval=60.0,
        keep=keep,
        thing="core-1",
        input_dir=folder,
        clock=clock or Clock(),
        backoff=(0.01, 0.02),
    )


def waiting(folder: Path) -> List[Dict[str, Any]]:
    return [
        json.loads(p.read_text())["message"] for p in sorted((folder / "metrics").glob("*.json"))
    ]


def test_a_window_counts_results_failures_confidence_and_classes() -> None:
    window = Window(0.0)
    for latency, score, label in [(10, 0.95, "cat"), (20, 0.6, "dog"), (30, 0.3, "cat")]:
        window.result(latency, score, label)
    window.failure("cannot decode image: truncated")
    window.failure("cannot decode image: bad header")
    window.failure("inference failed: RuntimeError: x")
    m = window.message(
        end=60.0, thing="t", model="m", runtime="onnx", backlog=(4, 12.5), disk_free=7,
        dropped=2,
    )  # fmt: skip
    assert m.processed == 3
    assert {c.name: c.count for c in m.failed} == {"cannot decode image": 2, "inference failed": 1}
    assert [(c.name, c.count) for c in m.confidence] == [
        ("0-0.5", 1), ("0.5-0.7", 1), ("0.7-0.9", 0), ("0.9-1", 1),
    ]  # fmt: skip
    assert [(c.name, c.count) for c in m.classes] == [("cat", 2), ("dog", 1)]
    assert (m.latency.p50_ms, m.latency.p95_ms, m.latency.max_ms) == (20, 30, 30)
    assert (m.backlog_files, m.backlog_oldest_seconds, m.disk_free_bytes) == (4, 12.5, 7)
    assert m.dropped_windows == 2 and m.window_seconds == 60.0


def test_the_message_is_the_contracts_schema_and_round_trips() -> None:
    window = Window(1_800_000_000.0)
    window.result(5.0, 0.99, "cat")
    m = window.message(
        end=1_800_000_060.0, thing="t", model="m", runtime="dlr", backlog=(0, 0.0), disk_free=1,
        dropped=0,
    )  # fmt: skip
    raw = json.loads(m.to_json())
    jsonschema.validate(raw, messages.metrics_schema())
    assert messages.Metrics.from_dict(raw) == m
    assert raw["window_start"] == "2027-01-15T08:00:00.000Z"
    raw["latency"]["p95_ms"] = -1
    with pytest.raises(messages.MessageError, match=r"Metrics.latency.p95_ms must be at least 0"):
        messages.Metrics.from_dict(raw)


def test_percentiles_are_nearest_rank() -> None:
    values = sorted(float(v) for v in range(1, 101))
    assert (percentile(values, 0.5), percentile(values, 0.95)) == (50.0, 95.0)
    assert percentile([7.0], 0.95) == 7.0 and percentile([], 0.5) == 0.0


def test_failure_reasons_group_rather_than_one_per_input() -> None:
    assert failure_reason("input was in progress in 3 runs that crashed; not retried") == (
        "input was in progress in N runs that crashed; not retried"
    )
    assert failure_reason("model output holds NaN or Inf values") == (
        "model output holds NaN or Inf values"
    )
    assert len(failure_reason("x" * 500)) == 64


def test_a_busy_window_stays_small() -> None:
    """Memory per window is bounded whatever the traffic: a latency sample, the top classes."""
    window = Window(0.0)
    for i in range(LATENCY_SAMPLE * 3):
        window.result(float(i % 100), 0.8, f"class-{i % (MAX_CLASSES + 5)}")
    assert len(window.latencies) == LATENCY_SAMPLE
    m = window.message(end=1.0, thing="t", model="m", runtime="dlr", backlog=(0, 0.0),
                       disk_free=0, dropped=0)  # fmt: skip
    assert len(m.classes) == MAX_CLASSES + 1 and m.classes[-1].name == "other"
    assert sum(c.count for c in m.classes) == LATENCY_SAMPLE * 3
    assert m.latency.max_ms == 99.0


def test_offline_windows_are_bounded_the_oldest_dropped_and_counted(tmp_path: Path) -> None:
    clock = Clock()
    metrics = reporter(tmp_path, keep=3, clock=clock)  # no publisher: nothing leaves the disk
    metrics.start()
    for minute in range(5):
        metrics.result(10.0, 0.9, f"label-{minute}")
        clock.now += 60
        assert metrics.tick(model="m", runtime="dlr") is not None
    kept = waiting(tmp_path)
    assert [m["classes"][0]["name"] for m in kept] == ["label-2", "label-3", "label-4"]
    # Windows 0 and 1 were dropped to make room for windows 3 and 4, which say so.
    assert [m["dropped_windows"] for m in kept] == [0, 1, 1]


def test_a_window_is_written_only_when_its_time_is_up(tmp_path: Path) -> None:
    clock = Clock()
    metrics = reporter(tmp_path, clock=clock)
    metrics.start()
    metrics.result(10.0, 0.9, "cat")
    clock.now += 59
    assert metrics.tick(model="m", runtime="dlr") is None
    clock.now -= 3600  # the clock set back an hour (NTP after a cold boot): a new window
    closed = metrics.tick(model="m", runtime="dlr")
    assert closed is not None and closed.processed == 1 and closed.window_seconds == 0


def test_windows_survive_failed_publishes_and_a_restart_and_go_out_once(tmp_path: Path) -> None:
    clock = Clock()
    offline = reporter(tmp_path, clock=clock)  # first run: no network at all
    offline.start()
    for _ in range(3):
        offline.result(10.0, 0.9, "cat")
        clock.now += 60
        offline.tick(model="m", runtime="dlr")
    offline.result(10.0, 0.9, "dog")
    offline.stop(model="m", runtime="dlr", flush=False)  # SIGTERM: the partial window is kept
    assert len(waiting(tmp_path)) == 4

    publisher = RecordingPublisher(fail_first=2)  # the link comes back, flakily
    online = reporter(tmp_path, publisher=publisher, clock=clock)
    online.start()
    assert wait_for(lambda: len(publisher.messages) == 4)
    online.stop(model="m", runtime="dlr", flush=True)
    starts = [m["window_start"] for m in publisher.messages]
    assert starts == sorted(starts) and len(set(starts)) == 4
    assert [m["classes"][0]["name"] for m in publisher.messages] == ["cat"] * 3 + ["dog"]
    assert waiting(tmp_path) == []


def test_a_full_disk_drops_the_window_not_the_inference(tmp_path: Path, monkeypatch) -> None:
    metrics = reporter(tmp_path)
    metrics.start()
    metrics.result(10.0, 0.9, "cat")

    def full(*_args: Any, **_kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(metrics.outbox, "write_pending", full)
    assert metrics.close_window(model="m", runtime="dlr") is None
    monkeypatch.undo()
    metrics.result(10.0, 0.9, "cat")
    written = metrics.close_window(model="m", runtime="dlr")
    assert written is not None and written.dropped_windows == 1


def test_the_service_counts_what_it_did_into_the_window(
    folders: Folders, tiny_package: TinyPackage
) -> None:
    for seed in range(3):
        np.save(folders.input / f"in-{seed}.npy", random_tensor(seed))
    (folders.input / "broken.jpg").write_bytes(b"not a jpeg")
    config = make_config(folders, tiny_package.model_dir)
    metrics = MetricsReporter(
        Outbox(folders.state / "metrics"), None, interval=60.0, keep=10, thing="core-1",
        input_dir=folders.input,
    )  # fmt: skip
    publisher = RecordingPublisher()
    service = InferenceService(
        config=config, model=load_model(tiny_package.model_dir, "dlr"),
        spool=Spool(folders.state), publisher=publisher, stop=threading.Event(),
        metrics=metrics,
    )  # fmt: skip
    service.run(once=True)
    (window,) = waiting(folders.state.parent / "state")
    labels = [m["top"][0]["label"] for m in publisher.messages if "top" in m]
    assert window["processed"] == 3 == len(labels)
    assert sum(c["count"] for c in window["failed"]) == 1
    assert {c["name"]: c["count"] for c in window["classes"]} == {
        label: labels.count(label) for label in labels
    }
    assert window["model"] == "tiny-neo-1" and window["thing"] == "core-1"
    assert window["disk_free_bytes"] > 0 and window["backlog_files"] == 0


def test_metrics_off_writes_nothing(folders: Folders, tiny_package: TinyPackage) -> None:
    np.save(folders.input / "a.npy", random_tensor(1))
    result = run_cli(
        ["--model-dir", str(tiny_package.model_dir), "--input-dir", "input", "--once",
         "--metrics-interval", "0", "--settle-seconds", "0"],
        cwd=folders.root,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert not (folders.state / "metrics").exists()


def test_local_mode_keeps_the_window_in_the_state_folder(
    folders: Folders, tiny_package: TinyPackage
) -> None:
    np.save(folders.input / "a.npy", random_tensor(1))
    result = run_cli(
        ["--model-dir", str(tiny_package.model_dir), "--input-dir", "input", "--once",
         "--settle-seconds", "0"],
        cwd=folders.root,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert all("processed" not in line for line in result.stdout.splitlines())  # results only
    (window,) = waiting(folders.state)
    assert window["processed"] == 1 and window["thing"] == "local"


def test_ipc_mode_publishes_windows_on_the_metrics_topic(
    folders: Folders, dual_package: TinyPackage, monkeypatch
) -> None:
    monkeypatch.setenv("AWS_IOT_THING_NAME", "core-device-7")
    config = {**recipe_defaults(dual_package), "MetricsIntervalSeconds": 0.5}
    client = FakeIpcClient(config)
    _service, stop, worker = start_ipc_service(folders, dual_package, client)
    try:
        (folders.input).mkdir(parents=True, exist_ok=True)
        np.save(folders.input / "a.npy", random_tensor(1))
        assert wait_for(
            lambda: any(p["topic"].endswith("/metrics") for p in client.published), timeout=20
        )
    finally:
        stop.set()
        worker.join(10)
    metrics = [p for p in client.published if p["topic"].endswith("/metrics")]
    assert metrics[0]["topic"] == "edge-ai/core-device-7/metrics"
    assert sum(p["message"]["processed"] for p in metrics) == 1
    assert metrics[0]["message"]["thing"] == "core-device-7"


def test_the_settings_table_and_the_topic_layout_agree() -> None:
    assert settings.setting("MetricsTopic").default == topics.metrics_topic("edge-ai")
    assert topics.metrics_topic("acme/cams") == "acme/cams/{iot:thingName}/metrics"
    assert topics.metrics_subscription_filter("acme") == "acme/+/metrics"


def test_a_long_backlog_still_gives_one_window_per_interval(
    folders: Folders, tiny_package: TinyPackage
) -> None:
    """Windows close between inputs, not only between scans: one scan can take hours of
    backlog, and a window of hours would hide when the failures happened."""
    for seed in range(5):
        np.save(folders.input / f"in-{seed}.npy", random_tensor(seed))

    class Advancing:
        now = 1_800_000_000.0

        def __call__(self) -> float:
            self.now += 61.0  # every reading is past the window's end
            return self.now

    metrics = MetricsReporter(
        Outbox(folders.state / "metrics"), None, interval=60.0, keep=100, thing="core-1",
        input_dir=folders.input, clock=Advancing(),
    )  # fmt: skip
    service = InferenceService(
        config=make_config(folders, tiny_package.model_dir),
        model=load_model(tiny_package.model_dir, "dlr"), spool=Spool(folders.state),
        publisher=RecordingPublisher(), stop=threading.Event(), metrics=metrics,
    )  # fmt: skip
    service.run(once=True)
    windows = waiting(folders.state)
    assert sum(w["processed"] for w in windows) == 5
    assert len([w for w in windows if w["processed"]]) == 5  # one input per window here
