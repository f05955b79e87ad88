"""Helpers for the inference component's tests (``component_src/edge_inference``).

The component ships as the folder ``component_src`` on ``PYTHONPATH``; the tests import it the
same way. Subprocess tests run it with ``cwd`` outside ``component_src``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
COMPONENT_SRC = ROOT / "component_src"
# The device's PYTHONPATH is the unarchived zip: edge_inference/ and device_contract/ side by side
# (edge_constructs/bundles.py); here they are component_src/ and the repository root.
COMPONENT_PATH = os.pathsep.join([str(COMPONENT_SRC), str(ROOT)])
if str(COMPONENT_SRC) not in sys.path:
    sys.path.insert(0, str(COMPONENT_SRC))

from edge_inference.config import Config  # noqa: E402
from edge_inference.model import load_model  # noqa: E402
from edge_inference.service import InferenceService  # noqa: E402
from edge_inference.spool import Spool  # noqa: E402

from stand_ins.neo_model import TinyClassifier, build_tiny_classifier  # noqa: E402

TINY_SHAPE = (1, 3, 32, 32)
NUM_CLASSES = 10


@dataclasses.dataclass(frozen=True)
class TinyPackage:
    """A model package (``docs/CONTRACTS.md``) around the tiny Neo-layout model."""

    model_dir: Path  # holds metadata.json, labels.json and model/
    classifier: TinyClassifier
    labels: Dict[int, str]


@pytest.fixture(scope="session")
def tiny_package(tmp_path_factory: pytest.TempPathFactory) -> TinyPackage:
    model_dir = tmp_path_factory.mktemp("tiny_package")
    classifier = build_tiny_classifier(model_dir / "model", input_shape=TINY_SHAPE)
    labels = {i: f"class-{i}" for i in range(NUM_CLASSES)}
    (model_dir / "labels.json").write_text(json.dumps({str(k): v for k, v in labels.items()}))
    metadata = {"schema_version": 1, "model_id": "tiny-neo-1", "input_shape": list(TINY_SHAPE)}
    (model_dir / "metadata.json").write_text(json.dumps(metadata))
    return TinyPackage(model_dir=model_dir, classifier=classifier, labels=labels)


def write_tiny_onnx(classifier: TinyClassifier, path: Path, batch: Any = 1) -> None:
    """The tiny classifier's graph as ONNX (4x4 average pooling, dense, softmax). ``batch``:
    the batch axis, a number or a name (a dynamic axis, as ``torch.onnx.export`` writes for
    ``dynamic_axes``)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    _, _, h, w = classifier.input_shape
    assert h % 4 == 0 and w % 4 == 0, "AveragePool equals adaptive pooling only then"
    nodes = [
        helper.make_node("AveragePool", ["input0"], ["pooled"], kernel_shape=[h // 4, w // 4],
                         strides=[h // 4, w // 4]),
        helper.make_node("Flatten", ["pooled"], ["features"], axis=1),
        helper.make_node("Gemm", ["features", "weight", "bias"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["output0"], axis=1),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input0", TensorProto.FLOAT, [batch, 3, h, w])],
        [
            helper.make_tensor_value_info(
                "output0", TensorProto.FLOAT, [batch, classifier.num_classes]
            )
        ],
        [
            numpy_helper.from_array(classifier.weight, "weight"),
            numpy_helper.from_array(classifier.bias, "bias"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


@pytest.fixture(scope="session")
def dual_package(tmp_path_factory: pytest.TempPathFactory) -> TinyPackage:
    """The tiny model for both runtimes: Neo files and ``model.onnx`` in ``model/``."""
    model_dir = tmp_path_factory.mktemp("dual_package")
    classifier = build_tiny_classifier(model_dir / "model", input_shape=TINY_SHAPE, seed=1)
    write_tiny_onnx(classifier, model_dir / "model" / "model.onnx")
    metadata = {"model_id": "tiny-dual-1", "input_shape": list(TINY_SHAPE)}
    (model_dir / "metadata.json").write_text(json.dumps(metadata))
    return TinyPackage(model_dir=model_dir, classifier=classifier, labels={})


@pytest.fixture(scope="session")
def batch_package(tmp_path_factory: pytest.TempPathFactory) -> TinyPackage:
    """The tiny model as ONNX with a dynamic batch axis (``BatchSize`` batches it)."""
    model_dir = tmp_path_factory.mktemp("batch_package")
    classifier = build_tiny_classifier(model_dir / "neo", input_shape=TINY_SHAPE, seed=2)
    write_tiny_onnx(classifier, model_dir / "model.onnx", batch="batch")
    labels = {i: f"class-{i}" for i in range(NUM_CLASSES)}
    (model_dir / "labels.json").write_text(json.dumps([labels[i] for i in range(NUM_CLASSES)]))
    metadata = {"model_id": "tiny-batch-1", "input_shape": list(TINY_SHAPE)}
    (model_dir / "metadata.json").write_text(json.dumps(metadata))
    return TinyPackage(model_dir=model_dir, classifier=classifier, labels=labels)


@dataclasses.dataclass(frozen=True)
class Folders:
    root: Path

    @property
    def input(self) -> Path:
        return self.root / "input"

    @property
    def processed(self) -> Path:
        return self.root / "processed"

    @property
    def failed(self) -> Path:
        return self.root / "failed"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def in_progress(self) -> Path:
        return self.state / "in-progress"

    @property
    def outbox(self) -> Path:
        return self.state / "outbox"

    def names(self, folder: Path) -> List[str]:
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


@pytest.fixture
def folders(tmp_path: Path) -> Folders:
    result = Folders(tmp_path / "work")
    result.input.mkdir(parents=True)
    return result


class RecordingPublisher:
    """Publisher that keeps every message; fails the first ``fail_first`` calls."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.calls = 0
        self.messages: List[Dict[str, Any]] = []
        self.lock = threading.Lock()

    def publish(self, message: Dict[str, Any]) -> None:
        with self.lock:
            self.calls += 1
            if self.calls <= self.fail_first:
                raise ConnectionError(f"simulated publish failure {self.calls}")
            self.messages.append(message)


def make_config(folders: Folders, model_dir: Path, **changes: Any) -> Config:
    base = Config(
        model_dir=model_dir,
        input_dir=folders.input,
        processed_dir=folders.processed,
        failed_dir=folders.failed,
        settle_seconds=0.0,
        poll_interval=0.05,
    )
    return base.replace(**changes)


def make_service(
    folders: Folders,
    model_dir: Path,
    *,
    runtime: str = "dlr",
    publisher: Optional[RecordingPublisher] = None,
    stop: Optional[threading.Event] = None,
    retry_backoff: Any = (0.05, 0.2),
    prefetch: bool = True,
    **changes: Any,
) -> InferenceService:
    """The service over ``folders`` with a recording publisher and fast publish retries."""
    return InferenceService(
        config=make_config(folders, model_dir, runtime=runtime, **changes),
        model=load_model(model_dir, runtime),
        spool=Spool(folders.state),
        publisher=publisher or RecordingPublisher(),
        stop=stop or threading.Event(),
        retry_backoff=retry_backoff,
        prefetch=prefetch,
    )


def run_once(
    folders: Folders,
    model_dir: Path,
    *,
    runtime: str = "dlr",
    publisher: Optional[RecordingPublisher] = None,
    **changes: Any,
) -> List[Dict[str, Any]]:
    """Run the service in-process over the input folder until it is empty; the messages."""
    publisher = publisher or RecordingPublisher()
    service = make_service(folders, model_dir, runtime=runtime, publisher=publisher, **changes)
    service.run(once=True)
    return publisher.messages


def wait_for(predicate: Any, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def component_env() -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = COMPONENT_PATH
    env.pop("AWS_IOT_THING_NAME", None)
    return env


def run_cli(args: List[str], *, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m edge_inference ARGS`` the way Greengrass runs it (PYTHONPATH, other cwd)."""
    return subprocess.run(
        [sys.executable, "-u", "-m", "edge_inference", *args],
        cwd=str(cwd),
        env=component_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def json_lines(stdout: str) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def random_tensor(seed: int, shape: Any = TINY_SHAPE) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def photo(seed: int, size: Any = (96, 72)) -> Image.Image:
    """A smooth synthetic colour image (gradients and a blob), reproducible per seed."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
    blob = np.exp(-(((xx - cx) / (0.2 * w)) ** 2 + ((yy - cy) / (0.2 * h)) ** 2))
    channels = []
    for _ in range(3):
        a, b = rng.uniform(-1, 1, 2)
        channel = 0.5 + 0.25 * (a * xx / w + b * yy / h) + rng.uniform(-0.5, 0.5) * blob
        channels.append(channel)
    rgb = np.clip(np.stack(channels, axis=-1), 0, 1)
    return Image.fromarray((rgb * 255).astype(np.uint8))


def encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def sigkill_then_restart(
    folders: Folders, model_dir: Path, names: List[str], *flags: str, kill_after: int = 10
) -> None:
    """Run the component over ``folders.input`` (holding ``names``), SIGKILL it once
    ``kill_after`` inputs are processed, run it again with ``--once``: every input ends up
    processed exactly once, and its result is printed once (at most one twice: a kill between
    printing a result and deleting it repeats that one, at least once by design)."""
    import signal
    from collections import Counter

    args = [
        sys.executable, "-u", "-m", "edge_inference",
        "--model-dir", str(model_dir),
        "--input-dir", str(folders.input),
        "--settle-seconds", "0",
        "--poll-interval", "0.05",
        *flags,
    ]  # fmt: skip
    env = component_env()
    first = subprocess.Popen(
        args, cwd=folders.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert wait_for(lambda: len(folders.names(folders.processed)) >= kill_after, timeout=60)
    first.send_signal(signal.SIGKILL)
    first_out, _ = first.communicate(timeout=10)
    assert len(folders.names(folders.processed)) < len(names), "finished before the kill"

    second = subprocess.run(
        [*args, "--once"], cwd=folders.root, env=env, capture_output=True, text=True, timeout=120
    )
    assert second.returncode == 0, second.stderr

    assert folders.names(folders.processed) == sorted(names)
    for folder in (folders.input, folders.in_progress, folders.outbox):
        assert folders.names(folder) == [], folder
    printed = Counter(m["input"] for m in json_lines(first_out.decode()))
    printed.update(m["input"] for m in json_lines(second.stdout))
    assert set(printed) == set(names)
    assert sum(printed.values()) - len(names) <= 1
