"""Capture (issue 15): which inputs are kept, that keeping them is durable and bounded, that the
upload sends each capture once under a key fixed at capture time, and that none of it fails or
holds up an input.

Hostile cases: uploads that fail and are throttled, a disk that refuses the capture, the
capture folder deleted under the component, a clock set back between capture and upload, a
crash between the two files of a capture, 10,000 captures while offline.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np
import pytest
from edge_inference import capture as capture_mod
from edge_inference.capture import (
    MB,
    REASON_FAILED,
    REASON_LOW_CONFIDENCE,
    REASON_SAMPLE,
    Capturer,
    CaptureSender,
    CaptureStore,
    capture_keys,
    capture_reason,
    key_name,
)
from edge_inference.metrics import MetricsReporter
from edge_inference.model import load_model
from edge_inference.outbox import Outbox
from edge_inference.service import InferenceService
from edge_inference.spool import Spool

from tests.component.harness import (
    Folders,
    RecordingPublisher,
    TinyPackage,
    make_config,
    random_tensor,
)

PREFIX = "captures/dev/default/core-1/"
DAY = 86_400.0
T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z


class FakeS3:
    """An uploader that keeps every put; fails while ``failing`` is set."""

    def __init__(self, failing: int = 0, error: str = "503 SlowDown") -> None:
        self.failing = failing
        self.error = error
        self.objects: Dict[str, bytes] = {}
        self.puts: List[str] = []
        self.lock = threading.Lock()

    def put(self, key: str, body: bytes, content_type: str) -> None:
        with self.lock:
            if self.failing:
                self.failing -= 1
                raise RuntimeError(f"PutObject {key}: {self.error}")
            self.puts.append(key)
            self.objects[key] = body


def service_with_capture(
    folders: Folders,
    package: TinyPackage,
    s3: FakeS3,
    *,
    metrics: Any = None,
    clock: Any = None,
    **changes: Any,
) -> Tuple[InferenceService, Capturer]:
    settings = {"capture_bucket": "bkt", "capture_prefix": PREFIX, **changes}
    config = make_config(folders, package.model_dir, **settings)
    capturer = Capturer(
        folders.state / "captures",
        config,
        thing_name="core-1",
        uploader_factory=lambda bucket: s3,
        backoff=(0.01, 0.05),
        **({"clock": clock} if clock else {}),
    )
    service = InferenceService(
        config=config,
        model=load_model(package.model_dir, "dlr"),
        spool=Spool(folders.state),
        publisher=RecordingPublisher(),
        stop=threading.Event(),
        metrics=metrics,
        capture=capturer,
    )
    return service, capturer


def drop_inputs(folders: Folders, count: int) -> List[bytes]:
    contents = []
    for seed in range(count):
        path = folders.input / f"in-{seed}.npy"
        np.save(path, random_tensor(seed))
        contents.append(path.read_bytes())
    return contents


def test_which_results_are_captured_and_why() -> None:
    low = {"top": [{"label": "cat", "index": 0, "score": 0.4}]}
    high = {"top": [{"label": "cat", "index": 0, "score": 0.95}]}
    assert capture_reason({}, True, below=0.0, rate=0.0) == REASON_FAILED
    assert capture_reason(low, False, below=0.5, rate=0.0) == REASON_LOW_CONFIDENCE
    assert capture_reason(high, False, below=0.5, rate=0.0) is None
    assert capture_reason(high, False, below=0.5, rate=0.1, draw=lambda: 0.05) == REASON_SAMPLE
    assert capture_reason(high, False, below=0.5, rate=0.1, draw=lambda: 0.5) is None
    assert capture_reason(low, False, below=0.0, rate=0.0) is None  # 0: low confidence off


def test_keys_are_s3_safe_and_fixed_by_the_capture() -> None:
    assert key_name("0001", "a b/ü?.jpg") == "0001-a_b___.jpg"
    long = key_name("0001", "x" * 500 + ".jpeg")
    assert long.endswith(".jpeg") and len(long) <= 5 + capture_mod.KEY_NAME_BYTES
    record = {"date": "2027/01/15", "key_name": "0001-a.jpg"}
    assert capture_keys(PREFIX, record) == (
        PREFIX + "2027/01/15/0001-a.jpg",
        PREFIX + "2027/01/15/0001-a.jpg.json",
    )


def test_low_confidence_inputs_are_captured_uploaded_once_and_removed(
    folders: Folders, tiny_package: TinyPackage
) -> None:
    contents = drop_inputs(folders, 3)
    s3 = FakeS3()
    service, _ = service_with_capture(
        folders, tiny_package, s3, capture_below_confidence=1.0
    )  # every score is below 1.0
    service.run(once=True)
    data_keys = sorted(k for k in s3.objects if not k.endswith(".json"))
    assert len(data_keys) == 3 and len(s3.puts) == 6  # each input and its sidecar, once
    assert sorted(s3.objects[k] for k in data_keys) == sorted(contents)
    for key in data_keys:
        assert key.startswith(PREFIX) and key.endswith(".npy")
        sidecar = json.loads(s3.objects[key + ".json"])
        assert sidecar["reason"] == REASON_LOW_CONFIDENCE
        assert sidecar["message"]["top"][0]["score"] < 1.0
        assert sidecar["model"] == "tiny-neo-1"
        assert key == PREFIX + sidecar["date"] + "/" + sidecar["key_name"]
    assert os.listdir(folders.state / "captures") == []
    assert sorted(os.listdir(folders.processed)) == [f"in-{i}.npy" for i in range(3)]


def test_confident_results_are_not_captured_and_failures_are(
    folders: Folders, tiny_package: TinyPackage
) -> None:
    drop_inputs(folders, 2)
    (folders.input / "broken.jpg").write_bytes(b"not a jpeg")
    s3 = FakeS3()
    service, _ = service_with_capture(folders, tiny_package, s3, capture_below_confidence=0.0)
    service.run(once=True)
    sidecars = [json.loads(v) for k, v in s3.objects.items() if k.endswith(".json")]
    assert [(s["input"], s["reason"]) for s in sidecars] == [("broken.jpg", REASON_FAILED)]
    assert "error" in sidecars[0]["message"]


def test_failed_uploads_keep_captures_through_a_restart_and_then_send_each_once(
    folders: Folders, tiny_package: TinyPackage
) -> None:
    drop_inputs(folders, 3)
    offline = FakeS3(failing=10**6)
    service, _ = service_with_capture(folders, tiny_package, offline, capture_below_confidence=1)
    service.run(once=True)
    assert offline.puts == [] and len(os.listdir(folders.state / "captures")) == 6
    # a new process (after a reboot) on the same state folder, the network back but throttled
    s3 = FakeS3(failing=3)
    store = CaptureStore(folders.state / "captures", max_bytes=10 * MB)
    store.open()
    sender = CaptureSender(store, s3, PREFIX, min_backoff=0.01, max_backoff=0.02)
    while not sender.send_once():
        pass
    assert len(s3.objects) == 6 and len(set(s3.puts)) == len(s3.puts) == 6
    assert store.ids() == []


def test_a_retry_after_a_crash_mid_upload_writes_the_same_keys(tmp_path: Path) -> None:
    source = tmp_path / "a.jpg"
    source.write_bytes(b"jpeg bytes")
    store = CaptureStore(tmp_path / "captures", max_bytes=MB)
    store.open()
    store.add(source, "0001", {"input": "a.jpg"}, REASON_SAMPLE, T0)
    s3 = FakeS3()
    s3_put = s3.put
    calls = []

    def crash_after_the_input(key: str, body: bytes, content_type: str) -> None:
        calls.append(key)
        s3_put(key, body, content_type)
        if len(calls) == 1:
            raise ConnectionError("power lost before the sidecar")

    sender = CaptureSender(
        store, type("U", (), {"put": staticmethod(crash_after_the_input)})(), PREFIX
    )
    assert not sender.send_once()
    assert sender.send_once()
    assert sorted(set(calls)) == sorted(s3.objects)  # the retry rewrote the same key
    assert len(s3.objects) == 2


def test_the_key_date_is_the_capture_time_even_if_the_clock_moves(tmp_path: Path) -> None:
    source = tmp_path / "a.jpg"
    source.write_bytes(b"x")
    store = CaptureStore(tmp_path / "captures", max_bytes=MB)
    store.open()
    store.add(source, "0001", {"input": "a.jpg"}, REASON_SAMPLE, T0)
    s3 = FakeS3()
    # the device's clock is set back a year before the upload: the key does not move
    CaptureSender(store, s3, PREFIX).send_once()
    assert sorted(s3.objects) == [
        PREFIX + "2027/01/15/0001-a.jpg",
        PREFIX + "2027/01/15/0001-a.jpg.json",
    ]


def test_captures_are_bounded_oldest_dropped_and_counted(tmp_path: Path) -> None:
    store = CaptureStore(tmp_path / "captures", max_bytes=3000)
    store.open()
    for i in range(10):
        source = tmp_path / f"in-{i}.bin"
        source.write_bytes(bytes(1000))
        assert store.add(source, f"{i:04d}", {"input": source.name}, REASON_SAMPLE, T0)
    kept = store.ids()
    assert store.bytes <= 3000
    assert kept[-1] == "0009" and "0000" not in kept  # the newest kept, the oldest dropped
    counts = store.take_counts()
    assert counts["captured"] == 10 and counts["dropped"] == 10 - len(kept)
    assert store.take_counts() == {"captured": 0, "dropped": 0, "uploaded": 0}


def test_ten_thousand_captures_offline_stay_within_the_bound(tmp_path: Path) -> None:
    source = tmp_path / "in.jpg"
    source.write_bytes(bytes(2000))
    store = CaptureStore(tmp_path / "captures", max_bytes=200_000)
    store.open()
    for i in range(10_000):
        store.add(source, f"{i:08d}", {"input": "in.jpg"}, REASON_LOW_CONFIDENCE, T0 + i)
    on_disk = sum(
        p.stat().st_size for p in (tmp_path / "captures").iterdir() if p.suffix == ".data"
    )
    assert on_disk <= 200_000 and store.bytes <= 200_000
    counts = store.take_counts()
    kept = len(store.ids())
    assert counts["captured"] == 10_000 and counts["dropped"] + kept == 10_000
    assert store.ids()[-1] == f"{9_999:08d}"
    # what is kept survives a restart and is counted again
    again = CaptureStore(tmp_path / "captures", max_bytes=200_000)
    again.open()
    assert again.ids() == store.ids() and again.bytes == store.bytes


def test_a_disk_that_refuses_the_capture_never_fails_the_input(
    folders: Folders, tiny_package: TinyPackage, monkeypatch: pytest.MonkeyPatch
) -> None:
    drop_inputs(folders, 3)

    def full(*_args: Any, **_kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(capture_mod.os, "link", full)
    monkeypatch.setattr(capture_mod.shutil, "copyfile", full)
    s3 = FakeS3()
    metrics = MetricsReporter(
        Outbox(folders.state / "metrics"), None, interval=3600.0, keep=10, thing="core-1",
        input_dir=folders.input,
    )  # fmt: skip
    service, _ = service_with_capture(
        folders, tiny_package, s3, metrics=metrics, capture_below_confidence=1.0
    )
    service.run(once=True)
    assert service.counts == {"processed": 3, "failed": 0}
    assert sorted(os.listdir(folders.processed)) == [f"in-{i}.npy" for i in range(3)]
    assert s3.objects == {}
    window = json.loads(next((folders.state / "metrics").glob("*.json")).read_text())
    assert window["message"]["capture_dropped"] == 3 and window["message"]["captured"] == 0


def test_at_the_bound_the_folder_is_not_listed_for_every_new_capture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by the hostile review: at CaptureMaxMB every new capture listed and sorted the
    whole folder twice (half a second per input with 61,000 small captures, on the finisher
    thread). Past the bound the store drops down to LOW_WATER, so listing is rare."""
    source = tmp_path / "a.jpg"
    source.write_bytes(b"x" * 1000)
    store = CaptureStore(tmp_path / "captures", max_bytes=200_000)
    store.open()
    listings = []
    real = store._disk_bytes
    monkeypatch.setattr(store, "_disk_bytes", lambda: listings.append(1) or real())
    for index in range(1000):
        store.add(source, f"{index:06d}", {"input": "a.jpg"}, REASON_SAMPLE, T0)
    assert store.bytes <= 200_000
    # ~140 captures fit: one listing per 10% refilled (~14 captures), not one per capture
    assert len(listings) <= 100, len(listings)


def test_a_crash_between_the_input_and_its_sidecar_leaves_no_half_capture(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "captures"
    folder.mkdir()
    (folder / "0001.data").write_bytes(b"orphan")  # linked, then the power went
    store = CaptureStore(folder, max_bytes=MB)
    store.open()
    assert os.listdir(folder) == [] and store.bytes == 0


def two_captures_the_first_with_sidecar(tmp_path: Path, sidecar: bytes) -> CaptureStore:
    """Captures 0001 and 0002, 0001's sidecar replaced by ``sidecar``, counts taken."""
    source = tmp_path / "a.jpg"
    source.write_bytes(b"x")
    store = CaptureStore(tmp_path / "captures", max_bytes=MB)
    store.open()
    store.add(source, "0001", {"input": "a.jpg"}, REASON_SAMPLE, T0)
    store.add(source, "0002", {"input": "a.jpg"}, REASON_SAMPLE, T0)
    (tmp_path / "captures" / "0001.json").write_bytes(sidecar)
    store.take_counts()
    return store


def test_a_sidecar_a_power_cut_left_empty_is_dropped_and_counted_not_sent(
    tmp_path: Path,
) -> None:
    """The sidecar is written without fsync (capture.py: two fsyncs per input cost 0.81x on a
    fast model); after a power cut it may be empty. It is dropped and counted; the others go."""
    store = two_captures_the_first_with_sidecar(tmp_path, b"")  # what the power cut left
    s3 = FakeS3()
    assert CaptureSender(store, s3, PREFIX).send_once()
    assert len(s3.objects) == 2  # 0002's input and sidecar
    assert store.take_counts()["dropped"] == 1 and store.ids() == []


@pytest.mark.parametrize("sidecar", [b'{"id": "0001"}', b"[]", b'{"date": 5, "key_name": null}'])
def test_a_sidecar_not_written_by_the_component_is_dropped_and_the_rest_goes(
    tmp_path: Path, sidecar: bytes
) -> None:
    """Found by the hostile review: a sidecar without ``date`` raised KeyError out of
    send_once and killed the upload thread for good (at every restart too); a JSON list was
    skipped but waited forever. Both are dropped and counted; the next capture is sent."""
    store = two_captures_the_first_with_sidecar(tmp_path, sidecar)
    s3 = FakeS3()
    sender = CaptureSender(store, s3, PREFIX, min_backoff=0.01, max_backoff=0.01)
    sender.start()
    try:
        deadline = time.monotonic() + 5
        while store.ids() and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        sender.stop()
    assert store.ids() == [] and len(s3.objects) == 2
    assert store.take_counts()["dropped"] == 1


def test_the_capture_folder_deleted_under_the_component(tmp_path: Path) -> None:
    source = tmp_path / "a.jpg"
    source.write_bytes(b"x")
    s3 = FakeS3()
    store = CaptureStore(tmp_path / "captures", max_bytes=MB)
    store.open()
    store.add(source, "0001", {"input": "a.jpg"}, REASON_SAMPLE, T0)
    shutil.rmtree(tmp_path / "captures")
    sender = CaptureSender(store, s3, PREFIX)
    assert sender.send_once()  # nothing to send, no crash
    assert store.add(source, "0002", {"input": "a.jpg"}, REASON_SAMPLE, T0)  # recreated
    assert sender.send_once() and len(s3.objects) == 2


def test_a_capture_folder_that_cannot_be_written_does_not_upload_the_same_capture_forever(
    folders: Folders, tiny_package: TinyPackage, monkeypatch, caplog
) -> None:
    """Left from stop 25: with a folder that refuses deletes (read-only, a full-disk journal),
    each uploaded capture stayed, so every retry sent it again (every 5 minutes, for good). An
    upload is now remembered: each capture is sent once per process, counted once, and the
    trouble is said once."""
    drop_inputs(folders, 3)
    offline = FakeS3(failing=10**6)
    service, _ = service_with_capture(folders, tiny_package, offline, capture_below_confidence=1)
    service.run(once=True)
    store = CaptureStore(folders.state / "captures", max_bytes=10 * MB)
    store.open()
    captured = store.ids()
    assert len(captured) == 3
    real_unlink = Path.unlink

    def refuse(self: Path, missing_ok: bool = False) -> None:
        if self.parent == store.folder:
            raise PermissionError(13, "Permission denied", str(self))
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", refuse)
    s3 = FakeS3()
    sender = CaptureSender(store, s3, PREFIX, min_backoff=0.01, max_backoff=0.02)
    with caplog.at_level(logging.WARNING):
        for _ in range(5):
            assert sender.send_once()
    assert len(s3.puts) == 6 and len(set(s3.puts)) == 6  # each capture and sidecar once
    assert store.take_counts()["uploaded"] == 3
    assert store.ids() == []  # nothing left to send in this process
    assert caplog.text.count("cannot remove") == 1


class Crash(BaseException):
    """Stands for the process dying: nothing in the component catches it."""


def test_a_kill_between_recording_a_result_and_capturing_it_loses_no_capture(
    folders: Folders, tiny_package: TinyPackage, monkeypatch
) -> None:
    """Left from stop 25: the capture was taken after the result was recorded and released,
    so a kill in between lost it (recovery finished the result without offering it to
    capture). The capture now happens before the release and again on recovery (by id, so a
    second offer replaces the first)."""
    drop_inputs(folders, 3)
    offline = FakeS3(failing=10**6)
    released = []
    real = Outbox.release

    def release(self: Outbox, record_id: str) -> None:
        if self.folder == folders.outbox and not released:
            released.append(record_id)
            raise Crash
        real(self, record_id)

    with monkeypatch.context() as patch:
        patch.setattr(Outbox, "release", release)
        service, _ = service_with_capture(
            folders, tiny_package, offline, capture_below_confidence=1
        )
        with pytest.raises(Crash):
            service.run(once=True)
    service, capturer = service_with_capture(
        folders, tiny_package, offline, capture_below_confidence=1
    )
    service.run(once=True)
    assert sorted(folders.names(folders.processed)) == ["in-0.npy", "in-1.npy", "in-2.npy"]
    inputs = sorted(str(capturer.store.read(i)["input"]) for i in capturer.store.ids())
    assert inputs == ["in-0.npy", "in-1.npy", "in-2.npy"]


def test_the_metrics_window_counts_captures(folders: Folders, tiny_package: TinyPackage) -> None:
    drop_inputs(folders, 4)
    s3 = FakeS3()
    metrics = MetricsReporter(
        Outbox(folders.state / "metrics"), None, interval=3600.0, keep=10, thing="core-1",
        input_dir=folders.input,
    )  # fmt: skip
    service, _ = service_with_capture(
        folders, tiny_package, s3, metrics=metrics, capture_below_confidence=1.0
    )
    service.run(once=True)
    (path,) = (folders.state / "metrics").glob("*.json")
    message = json.loads(path.read_text())["message"]
    assert message["captured"] == 4
    assert message["capture_dropped"] == 0


def test_capture_max_mb_zero_captures_nothing(folders: Folders, tiny_package: TinyPackage) -> None:
    drop_inputs(folders, 2)
    s3 = FakeS3()
    service, _ = service_with_capture(
        folders, tiny_package, s3, capture_below_confidence=1.0, capture_max_mb=0.0
    )
    service.run(once=True)
    assert s3.objects == {} and service.counts["processed"] == 2


def test_without_a_bucket_captures_stay_on_the_device(
    folders: Folders, tiny_package: TinyPackage
) -> None:
    drop_inputs(folders, 2)
    s3 = FakeS3()
    service, capturer = service_with_capture(
        folders, tiny_package, s3, capture_below_confidence=1.0, capture_bucket=""
    )
    service.run(once=True)
    assert s3.puts == [] and capturer.sender is None
    assert len(capturer.store.ids()) == 2


def test_a_window_from_a_device_without_capture_still_validates() -> None:
    """The capture counts came after the metrics contract: a device on an older component
    version sends none of them, and the cloud must not drop its windows."""
    from device_contract.messages import MessageError, Metrics

    window = Metrics(
        thing="t", model="m", runtime="dlr", window_start="2027-01-15T08:00:00.000Z",
        window_seconds=60.0, processed=1, failed=(), latency=capture_mod_latency(),
        confidence=(), classes=(), backlog_files=0, backlog_oldest_seconds=0.0,
        disk_free_bytes=1, dropped_windows=0, captured=2,
    ).to_dict()  # fmt: skip
    old = {k: v for k, v in window.items() if not k.startswith("capture")}
    assert Metrics.from_dict(old).captured == 0
    assert Metrics.from_dict(window).captured == 2
    with pytest.raises(MessageError, match="captured must be at least 0"):
        Metrics.from_dict({**window, "captured": -1})


def capture_mod_latency() -> Any:
    from device_contract.messages import Latency

    return Latency(p50_ms=1.0, p95_ms=1.0, max_ms=1.0)


def test_after_the_folder_is_deleted_new_captures_are_not_dropped_for_old_bytes(
    tmp_path: Path,
) -> None:
    """The store's byte count must follow the disk: captures deleted from under it (an
    operator's rm -rf) no longer count against CaptureMaxMB."""
    source = tmp_path / "a.jpg"
    source.write_bytes(bytes(400))
    store = CaptureStore(tmp_path / "captures", max_bytes=1500)
    store.open()
    for i in range(2):
        store.add(source, f"{i:04d}", {"input": "a.jpg"}, REASON_SAMPLE, T0)
    shutil.rmtree(tmp_path / "captures")
    for i in range(2, 4):
        store.add(source, f"{i:04d}", {"input": "a.jpg"}, REASON_SAMPLE, T0)
    assert store.ids() == ["0002", "0003"]
    assert store.take_counts()["dropped"] == 0


@pytest.mark.parametrize(
    "prefix",
    ["captures/dev/default/{iot:thingName}/../../x/", "captures/./a/", "captures/a\n/"],
)
def test_a_capture_prefix_with_dot_levels_or_control_characters_is_refused(
    tmp_path: Path, prefix: str
) -> None:
    """Found by the hostile review: '..' levels were accepted; S3 keeps them literally, but a
    copy to disk (aws s3 sync, the simulator's <root>/cloud/s3) resolves them, outside."""
    from edge_inference.config import Config, ConfigError, merge_config

    base = Config(tmp_path / "m", tmp_path / "i", tmp_path / "p", tmp_path / "f")
    with pytest.raises(ConfigError, match=r"CapturePrefix must have no \. or \.\. level"):
        merge_config(base, {"CapturePrefix": prefix}, cwd=tmp_path)


@pytest.mark.parametrize(
    ("bucket", "why"),
    [
        ("my.captures", "no dots"),  # virtual-hosted HTTPS: *.s3.<region> covers one label
        ("xn--captures", "reserved"),
        ("sthree-captures", "reserved"),
        ("amzn-s3-demo-captures", "reserved"),
        ("captures-s3alias", "reserved"),
        ("captures--ol-s3", "reserved"),
        ("captures--x-s3", "reserved"),
        ("captures--table-s3", "reserved"),
    ],
)
def test_a_capture_bucket_the_uploads_cannot_reach_is_refused(
    tmp_path: Path, bucket: str, why: str
) -> None:
    """S3 User Guide, "General purpose bucket naming rules": names "must not start with the
    prefix xn--", sthree-, amzn-s3-demo-, "must not end with the suffix -s3alias", --ol-s3,
    --x-s3 (directory buckets), --table-s3 (table buckets). Dots are legal, but the component
    uploads virtual-hosted style over HTTPS (``https://<bucket>.s3.<region>.amazonaws.com``)
    and the wildcard certificate covers a single label: the same guide ("Virtual hosting of
    buckets") says that with periods "you can't use virtual-host-style addressing over HTTPS,
    unless you perform your own certificate validation". Accepted, such a bucket fails every
    upload for good; refused, the deployment says why."""
    from edge_inference.config import Config, ConfigError, merge_config

    base = Config(tmp_path / "m", tmp_path / "i", tmp_path / "p", tmp_path / "f")
    with pytest.raises(ConfigError, match=f"CaptureBucket .*{why}"):
        merge_config(base, {"CaptureBucket": bucket}, cwd=tmp_path)
    assert merge_config(base, {"CaptureBucket": "my-captures-1"}, cwd=tmp_path).capture_bucket


def test_the_simulated_s3_never_writes_outside_its_folder(tmp_path: Path) -> None:
    from device_sim.cloud.s3_http import S3Endpoint, Sessions

    objects: Dict[str, Dict[str, bytes]] = {}
    endpoint = S3Endpoint(
        sessions=Sessions(),
        region="eu-west-1",
        partition="aws",
        objects=objects,
        bucket_policies={},
        folder=tmp_path / "cloud" / "s3",
    )
    endpoint.store("b", "captures/../../../escaped/x.jpg", b"x")
    endpoint.store("b", "captures/ok/x.jpg", b"y")
    assert objects["b"]["captures/../../../escaped/x.jpg"] == b"x"  # S3 keeps the key as is
    assert not (tmp_path / "cloud" / "escaped").exists()  # s3/b/captures/../../.. = cloud/
    assert (tmp_path / "cloud" / "s3" / "b" / "captures" / "ok" / "x.jpg").read_bytes() == b"y"
