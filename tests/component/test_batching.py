"""Batching a backlog (``BatchSize``): batched results equal unbatched ones input for input, a
trickle still runs one by one, failures stay per file, and a crash or a real SIGKILL in the
middle of a batch loses and duplicates nothing (issue 16)."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest
from edge_inference.config import ConfigError, merge_config
from edge_inference.model import ModelError, OnnxRunner, batch_limit, load_model
from edge_inference.spool import _ACTIVE_BYTES, ActiveRecord, Spool

from device_contract import settings
from tests.component.harness import (
    Folders,
    RecordingPublisher,
    TinyPackage,
    component_env,
    encode,
    make_config,
    make_service,
    photo,
    random_tensor,
    run_once,
    sigkill_then_restart,
)


class Crash(BaseException):
    """Stands for the process dying: nothing in the component catches it."""


def write_inputs(folder: Path, count: int, *, start: int = 0) -> List[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(start, start + count):
        name = f"in{i:03d}.npy"
        np.save(folder / name, random_tensor(i))
        names.append(name)
    return names


@pytest.fixture
def batch_calls(monkeypatch) -> List[int]:
    """The batch size of every run of an ONNX model."""
    calls: List[int] = []
    real = OnnxRunner.run

    def run(self: OnnxRunner, tensor: np.ndarray) -> np.ndarray:
        calls.append(int(tensor.shape[0]))
        return real(self, tensor)

    monkeypatch.setattr(OnnxRunner, "run", run)
    return calls


def by_input(messages: List[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    counts = Counter(m["input"] for m in messages)
    assert max(counts.values()) == 1, f"published twice: {counts.most_common(3)}"
    return {m["input"]: m for m in messages}


def assert_all_processed_once(folders: Folders, names: List[str]) -> None:
    assert folders.names(folders.processed) == sorted(names)
    assert folders.names(folders.input) == []
    assert folders.names(folders.in_progress) == []
    assert folders.names(folders.outbox) == []


def test_batched_results_equal_unbatched_ones_input_for_input(
    tmp_path: Path, batch_package: TinyPackage, batch_calls: List[int]
):
    results = {}
    for size in (1, 8):
        folders = Folders(tmp_path / f"batch{size}")
        names = write_inputs(folders.input, 37)
        (folders.input / "photo.jpg").write_bytes(encode(photo(5), "JPEG"))
        batch_calls.clear()
        messages = run_once(folders, batch_package.model_dir, runtime="onnx", batch_size=size)
        results[size] = by_input(messages)
        assert_all_processed_once(folders, [*names, "photo.jpg"])
        if size == 1:
            assert set(batch_calls) == {1}
        else:  # 38 waiting: four batches of 8 (the first also run input by input, to check
            # the model's rows are independent), then the 6 left one by one
            assert Counter(batch_calls) == {8: 4, 1: 8 + 6}

    assert set(results[1]) == set(results[8]) and len(results[8]) == 38
    for name, single in results[1].items():
        batched = results[8][name]
        assert [s["index"] for s in batched["top"]] == [s["index"] for s in single["top"]], name
        assert [s["label"] for s in batched["top"]] == [s["label"] for s in single["top"]], name
        for a, b in zip(batched["top"], single["top"]):
            assert a["score"] == pytest.approx(b["score"], abs=1e-5), name


def test_a_trickle_runs_one_by_one(
    folders: Folders, batch_package: TinyPackage, batch_calls: List[int]
):
    """Fewer waiting inputs than BatchSize: no batch, so nothing waits for one to fill."""
    names = write_inputs(folders.input, 5)
    messages = run_once(folders, batch_package.model_dir, runtime="onnx", batch_size=8)
    assert sorted(by_input(messages)) == names
    assert batch_calls == [1] * 5


def test_an_input_that_does_not_decode_fails_alone_in_its_batch(
    folders: Folders, batch_package: TinyPackage, batch_calls: List[int]
):
    names = write_inputs(folders.input, 8)
    (folders.input / "in003.npy").write_bytes(b"not an array")
    messages = by_input(run_once(folders, batch_package.model_dir, runtime="onnx", batch_size=8))
    assert "error" in messages["in003.npy"]
    assert all("top" in messages[n] for n in names if n != "in003.npy")
    assert folders.names(folders.failed) == ["in003.npy", "in003.npy.error.json"]
    assert batch_calls == [7] + [1] * 7  # the seven that decoded, as one batch (checked)


def test_a_batch_the_runtime_refuses_is_run_input_by_input_and_batching_stops(
    folders: Folders, batch_package: TinyPackage, monkeypatch, caplog
):
    """Only the input that really fails is failed: the batch is retried one by one. A model
    that refuses one batch (its graph names a dynamic axis it cannot honour) is not batched
    again: the work would be done twice for every later batch (hostile review)."""
    real = OnnxRunner.run
    calls: List[int] = []

    def run(self: OnnxRunner, tensor: np.ndarray) -> np.ndarray:
        calls.append(int(tensor.shape[0]))
        if tensor.shape[0] > 1:
            raise RuntimeError("simulated runtime failure on a batch")
        if np.allclose(tensor, random_tensor(2)):
            raise RuntimeError("this input breaks the runtime")
        return real(self, tensor)

    monkeypatch.setattr(OnnxRunner, "run", run)
    names = write_inputs(folders.input, 24)
    with caplog.at_level(logging.WARNING):
        messages = by_input(
            run_once(folders, batch_package.model_dir, runtime="onnx", batch_size=8)
        )
    assert calls == [8] + [1] * 24
    assert "this input breaks the runtime" in messages["in002.npy"]["error"]
    assert all("top" in messages[n] for n in names if n != "in002.npy")
    assert caplog.text.count("a batch of 8 inputs failed") == 1


def _onnx_with_shapes(
    classifier, path: Path, input_batch, transpose_output: bool, softmax_axis: int = 1
) -> None:
    """The tiny graph with a chosen input batch axis, its output optionally classes-first."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("AveragePool", ["input0"], ["pooled"], kernel_shape=[8, 8],
                         strides=[8, 8]),
        helper.make_node("Flatten", ["pooled"], ["features"], axis=1),
        helper.make_node("Gemm", ["features", "weight", "bias"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["probs" if transpose_output else "output0"],
                         axis=softmax_axis),
    ]  # fmt: skip
    out_shape = [input_batch, 10]
    if transpose_output:
        nodes.append(helper.make_node("Transpose", ["probs"], ["output0"], perm=[1, 0]))
        out_shape = [10, input_batch]
    graph = helper.make_graph(
        nodes,
        "shapes",
        [helper.make_tensor_value_info("input0", TensorProto.FLOAT, [input_batch, 3, 32, 32])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, out_shape)],
        [
            numpy_helper.from_array(classifier.weight, "weight"),
            numpy_helper.from_array(classifier.bias, "bias"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


def _package_like(batch_package: TinyPackage, folder: Path, **shapes: Any) -> Path:
    folder.mkdir()
    for name in ("metadata.json", "labels.json"):
        (folder / name).write_bytes((batch_package.model_dir / name).read_bytes())
    _onnx_with_shapes(batch_package.classifier, folder / "model.onnx", **shapes)
    return folder


def test_an_output_with_a_fixed_first_axis_is_not_batched(
    folders: Folders, batch_package: TinyPackage, batch_calls: List[int], tmp_path: Path, caplog
):
    """Input axis dynamic, output ``[10, batch]`` (classes first): with BatchSize 10 its rows
    would be split as if they were inputs, giving each input another's scores (hostile
    review). Such a model runs one by one, with a warning at load."""
    model_dir = _package_like(
        batch_package, tmp_path / "transposed", input_batch="batch", transpose_output=True
    )
    with caplog.at_level(logging.WARNING):
        assert load_model(model_dir, "onnx").runner.max_batch == 1
    assert "the output's is fixed" in caplog.text
    names = write_inputs(folders.input, 20)
    batched = by_input(run_once(folders, model_dir, runtime="onnx", batch_size=10))
    assert set(batch_calls) == {1}
    write_inputs(tmp_path / "ref" / "input", 20)
    reference = by_input(
        run_once(Folders(tmp_path / "ref"), batch_package.model_dir, runtime="onnx")
    )
    assert sorted(batched) == names
    for name in names:  # the same weights: the same top-1 as the plain model
        assert batched[name]["top"][0]["index"] == reference[name]["top"][0]["index"], name


def test_a_model_whose_rows_depend_on_each_other_is_not_batched(
    tmp_path: Path, batch_package: TinyPackage, batch_calls: List[int], caplog
):
    """Found by the second hostile review: a softmax over the batch axis (or dynamic
    quantization, whose scale spans the whole batch) gave each input a result that depended on
    the files that arrived with it. The first batch of a model is checked against its inputs
    run alone; such a model keeps the inputs' own results and runs one by one from then on."""
    model_dir = _package_like(
        batch_package, tmp_path / "mixing", input_batch="batch", transpose_output=False,
        softmax_axis=0,
    )  # fmt: skip
    results = {}
    for size in (1, 8):
        folders = Folders(tmp_path / f"b{size}")
        write_inputs(folders.input, 24)
        batch_calls.clear()
        with caplog.at_level(logging.WARNING):
            results[size] = by_input(run_once(folders, model_dir, runtime="onnx", batch_size=size))
    assert batch_calls == [8] + [1] * 8 + [1] * 16  # one batch, checked, then one by one
    assert caplog.text.count("different result in a batch than alone") == 1
    for name, single in results[1].items():
        assert results[8][name]["top"] == single["top"], name


def test_a_model_whose_input_takes_exactly_four_is_refused_at_load(
    batch_package: TinyPackage, tmp_path: Path
):
    """A first axis fixed at 4 cannot run the one input the component decodes: every input
    would fail, or pass only when four happened to wait (hostile review)."""
    model_dir = _package_like(
        batch_package, tmp_path / "fixed4", input_batch=4, transpose_output=False
    )
    with pytest.raises(ModelError, match="first axis is fixed at 4"):
        load_model(model_dir, "onnx")


def test_once_waits_for_a_configuration_that_arrived_during_the_run(
    folders: Folders, batch_package: TinyPackage
):
    """With ``--once``, an update that interrupts a pass must be applied and the inputs still
    processed, not the run ended with the folder full (hostile review)."""
    names = write_inputs(folders.input, 30)
    service = make_service(folders, batch_package.model_dir, runtime="onnx")

    class Store:
        """Delivers an update on its first question: just after the pass began."""

        def __init__(self) -> None:
            self.asked = 0
            self.pending = None

        def has_pending(self) -> bool:
            self.asked += 1
            if self.asked == 1:
                self.pending = service.config.replace(batch_size=4)
            return self.pending is not None

        def take(self):
            config, self.pending = self.pending, None
            return config

    service.store = Store()  # type: ignore[assignment]
    service.run(once=True)
    assert service.config.batch_size == 4
    assert_all_processed_once(folders, names)


def test_a_model_with_a_fixed_batch_axis_runs_one_by_one_and_says_so(
    folders: Folders, dual_package: TinyPackage, batch_calls: List[int], caplog
):
    names = write_inputs(folders.input, 10)
    with caplog.at_level(logging.WARNING):
        messages = run_once(folders, dual_package.model_dir, runtime="onnx", batch_size=4)
    assert sorted(by_input(messages)) == names
    assert batch_calls == [1] * 10
    assert caplog.text.count("takes one input per run") == 1


def test_neo_models_keep_batch_one(dual_package: TinyPackage):
    assert load_model(dual_package.model_dir, "dlr").runner.max_batch == 1
    assert load_model(dual_package.model_dir, "onnx").runner.max_batch == 1


@pytest.mark.parametrize(
    ("shape", "limit"),
    [(["batch", 3, 8, 8], None), ([None, 3, 8, 8], None), ([4, 3, 8, 8], 4), ([1, 3], 1)],
)
def test_batch_limit_reads_the_first_axis(shape, limit):
    """ONNX Runtime's ``NodeArg.shape``: a named (symbolic) dimension is a str, an unnamed
    one None, a fixed one an int (onnxruntime Python API, ``NodeArg``)."""
    assert batch_limit(shape) == limit


def test_a_crash_while_recording_a_batch_loses_and_repeats_nothing(
    folders: Folders, batch_package: TinyPackage, monkeypatch
):
    """The process dies after three of a batch's eight results are recorded: those three are
    moved on, not run again; the other five run on the next start."""
    names = write_inputs(folders.input, 16)
    first = RecordingPublisher()
    real = Spool.complete
    recorded: List[str] = []

    def complete(self: Spool, claim, message, **kwargs):
        if len(recorded) == 3:
            raise Crash
        recorded.append(claim.name)
        return real(self, claim, message, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(Spool, "complete", complete)
        with pytest.raises(Crash):
            run_once(
                folders, batch_package.model_dir, runtime="onnx", batch_size=8,
                publisher=first, prefetch=False,
            )  # fmt: skip
    assert len(folders.names(folders.in_progress)) >= 5

    second = RecordingPublisher()
    run_once(folders, batch_package.model_dir, runtime="onnx", batch_size=8, publisher=second)

    assert_all_processed_once(folders, names)
    published = Counter(m["input"] for m in first.messages + second.messages)
    assert published == {name: 1 for name in names}


def test_inputs_of_a_batch_that_crashed_the_process_run_alone_next_time(
    folders: Folders, batch_package: TinyPackage, monkeypatch, batch_calls: List[int]
):
    """A crash inside the batch's run counts an attempt for each of its inputs; on the next
    start they run one by one, so an input that crashes the runtime cannot take the others
    with it until they fail too."""
    names = write_inputs(folders.input, 8)
    real = OnnxRunner.run

    def crash_on_batches(self: OnnxRunner, tensor: np.ndarray) -> np.ndarray:
        if tensor.shape[0] > 1:
            raise Crash
        return real(self, tensor)

    with monkeypatch.context() as patch:
        patch.setattr(OnnxRunner, "run", crash_on_batches)
        with pytest.raises(Crash):
            run_once(folders, batch_package.model_dir, runtime="onnx", batch_size=8)
    batch_calls.clear()

    messages = by_input(run_once(folders, batch_package.model_dir, runtime="onnx", batch_size=8))

    assert sorted(messages) == names and all("top" in m for m in messages.values())
    assert batch_calls == [1] * 8
    assert_all_processed_once(folders, names)


def test_sigkill_mid_batch_then_restart_loses_nothing_and_runs_nothing_twice(
    folders: Folders, batch_package: TinyPackage
):
    names = write_inputs(folders.input, 400)
    sigkill_then_restart(
        folders, batch_package.model_dir, names, "--runtime", "onnx", "--batch-size", "8",
        kill_after=20,
    )  # fmt: skip


def test_the_active_record_holds_a_whole_batch_and_the_input_decoded_beside_it(
    tmp_path: Path,
):
    """An id left out of ``state/active`` would make a crash uncounted for that input."""
    record = ActiveRecord(tmp_path / "active")
    record.open()
    ids = [f"{i:016x}" for i in range(int(settings.setting("BatchSize").high or 0) + 1)]
    record.add(*ids)
    assert record.read() == set(ids)
    record.discard(*ids[:5])
    assert record.read() == set(ids[5:])
    record.close()
    assert (tmp_path / "active").stat().st_size == _ACTIVE_BYTES


@pytest.mark.parametrize("value", [0, 33, "eight", 2.5, True, "1_6", "\u0668", "8.5", "0x8"])
def test_batch_size_out_of_bounds_is_refused_naming_the_key(
    folders: Folders, batch_package: TinyPackage, value
):
    base = make_config(folders, batch_package.model_dir)
    with pytest.raises(ConfigError, match="BatchSize"):
        merge_config(base, {"BatchSize": value}, cwd=folders.root)


@pytest.mark.parametrize(("value", "expected"), [("8", 8), (" 8.0 ", 8), (8.0, 8), ("+4", 4)])
def test_batch_size_as_json_or_a_shell_writes_it(
    folders: Folders, batch_package: TinyPackage, value, expected
):
    base = make_config(folders, batch_package.model_dir)
    assert merge_config(base, {"BatchSize": value}, cwd=folders.root).batch_size == expected


def test_inference_threads_reach_onnx_runtime_and_a_change_reloads_the_model(
    folders: Folders, batch_package: TinyPackage
):
    base = make_config(folders, batch_package.model_dir, runtime="onnx")
    assert merge_config(base, {"InferenceThreads": "2"}, cwd=folders.root).inference_threads == 2
    with pytest.raises(ConfigError, match="InferenceThreads"):
        merge_config(base, {"InferenceThreads": -1}, cwd=folders.root)
    assert load_model(batch_package.model_dir, "onnx", threads=1).runner.threads == 1

    loads: List[int] = []

    def loader(model_dir: Path, runtime: str, threads: int):
        loads.append(threads)
        return load_model(model_dir, runtime, threads=threads)

    service = make_service(folders, batch_package.model_dir, runtime="onnx")
    service._load_model = loader

    class Store:
        def __init__(self, config):
            self.config = config

        def take(self):
            config, self.config = self.config, None
            return config

    service.store = Store(service.config.replace(inference_threads=1))  # type: ignore[assignment]
    service._apply_new_config()
    assert loads == [1] and service.model.runner.threads == 1
    service.store = Store(service.config.replace(batch_size=4))  # type: ignore[assignment]
    service._apply_new_config()
    assert loads == [1] and service.config.batch_size == 4  # no reload for BatchSize


def test_threads_follow_the_cores_the_process_may_use(batch_package: TinyPackage):
    """InferenceThreads 0: one intra-op thread per core in the process's affinity mask (what
    ``taskset`` or a container's CPU set leaves it), not every core of the machine."""
    script = (
        "import os, sys; from pathlib import Path\n"
        "os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})\n"
        "from edge_inference.model import load_model, usable_cores\n"
        "runner = load_model(Path(sys.argv[1]), 'onnx').runner\n"
        "print(usable_cores(), runner.threads)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(batch_package.model_dir)],
        env=component_env(), capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert result.stdout.split() == ["1", "1"]


def test_inference_threads_on_a_dlr_model_says_it_is_not_applied(dual_package: TinyPackage, caplog):
    with caplog.at_level(logging.WARNING):
        load_model(dual_package.model_dir, "dlr", threads=2)
    assert "InferenceThreads 2 is not applied" in caplog.text


@pytest.mark.parametrize("value", ["\u0668", "1_6", "0x8"])
def test_integer_flags_take_what_configuration_keys_take(value: str):
    """``--batch-size 1_6`` was 16 through argparse's ``int`` while the key refused it."""
    from edge_inference.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["--model-dir", "m", "--batch-size", value])
