"""Each input is processed exactly once and no result is lost: crashes at each step of the
folder state machine, a real SIGKILL, and a failing publisher."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

import numpy as np
import pytest
from edge_inference.inputs import InputDecoder
from edge_inference.outbox import Outbox
from edge_inference.spool import MAX_ATTEMPTS, Spool

from tests.component.harness import (
    Folders,
    RecordingPublisher,
    TinyPackage,
    make_service,
    random_tensor,
    run_once,
    sigkill_then_restart,
    wait_for,
)


class Crash(BaseException):
    """Stands for the process dying: nothing in the component catches it."""


def crash_during_first_run(folders, tiny_package, monkeypatch, target, attribute) -> None:
    with monkeypatch.context() as patch:

        def crash(*_args, **_kwargs):
            raise Crash

        patch.setattr(target, attribute, crash)
        with pytest.raises(Crash):
            run_once(folders, tiny_package.model_dir)


def write_inputs(folders: Folders, count: int) -> dict:
    tensors = {f"in{i:03d}.npy": random_tensor(i) for i in range(count)}
    for name, tensor in tensors.items():
        np.save(folders.input / name, tensor)
    return tensors


def assert_all_processed_once(folders: Folders, names) -> None:
    assert folders.names(folders.processed) == sorted(names)
    assert folders.names(folders.input) == []
    assert folders.names(folders.in_progress) == []
    assert folders.names(folders.outbox) == []
    assert folders.names(folders.state / "attempts") == []


def test_crash_after_claiming_reruns_the_input_once(
    folders: Folders, tiny_package: TinyPackage, monkeypatch
):
    write_inputs(folders, 3)
    crash_during_first_run(folders, tiny_package, monkeypatch, InputDecoder, "load")
    claimed = folders.names(folders.in_progress)
    assert claimed and all(name.split("-", 1)[1].startswith("in") for name in claimed)

    messages = run_once(folders, tiny_package.model_dir)

    assert sorted(m["input"] for m in messages) == ["in000.npy", "in001.npy", "in002.npy"]
    assert_all_processed_once(folders, ["in000.npy", "in001.npy", "in002.npy"])


def test_crash_after_the_outbox_write_moves_on_without_rerunning(
    folders: Folders, tiny_package: TinyPackage, monkeypatch
):
    write_inputs(folders, 2)
    crash_during_first_run(folders, tiny_package, monkeypatch, Spool, "_finish")
    recorded = [json.loads(p.read_text())["message"] for p in folders.outbox.glob("*.pending")]
    assert recorded, "the crash came after the result was written"
    assert len(folders.names(folders.in_progress)) >= len(recorded)

    calls = []
    original = InputDecoder.load
    monkeypatch.setattr(
        InputDecoder, "load", lambda self, p: calls.append(p.name) or original(self, p)
    )
    messages = run_once(folders, tiny_package.model_dir)

    for message in recorded:
        assert message in messages  # the recorded result is published, not a fresh one
        assert not any(message["input"] in name for name in calls)  # and it was not re-run
    assert sorted(m["input"] for m in messages) == ["in000.npy", "in001.npy"]
    assert_all_processed_once(folders, ["in000.npy", "in001.npy"])


def test_crash_after_the_move_publishes_the_result_once(
    folders: Folders, tiny_package: TinyPackage, monkeypatch
):
    write_inputs(folders, 2)
    crash_during_first_run(folders, tiny_package, monkeypatch, Outbox, "release")
    moved = folders.names(folders.processed)
    assert moved, "the crash came after the move"
    assert len(list(folders.outbox.glob("*.pending"))) == len(moved)

    messages = run_once(folders, tiny_package.model_dir)

    assert Counter(m["input"] for m in messages) == {"in000.npy": 1, "in001.npy": 1}
    assert_all_processed_once(folders, ["in000.npy", "in001.npy"])


def test_an_input_that_keeps_crashing_the_component_is_failed(
    folders: Folders, tiny_package: TinyPackage, monkeypatch
):
    write_inputs(folders, 1)
    for _ in range(MAX_ATTEMPTS):  # crashes while handling it, on every start
        crash_during_first_run(folders, tiny_package, monkeypatch, InputDecoder, "load")

    (message,) = run_once(folders, tiny_package.model_dir)

    assert message["input"] == "in000.npy"
    assert "crashed" in message["error"]
    assert folders.names(folders.failed) == ["in000.npy", "in000.npy.error.json"]
    assert folders.names(folders.in_progress) == []


def test_sigkill_mid_run_then_restart_loses_nothing_and_runs_nothing_twice(
    folders: Folders, tiny_package: TinyPackage
):
    names = sorted(write_inputs(folders, 60))
    sigkill_then_restart(folders, tiny_package.model_dir, names)
    assert folders.names(folders.state / "attempts") == []


def test_failed_publishing_keeps_results_in_the_outbox_and_retries(
    folders: Folders, tiny_package: TinyPackage
):
    publisher = RecordingPublisher(fail_first=4)
    stop = threading.Event()
    service = make_service(
        folders, tiny_package.model_dir, publisher=publisher, stop=stop, retry_backoff=(0.2, 0.4)
    )
    names = sorted(write_inputs(folders, 5))
    worker = threading.Thread(target=service.run)
    worker.start()
    try:
        assert wait_for(lambda: publisher.calls >= 2)
        waiting = sorted(folders.outbox.glob("*.json"))
        assert waiting, "results must wait in the outbox while publishing fails"
        assert wait_for(lambda: len(publisher.messages) == len(names))
    finally:
        stop.set()
        worker.join(10)
    assert sorted(m["input"] for m in publisher.messages) == names  # each once, none dropped
    assert publisher.calls == len(names) + 4
    assert_all_processed_once(folders, names)


def test_a_full_outbox_holds_new_inputs_back_until_results_are_published(
    folders: Folders, tiny_package: TinyPackage, caplog
):
    publisher = RecordingPublisher(fail_first=10**9)
    stop = threading.Event()
    service = make_service(
        folders,
        tiny_package.model_dir,
        publisher=publisher,
        stop=stop,
        max_outbox_files=2,
        retry_backoff=(0.05, 0.05),
    )
    names = sorted(write_inputs(folders, 5))
    worker = threading.Thread(target=service.run)
    worker.start()
    try:
        assert wait_for(lambda: publisher.calls >= 3)
        time.sleep(0.3)
        assert len(folders.names(folders.processed)) == 2
        assert len(folders.names(folders.input)) == 3  # waiting, not lost
        assert "outbox full" in caplog.text
        publisher.fail_first = 0  # the connection is back
        assert wait_for(lambda: len(publisher.messages) == len(names))
    finally:
        stop.set()
        worker.join(10)
    assert sorted(m["input"] for m in publisher.messages) == names
    assert_all_processed_once(folders, names)
