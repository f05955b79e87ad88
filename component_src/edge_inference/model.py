"""The model package (``docs/CONTRACTS.md``): metadata, labels, and the runtime that runs it.

``--model-dir`` is the folder holding ``metadata.json`` and ``labels.json`` (both optional). The
runtime files are in ``<model-dir>/model/`` when that folder exists, else in ``<model-dir>``
itself: Neo's output for DLR, ``model.onnx`` for ONNX Runtime. ``dlr`` and ``onnxruntime`` are
imported only when a model for them is loaded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import logging
import os
import platform
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

LOG = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ModelError(Exception):
    """The model folder cannot be used; the message says why."""


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """``metadata.json``, with the contract's defaults filled in."""

    model_id: str
    input_name: str = "input0"
    input_shape: Tuple[int, int, int, int] = (1, 3, 224, 224)
    layout: str = "NCHW"
    channel_order: str = "RGB"
    scale: float = 1.0 / 255.0
    mean: Tuple[float, float, float] = IMAGENET_MEAN
    std: Tuple[float, float, float] = IMAGENET_STD
    resize_shorter: int = 256

    @property
    def height(self) -> int:
        return self.input_shape[2] if self.layout == "NCHW" else self.input_shape[1]

    @property
    def width(self) -> int:
        return self.input_shape[3] if self.layout == "NCHW" else self.input_shape[2]


def runtime_dir(model_dir: Path) -> Path:
    """Where the runtime files are: ``<model-dir>/model`` if present, else ``<model-dir>``."""
    nested = model_dir / "model"
    return nested if nested.is_dir() else model_dir


def read_metadata(model_dir: Path) -> ModelInfo:
    """Parse ``metadata.json`` (all keys optional); raise :class:`ModelError` if it is invalid."""
    path = model_dir / "metadata.json"
    raw: Dict[str, Any] = {}
    if path.is_file():
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ModelError(f"cannot read {path}: {err}") from err
        if not isinstance(raw, dict):
            raise ModelError(f"{path} must hold a JSON object")
    try:
        return _metadata_from_dict(raw, default_id=model_dir.resolve().name)
    except (TypeError, ValueError) as err:
        raise ModelError(f"invalid {path}: {err}") from err


def _triple(value: Sequence[Any], name: str) -> Tuple[float, float, float]:
    if len(value) != 3:
        raise ValueError(f"{name} must have 3 values, got {len(value)}")
    result = tuple(float(v) for v in value)
    return result[0], result[1], result[2]


def _metadata_from_dict(raw: Dict[str, Any], *, default_id: str) -> ModelInfo:
    layout = str(raw.get("layout", "NCHW")).upper()
    if layout not in ("NCHW", "NHWC"):
        raise ValueError(f"layout must be NCHW or NHWC, got {layout}")
    shape = tuple(int(v) for v in raw.get("input_shape", (1, 3, 224, 224)))
    channels = shape[1] if layout == "NCHW" else shape[-1]
    if len(shape) != 4 or shape[0] != 1 or channels != 3 or min(shape) < 1:
        raise ValueError(f"input_shape must be batch 1 with 3 channels ({layout}), got {shape}")
    order = str(raw.get("channel_order", "RGB")).upper()
    if order not in ("RGB", "BGR"):
        raise ValueError(f"channel_order must be RGB or BGR, got {order}")
    std = _triple(raw.get("std", IMAGENET_STD), "std")
    if min(abs(s) for s in std) == 0:
        raise ValueError("std must not contain 0")
    height, width = (shape[2], shape[3]) if layout == "NCHW" else (shape[1], shape[2])
    resize_shorter = int(raw.get("resize_shorter", round(height * 256 / 224)))
    if resize_shorter < max(height, width):
        raise ValueError(
            f"resize_shorter {resize_shorter} is smaller than the input size {height}x{width}"
        )
    return ModelInfo(
        model_id=str(raw.get("model_id") or default_id),
        input_name=str(raw.get("input_name", "input0")),
        input_shape=(shape[0], shape[1], shape[2], shape[3]),
        layout=layout,
        channel_order=order,
        scale=float(raw.get("scale", 1.0 / 255.0)),
        mean=_triple(raw.get("mean", IMAGENET_MEAN), "mean"),
        std=std,
        resize_shorter=resize_shorter,
    )


def read_labels(model_dir: Path) -> Dict[int, str]:
    """``labels.json``: ``{"0": "cat", ...}`` or ``["cat", ...]``; empty when absent."""
    path = model_dir / "labels.json"
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ModelError(f"cannot read {path}: {err}") from err
    try:
        if isinstance(raw, list):
            return {i: str(name) for i, name in enumerate(raw)}
        if isinstance(raw, dict):
            return {int(key): str(name) for key, name in raw.items()}
    except ValueError as err:
        raise ModelError(f"{path}: keys must be class indices as decimal strings") from err
    raise ModelError(f"{path} must hold a JSON object or list")


def check_model_files(model_dir: Path, runtime: str) -> Path:
    """The path the runtime loads; :class:`ModelError` if the folder has no model for it."""
    if not model_dir.is_dir():
        raise ModelError(f"model dir {model_dir} does not exist or is not a folder")
    folder = runtime_dir(model_dir)
    if runtime == "onnx":
        path = folder / ONNX_FILE
        if not path.is_file():
            raise ModelError(f"no {ONNX_FILE} in {folder} (needed for runtime onnx)")
        return path
    if runtime == "dlr":
        names = os.listdir(folder)
        if not any(n.endswith((".so", ".ro")) and n != "libdlr.so" for n in names):
            raise ModelError(f"no DLR model (compiled .so) in {folder} (needed for runtime dlr)")
        stray = sorted(n for n in names if n.endswith(".json") and n != "compiled_model.json")
        if "compiled_model.json" in names and stray:
            raise ModelError(
                f"DLR model folder {folder} also holds {', '.join(stray)}: DLR fails on any "
                "extra .json there; keep labels.json/metadata.json beside a model/ folder"
            )
        return folder
    raise ModelError(f"unknown runtime {runtime!r}")


class DlrRunner:
    """A Neo-compiled model under DLR. ``dlr`` is imported here, after phone-home is off."""

    name = "dlr"

    def __init__(self, folder: Path, input_name: str) -> None:
        if "dlr" not in sys.modules:  # switching it off after the import would be too late
            from edge_inference.dlr_phone_home import disable_phone_home

            disable_phone_home()
        import dlr

        kwargs: Dict[str, Any] = {}
        if "use_default_dlr" in inspect.signature(dlr.DLRModel.__init__).parameters:
            # dlr>=1.7 is pure Python: it must load the libdlr.so Neo ships in the folder.
            # 1.6 uses that one too when present, else its own bundled libdlr.so.
            kwargs["use_default_dlr"] = False
        try:
            self._model = dlr.DLRModel(str(folder), "cpu", 0, **kwargs)
        except Exception as err:  # DLRError carries no message; the reason went to stderr
            raise ModelError(f"DLR cannot load {folder}: {type(err).__name__}: {err}") from err
        names: List[str] = list(self._model.get_input_names())
        self.input_name = _pick_input(names, input_name)
        # Neo compiles for the input shape it was given (the compilation job's
        # DataInputConfig, batch 1 here): a compiled model has no dynamic batch axis.
        self.max_batch: Optional[int] = 1

    def run(self, tensor: np.ndarray) -> np.ndarray:
        outputs = self._model.run({self.input_name: tensor})
        return np.asarray(outputs[0])


# Optimized models kept in the cache folder (the newest by use): the current model, and the
# ones a rollback or a canary switch would load next.
OPTIMIZED_KEEP = 3


def optimized_model_path(cache_dir: Path, model: Path, ort_version: str) -> Path:
    """Where the optimized form of ``model`` is cached: keyed by the model's bytes, the ONNX
    Runtime version and the machine, since an ``ORT_ENABLE_ALL`` graph holds layout and
    kernel choices for the hardware and the runtime that made it (ONNX Runtime docs, "Graph
    Optimizations", Online/Offline mode: use the optimized model with "the exact same options
    ... and hardware")."""
    digest = hashlib.sha256()
    with model.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    machine = f"{platform.machine()}|{_cpu_flags()}"
    digest.update(f"|ort={ort_version}|machine={machine}|ORT_ENABLE_ALL".encode())
    return cache_dir / f"{digest.hexdigest()[:32]}.onnx"


def _cpu_flags() -> str:
    """The CPU's model name and instruction-set flags (``/proc/cpuinfo``): ONNX Runtime picks
    NCHWc block sizes and kernels for the CPU it runs on, so a disk image moved to another CPU
    must not load a graph optimized on this one."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return "unknown"
    wanted = ("model name", "flags", "Features", "CPU part")
    lines = {}
    for line in text.splitlines():
        key = line.split(":", 1)[0].strip()
        if key in wanted and key not in lines:
            lines[key] = line
    joined = "\n".join(lines.get(k, "") for k in wanted)
    return hashlib.sha256(joined.encode()).hexdigest()[:16]


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _discard(path: Path) -> None:
    """Remove a partial file if it can be: what is left is removed by the next prune."""
    try:
        path.unlink(missing_ok=True)
    except OSError as err:
        LOG.warning("cannot remove %s: %s", path, err)


def _intact(cached: Path) -> bool:
    """The cached graph is byte for byte what was written: its ``.sha256`` sidecar (written
    after it) names its digest. A file damaged in place (a bad block, a bit flip) can still
    parse and compute wrong scores, so parsing is not enough."""
    try:
        return cached.with_suffix(".sha256").read_text().strip() == _file_sha256(cached)
    except OSError:
        return False


def _prune(cache_dir: Path, keep: Path) -> None:
    """At most :data:`OPTIMIZED_KEEP` cached models, ``keep`` among them: the cache is bounded."""
    try:
        cached = sorted(
            (p for p in cache_dir.glob("*.onnx") if p != keep),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
    except OSError:
        return
    try:
        for stale in cached[OPTIMIZED_KEEP - 1 :]:
            stale.unlink(missing_ok=True)
            stale.with_suffix(".sha256").unlink(missing_ok=True)
        for partial in cache_dir.glob(".*.partial"):  # left by a crash or a full disk
            _discard(partial)
    except OSError as err:  # a read-only folder: the cache stays as it is
        LOG.warning("cannot prune the optimized models in %s: %s", cache_dir, err)


class OnnxRunner:
    """``model.onnx`` under ONNX Runtime, on CPU, tuned for batch-1 latency; a model with a
    dynamic batch axis (``max_batch`` None) also takes a batch in one run.

    Cold start: with ``cache_dir``, the first load optimizes the graph (``ORT_ENABLE_ALL``) and
    ONNX Runtime writes the result (``SessionOptions.optimized_model_filepath``); a later load
    of the same model (the next boot, a restart) opens that file with graph optimizations off.
    This is ONNX Runtime's "offline mode": "we can reduce startup time by using the already
    optimized model and disabling all optimizations" (docs, "Graph Optimizations in ONNX
    Runtime", Online/offline mode). A cached file that does not load is deleted and the model
    optimized again. ``startup`` says which happened (``optimized``, ``cached``, ``uncached``).
    """

    name = "onnx"

    def __init__(
        self,
        path: Path,
        input_name: str,
        threads: Optional[int] = None,
        cache_dir: Optional[Path] = None,
    ) -> None:
        import onnxruntime as ort

        def options(level: Any) -> Any:
            opts = ort.SessionOptions()
            opts.graph_optimization_level = level
            opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            opts.inter_op_num_threads = 1
            # One intra-op thread per core: the preprocessing thread overlaps with inference,
            # so threads must not spin-wait on cores it needs between runs.
            opts.intra_op_num_threads = threads or usable_cores()
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            opts.log_severity_level = 3
            return opts

        def session(model: Path, opts: Any) -> Any:
            return ort.InferenceSession(
                str(model), sess_options=opts, providers=["CPUExecutionProvider"]
            )

        self._session: Any = None
        self.startup = "uncached"
        cached = None
        if cache_dir is not None:
            try:
                cached = optimized_model_path(cache_dir, path, ort.__version__)
            except OSError as err:
                raise ModelError(f"cannot read {path}: {err}") from err
            if cached.is_file() and not _intact(cached):
                LOG.warning("optimized model %s is damaged; optimizing again", cached)
                cached.unlink(missing_ok=True)
            elif cached.is_file():
                try:
                    self._session = session(
                        cached, options(ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
                    )
                    self.startup = "cached"
                    os.utime(cached)  # most recently used: kept by _prune
                except Exception as err:  # a foreign file: optimize again
                    LOG.warning(
                        "optimized model %s does not load (%s); optimizing again", cached, err
                    )
                    cached.unlink(missing_ok=True)
        if self._session is None:
            full = options(ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
            partial = None
            if cached is not None:
                try:
                    cached.parent.mkdir(parents=True, exist_ok=True)
                    partial = cached.with_name(f".{cached.stem}.{os.getpid()}.partial")
                    full.optimized_model_filepath = str(partial)
                except OSError as err:  # a full or read-only disk: run without the cache
                    LOG.warning("cannot cache the optimized model in %s: %s", cached.parent, err)
            try:
                self._session = session(path, full)
            except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph types
                if partial is None:
                    raise ModelError(f"ONNX Runtime cannot load {path}: {err}") from err
                # Writing the optimized graph failed (a full disk, a read-only folder): the
                # cache is an optimization, so the model loads without it.
                LOG.warning("cannot write %s (%s); loading the model uncached", partial, err)
                _discard(partial)
                partial = None
                try:
                    self._session = session(
                        path, options(ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
                    )
                except Exception as again:
                    raise ModelError(f"ONNX Runtime cannot load {path}: {again}") from again
            if cached is not None and partial is not None:
                sidecar = cached.with_suffix(".sha256")
                try:
                    sidecar.unlink(missing_ok=True)
                    os.replace(partial, cached)  # whole or absent: never half a model
                    sidecar.write_text(_file_sha256(cached) + "\n")  # last: marks it complete
                    self.startup = "optimized"
                    _prune(cached.parent, cached)
                except OSError as err:
                    LOG.warning("cannot cache the optimized model at %s: %s", cached, err)
                    _discard(partial)
        LOG.info("ONNX model %s: %s start", path, self.startup)
        names = [i.name for i in self._session.get_inputs()]
        self.input_name = _pick_input(names, input_name)
        shape = self._session.get_outputs()[0].shape
        # the class axis, when the graph states it (a symbolic one is a str, e.g. "batch")
        self.classes = shape[-1] if shape and isinstance(shape[-1], int) else None
        self.max_batch = batching_of(
            path, self._session.get_inputs()[0].shape, self._session.get_outputs()[0].shape
        )
        self.threads = threads or usable_cores()

    def run(self, tensor: np.ndarray) -> np.ndarray:
        outputs = self._session.run(None, {self.input_name: tensor})
        return np.asarray(outputs[0])


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, which ``taskset`` and
    container CPU sets narrow), else the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def batch_limit(shape: Sequence[Any]) -> Optional[int]:
    """How many inputs one run of a graph input of ``shape`` takes: ``None`` (any number) when
    its first axis is symbolic, else that axis's fixed size. ``shape`` is ONNX Runtime's
    ``NodeArg.shape`` ("node shape", onnxruntime 1.32's Python API): a fixed dimension is an
    ``int``, a named one (ONNX ``dim_param``, what ``torch.onnx.export``'s ``dynamic_axes``
    writes) its name as a ``str``, an unknown one ``None``; the installed runtime is held to
    that by tests/training/test_trained_model.py (``["batch", 3, 32, 32]``) and
    tests/component/test_batching.py."""
    if not shape:
        return 1
    first = shape[0]
    return first if isinstance(first, int) and first > 0 else None


def batching_of(
    path: Path, input_shape: Sequence[Any], output_shape: Sequence[Any]
) -> Optional[int]:
    """How many inputs one run takes: ``None`` (a batch of any size) when the first axis of
    both the input and the output is dynamic, else 1. A first input axis fixed at any other
    size cannot run the one input the component decodes: :class:`ModelError`. An output whose
    first axis is fixed (classes first, say) is not batched even if its input's axis is
    dynamic: splitting it by rows would give each input another input's scores."""
    taken = batch_limit(input_shape)
    if taken is not None and taken != 1:
        raise ModelError(
            f"{path.name}: its input's first axis is fixed at {taken}, but the component runs "
            "one input per call (or a batch of any size on a dynamic axis); export it with a "
            "batch of 1 or a dynamic batch axis"
        )
    if taken is None and batch_limit(output_shape) is not None:
        LOG.warning(
            "%s: the input's first axis is dynamic but the output's is fixed (%s): not "
            "batching its inputs",
            path.name,
            list(output_shape),
        )
        return 1
    return taken


def _pick_input(names: List[str], wanted: str) -> str:
    if wanted in names:
        return wanted
    if len(names) == 1:
        LOG.info("model input is %r (metadata says %r); using %r", names[0], wanted, names[0])
        return names[0]
    raise ModelError(f"model has inputs {names}, none is metadata's input_name {wanted!r}")


def to_probabilities(output: np.ndarray) -> np.ndarray:
    """Scores as probabilities: the output itself when it already is a distribution (all in
    [0, 1], summing to 1), else its softmax (the output is logits)."""
    scores = np.asarray(output, dtype=np.float64).reshape(-1)
    in_unit_range = scores.size > 0 and scores.min() >= 0.0 and scores.max() <= 1.0
    if in_unit_range and abs(float(scores.sum()) - 1.0) < 1e-3:
        return scores
    shifted = np.exp(scores - scores.max())
    probabilities: np.ndarray = shifted / shifted.sum()
    return probabilities


@dataclasses.dataclass
class LoadedModel:
    """A model ready to run: metadata, labels, and the runtime."""

    model_dir: Path
    info: ModelInfo
    labels: Dict[int, str]
    runner: Any  # DlrRunner | OnnxRunner

    @property
    def runtime(self) -> str:
        return str(self.runner.name)

    def top_k(self, output: np.ndarray, k: int) -> List[Dict[str, Any]]:
        """The ``k`` best classes: ``[{"index", "label", "score"}, ...]``, best first."""
        probs = to_probabilities(output)
        order = np.argsort(-probs, kind="stable")[: max(1, k)]
        return [
            {
                "index": int(i),
                "label": self.labels.get(int(i), str(int(i))),
                "score": round(float(probs[i]), 6),
            }
            for i in order
        ]


def check_labels(labels: Dict[int, str], classes: Optional[int], target: Path) -> None:
    """``labels.json`` names one class per score the model outputs, in order: with fewer
    names, a result would show some classes by number, and with more, names no score has
    (issue 18: 3 names for a 4-class model were accepted). Checked where the model states its
    class count (an ONNX graph's output shape); no labels at all means numbered classes."""
    if not labels or classes is None or len(labels) == classes:
        return
    raise ModelError(
        f"labels.json names {len(labels)} classes but {target.name} outputs {classes} scores: "
        "give one name per output, in the model's order"
    )


def load_model(
    model_dir: Path, runtime: str, cache_dir: Optional[Path] = None, threads: int = 0
) -> LoadedModel:
    """Load the model once; raises :class:`ModelError` with the reason. ``cache_dir``: where
    an ONNX model's optimized graph is kept between loads (:class:`OnnxRunner`); DLR loads
    Neo's already-compiled library and has nothing to cache. ``threads``: ONNX Runtime's
    intra-op threads (0: :func:`usable_cores`); DLR runs on TVM's own thread pool."""
    target = check_model_files(model_dir, runtime)
    info = read_metadata(model_dir)
    labels = read_labels(model_dir)
    runner: Any
    if runtime == "dlr":
        if threads:
            # TVM sizes its pool once per process from TVM_NUM_THREADS (else OMP_NUM_THREADS,
            # else the hardware's concurrency): apache/tvm src/runtime/threading_backend.cc,
            # MaxConcurrency(); DLR embeds that runtime.
            LOG.warning(
                "InferenceThreads %d is not applied: DLR runs the model on TVM's own thread "
                "pool (its TVM_NUM_THREADS environment variable)",
                threads,
            )
        runner = DlrRunner(target, info.input_name)
    else:
        runner = OnnxRunner(target, info.input_name, threads=threads or None, cache_dir=cache_dir)
        check_labels(labels, runner.classes, target)
    LOG.info("loaded model %s from %s with %s", info.model_id, target, runtime)
    return LoadedModel(model_dir=model_dir, info=info, labels=labels, runner=runner)
