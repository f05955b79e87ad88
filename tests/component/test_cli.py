"""The public command line, run as Greengrass runs it: ``python -u -m edge_inference`` with
``PYTHONPATH=component_src`` and the working directory elsewhere."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from tests.component.harness import (
    Folders,
    TinyPackage,
    component_env,
    encode,
    json_lines,
    photo,
    random_tensor,
    run_cli,
    wait_for,
)


def test_once_prints_one_json_line_per_input_and_moves_the_files(
    folders: Folders, tiny_package: TinyPackage
):
    np.save(folders.input / "a.npy", random_tensor(1))
    (folders.input / "b.jpg").write_bytes(b"not a jpeg")

    result = run_cli(
        ["--model-dir", str(tiny_package.model_dir), "--input-dir", "input", "--once",
         "--top-k", "3"],
        cwd=folders.root,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    lines = {m["input"]: m for m in json_lines(result.stdout)}
    assert set(lines) == {"a.npy", "b.jpg"}
    good = lines["a.npy"]
    assert set(good) >= {"input", "top", "latency_ms", "model", "runtime"}
    assert good["runtime"] == "dlr" and good["model"] == "tiny-neo-1"
    assert [set(t) for t in good["top"]] == [{"index", "label", "score"}] * 3
    assert set(lines["b.jpg"]) >= {"input", "error"}
    # Default folders: beside the input folder, not inside it.
    assert (folders.root / "processed" / "a.npy").exists()
    assert (folders.root / "failed" / "b.jpg.error.json").exists()
    assert (folders.root / "state" / "outbox").is_dir()
    assert folders.names(folders.input) == []


def test_once_waits_for_a_just_written_file_to_settle_and_processes_it(
    folders: Folders, tiny_package: TinyPackage
):
    np.save(folders.input / "fresh.npy", random_tensor(2))  # written now; settle time is 1 s
    started = time.monotonic()
    result = run_cli(
        ["--model-dir", str(tiny_package.model_dir), "--input-dir", str(folders.input), "--once"],
        cwd=folders.root,
    )
    assert result.returncode == 0, result.stderr
    assert [m["input"] for m in json_lines(result.stdout)] == ["fresh.npy"]
    assert time.monotonic() - started < 30


def run_bad(args, cwd: Path) -> subprocess.CompletedProcess:
    result = run_cli(args, cwd=cwd)
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("edge_inference: error: ")
    assert result.stdout == ""
    return result


def test_bad_command_lines_exit_2_with_one_clear_line(folders: Folders, tiny_package: TinyPackage):
    model = str(tiny_package.model_dir)
    err = run_bad(["--model-dir", str(folders.root / "missing"), "--once"], folders.root).stderr
    assert "does not exist" in err
    err = run_bad(["--model-dir", model, "--runtime", "onnx", "--once"], folders.root).stderr
    assert "model.onnx" in err
    err = run_bad(["--model-dir", model, "--runtime", "tflite"], folders.root).stderr
    assert "tflite" in err
    err = run_bad(["--model-dir", model, "--top-k", "0"], folders.root).stderr
    assert "--top-k" in err
    err = run_bad(["--input-dir", "x"], folders.root).stderr
    assert "--model-dir" in err


def test_a_folder_that_dlr_cannot_use_is_refused_with_the_reason(
    folders: Folders, tiny_package: TinyPackage, tmp_path: Path
):
    bare = tmp_path / "bare"
    bare.mkdir()
    for path in (tiny_package.model_dir / "model").iterdir():
        (bare / path.name).write_bytes(path.read_bytes())
    (bare / "labels.json").write_text('["a", "b"]')  # DLR fails on any stray .json
    err = run_bad(["--model-dir", str(bare), "--once"], folders.root).stderr
    assert "labels.json" in err


def test_help_documents_the_folder_defaults(folders: Folders):
    result = run_cli(["--help"], cwd=folders.root)
    assert result.returncode == 0
    for text in ("--state-dir", "--once", "--ipc", "beside the input folder", "settle"):
        assert text in result.stdout


def test_sigterm_stops_between_files_well_inside_the_grace_period(
    folders: Folders, tiny_package: TinyPackage
):
    jpeg = encode(photo(3, (640, 480)), "JPEG", quality=90)
    names = [f"img{i:04d}.jpg" for i in range(400)]
    for name in names:
        (folders.input / name).write_bytes(jpeg)
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "edge_inference", "--model-dir", str(tiny_package.model_dir),
         "--input-dir", str(folders.input), "--settle-seconds", "0"],
        cwd=folders.root, env=component_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert wait_for(lambda: len(folders.names(folders.processed)) >= 20, timeout=60)
    process.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    stdout, stderr = process.communicate(timeout=10)
    elapsed = time.monotonic() - sent

    assert process.returncode == 0, stderr
    assert elapsed < 5.0
    processed = folders.names(folders.processed)
    assert 20 <= len(processed) < len(names), "must stop part-way"
    in_progress = [n.split("-", 1)[1] for n in folders.names(folders.in_progress)]
    places = processed + folders.names(folders.input) + folders.names(folders.failed) + in_progress
    assert sorted(places) == names  # each input in exactly one place, none lost
    assert in_progress == []  # the prefetched input went back to the input folder
    assert not list(folders.root.rglob("*.edge-tmp"))
    published = [m["input"] for m in json_lines(stdout.decode())]
    waiting = len(list((folders.outbox).glob("*.json")))
    assert len(published) + waiting == len(processed)  # every result printed or kept


SLOW_LOAD = """\
import ctypes, sys
import edge_inference.cli as cli
real = cli.load_model
def slow(*args, **kwargs):
    sys.stderr.write("LOADING\\n")
    sys.stderr.flush()
    for _ in range(30):  # a runtime parsing a 1.6 GB model: long calls into C, GIL held
        ctypes.PyDLL(None).sleep(1)
    return real(*args, **kwargs)
cli.load_model = slow
sys.exit(cli.main(sys.argv[1:]))
"""


def test_sigterm_while_the_model_loads_stops_within_the_grace_period(
    folders: Folders, tiny_package: TinyPackage
):
    """Greengrass sends SIGTERM, then SIGKILL 5 s later (nucleus ``util/Exec.java``:
    ``gracefulShutdownTimeout = Duration.ofSeconds(5)``, used by ``UnixExec.close()``)."""
    process = subprocess.Popen(
        [sys.executable, "-c", SLOW_LOAD, "--model-dir", str(tiny_package.model_dir),
         "--input-dir", str(folders.input), "--settle-seconds", "0"],
        cwd=folders.root, env=component_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        for line in process.stderr:
            if line.strip() == "LOADING":
                break
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=5.0)  # raises TimeoutExpired past the grace period
    finally:
        process.kill()
        process.communicate()
    assert process.returncode in (0, -signal.SIGTERM)
    assert folders.names(folders.in_progress) == []


def test_once_with_a_mistyped_input_folder_is_an_error_and_creates_nothing(
    folders: Folders, tiny_package: TinyPackage
):
    missing = folders.root / "nonexist" / "in"
    result = run_bad(
        ["--model-dir", str(tiny_package.model_dir), "--input-dir", str(missing), "--once"],
        folders.root,
    )
    assert result.stderr.strip() == (
        f"edge_inference: error: --input-dir {missing}: no such folder "
        "(--once processes the files already in it)"
    )
    assert not (folders.root / "nonexist").exists()


def test_ipc_outside_greengrass_names_the_missing_variables(
    folders: Folders, tiny_package: TinyPackage
):
    """The nucleus gives a component these (IPCEventStreamService
    NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT, ShellRunner's SVCUID), and awsiotsdk's
    greengrasscoreipc.connect reads them."""
    result = run_bad(["--model-dir", str(tiny_package.model_dir), "--ipc"], folders.root)
    assert result.stderr.strip() == (
        "edge_inference: error: --ipc works only in a Greengrass component: "
        "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT and SVCUID are not set "
        "(the nucleus sets them for the component's lifecycle scripts)"
    )
