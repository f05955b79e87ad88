"""The component under hostile conditions (issue 9): odd names, a second instance, crashes
around prefetching, non-finite numbers. Each test failed on the code before its fix."""

from __future__ import annotations

import fcntl
import json
import logging
import os
from typing import Any, Dict, List

import numpy as np
import pytest
from edge_inference import spool as spool_module
from edge_inference.inputs import InputDecoder
from edge_inference.model import DlrRunner
from edge_inference.spool import MAX_ATTEMPTS, Spool, SpoolLocked

from tests.component.harness import (
    Folders,
    RecordingPublisher,
    TinyPackage,
    make_service,
    random_tensor,
    run_cli,
    run_once,
)


class Crash(BaseException):
    """Stands for the process dying: nothing in the component catches it."""


def crash_run(folders: Folders, package: TinyPackage, monkeypatch: Any, target: Any, attr: str):
    with monkeypatch.context() as patch:

        def crash(*_args: Any, **_kwargs: Any) -> None:
            raise Crash

        patch.setattr(target, attr, crash)
        with pytest.raises(Crash):
            run_once(folders, package.model_dir)


def strict_json(message: Dict[str, Any]) -> Dict[str, Any]:
    """The message as a strict JSON parser (no NaN, valid UTF-8) reads it."""

    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    text = json.dumps(message, ensure_ascii=False)
    parsed: Dict[str, Any] = json.loads(text.encode("utf-8").decode("utf-8"), parse_constant=refuse)
    return parsed


def leftovers(folders: Folders) -> List[str]:
    names: List[str] = []
    for sub in ("in-progress", "attempts", "outbox", "names"):
        names += folders.names(folders.state / sub)
    return names


# -- defect 1: one file must not stop the service ---------------------------------------------


def test_a_name_too_long_for_the_claim_prefix_is_processed_with_its_full_name(
    folders: Folders, tiny_package: TinyPackage
):
    long_name = "\u732b" * 80 + ".npy"  # 244 bytes: too long once the claim id is prefixed
    assert len(long_name.encode()) > 255 - 17
    np.save(folders.input / long_name, random_tensor(1))
    np.save(folders.input / "after.npy", random_tensor(2))

    messages = run_once(folders, tiny_package.model_dir)

    assert sorted(m["input"] for m in messages) == sorted([long_name, "after.npy"])
    assert all("top" in m for m in messages)
    assert len(folders.names(folders.processed)) == 2
    assert leftovers(folders) == []


def test_a_long_name_that_fails_keeps_its_name_in_the_result(
    folders: Folders, tiny_package: TinyPackage
):
    long_name = "\u732b" * 82 + ".npy"  # 250 bytes: NAME.error.json would not fit either
    (folders.input / long_name).write_bytes(b"not a tensor")

    (message,) = run_once(folders, tiny_package.model_dir)

    assert message["input"] == long_name and "NPY" in message["error"]
    stored = folders.names(folders.failed)
    assert len(stored) == 2 and any(n.endswith(".error.json") for n in stored)
    (error_file,) = [n for n in stored if n.endswith(".error.json")]
    assert json.loads((folders.failed / error_file).read_text())["input"] == long_name


def test_a_file_that_cannot_be_claimed_fails_with_the_reason_and_the_rest_goes_on(
    folders: Folders, tiny_package: TinyPackage, monkeypatch: Any, caplog: Any
):
    np.save(folders.input / "theirs.npy", random_tensor(1))
    np.save(folders.input / "mine.npy", random_tensor(2))
    real_rename = os.rename

    def rename(src: Any, dst: Any) -> None:
        if os.fsdecode(src).endswith("theirs.npy"):  # another user's file in a sticky folder
            raise PermissionError(1, "Operation not permitted", os.fsdecode(src))
        real_rename(src, dst)

    monkeypatch.setattr(spool_module.os, "rename", rename)
    publisher = RecordingPublisher()
    service = make_service(folders, tiny_package.model_dir, publisher=publisher)
    service.run(once=True)
    service.run(once=True)  # a second pass must not report it again

    by_name = {m["input"]: m for m in publisher.messages}
    assert sorted(by_name) == ["mine.npy", "theirs.npy"]
    assert len(publisher.messages) == 2
    assert "Operation not permitted" in by_name["theirs.npy"]["error"]
    assert folders.names(folders.input) == ["theirs.npy"]  # it cannot be moved: left alone
    assert folders.names(folders.processed) == ["mine.npy"]


# -- defect 3: only what was running counts as an attempt -------------------------------------


def test_a_crash_in_inference_does_not_count_against_the_prefetched_input(
    folders: Folders, tiny_package: TinyPackage, monkeypatch: Any
):
    np.save(folders.input / "a-crashes.npy", random_tensor(1))
    os.utime(folders.input / "a-crashes.npy", (1, 1))  # oldest: taken first
    np.save(folders.input / "b-healthy.npy", random_tensor(2))
    for _ in range(MAX_ATTEMPTS):  # the runtime dies on a-crashes.npy, b is prefetched
        crash_run(folders, tiny_package, monkeypatch, DlrRunner, "run")

    messages = {m["input"]: m for m in run_once(folders, tiny_package.model_dir)}

    assert "crashed" in messages["a-crashes.npy"]["error"]
    assert "top" in messages["b-healthy.npy"], messages["b-healthy.npy"]
    assert folders.names(folders.processed) == ["b-healthy.npy"]
    assert leftovers(folders) == []


# -- defect 4: one instance per state folder ---------------------------------------------------


def test_a_second_instance_on_the_same_state_folder_is_refused(
    folders: Folders, tiny_package: TinyPackage
):
    first = Spool(folders.state)
    first.open()
    try:
        second = make_service(folders, tiny_package.model_dir)
        np.save(folders.input / "x.npy", random_tensor(1))
        with pytest.raises(SpoolLocked, match="another instance"):
            second.run(once=True)
        assert folders.names(folders.input) == ["x.npy"]  # it took nothing
    finally:
        first.close()


def test_the_cli_exits_non_zero_when_another_instance_holds_the_state_folder(
    folders: Folders, tiny_package: TinyPackage
):
    folders.state.mkdir(parents=True)
    with open(folders.state / "lock", "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        np.save(folders.input / "x.npy", random_tensor(1))
        result = run_cli(
            ["--model-dir", str(tiny_package.model_dir), "--once", "--settle-seconds", "0"],
            cwd=folders.root,
        )
    assert result.returncode == 3, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "another instance" in last and str(folders.state) in last
    assert folders.names(folders.input) == ["x.npy"]


# -- defect 5: results are strict JSON ---------------------------------------------------------


def test_non_finite_tensors_fail_with_a_reason(folders: Folders, tiny_package: TinyPackage):
    bad = random_tensor(1)
    bad[0, 0, 0, 0] = np.nan
    np.save(folders.input / "nan.npy", bad)
    worse = random_tensor(2)
    worse[0, 1, 2, 3] = np.inf
    np.save(folders.input / "inf.npy", worse)

    messages = {m["input"]: strict_json(m) for m in run_once(folders, tiny_package.model_dir)}

    assert "NaN or Inf" in messages["nan.npy"]["error"]
    assert "NaN or Inf" in messages["inf.npy"]["error"]


def test_a_non_finite_model_output_fails_instead_of_publishing_nan(
    folders: Folders, tiny_package: TinyPackage, monkeypatch: Any
):
    np.save(folders.input / "x.npy", random_tensor(1))
    monkeypatch.setattr(DlrRunner, "run", lambda self, t: np.full((1, 10), np.nan, np.float32))

    (message,) = run_once(folders, tiny_package.model_dir)

    assert "NaN or Inf" in strict_json(message)["error"]
    assert folders.names(folders.failed) == ["x.npy", "x.npy.error.json"]


# -- defect 11: names survive as they are ------------------------------------------------------


def test_a_name_with_a_newline_keeps_its_name_and_id_across_a_crash(
    folders: Folders, tiny_package: TinyPackage, monkeypatch: Any
):
    name = "line\nbreak.npy"
    np.save(folders.input / name, random_tensor(1))
    crash_run(folders, tiny_package, monkeypatch, InputDecoder, "load")
    crash_run(folders, tiny_package, monkeypatch, InputDecoder, "load")

    (message,) = run_once(folders, tiny_package.model_dir)

    assert message["input"] == name
    assert folders.names(folders.processed) == [name]
    assert leftovers(folders) == []


def test_a_name_that_is_not_utf8_is_published_as_valid_text(
    folders: Folders, tiny_package: TinyPackage
):
    raw = os.fsencode(str(folders.input)) + b"/caf\xe9.npy"
    with open(raw, "wb") as handle:
        np.save(handle, random_tensor(1))

    (message,) = run_once(folders, tiny_package.model_dir)

    assert strict_json(message)["input"] == "caf\\xe9.npy"
    assert os.listdir(os.fsencode(str(folders.processed))) == [b"caf\xe9.npy"]


def test_what_is_not_a_regular_file_is_left_alone_and_logged_once(
    folders: Folders, tiny_package: TinyPackage, caplog: Any
):
    (folders.input / "subdir").mkdir()
    os.mkfifo(folders.input / "pipe.npy")
    (folders.input / "link.npy").symlink_to("/etc/hostname")
    (folders.input / ".hidden.npy").write_bytes(b"x")
    caplog.set_level(logging.INFO, logger="edge_inference")

    service = make_service(folders, tiny_package.model_dir)
    service.run(once=True)
    service.run(once=True)

    for name in ("subdir", "pipe.npy", "link.npy", ".hidden.npy"):
        lines = [r.getMessage() for r in caplog.records if name in r.getMessage()]
        assert len(lines) == 1, (name, lines)
        assert "ignor" in lines[0]
    assert sorted(os.listdir(folders.input)) == [".hidden.npy", "link.npy", "pipe.npy", "subdir"]
