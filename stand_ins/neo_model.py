"""Build a tiny classifier in SageMaker Neo's output layout, runnable by the real DLR 1.6 runtime.

No package reachable here compiles a network into Neo/DLR's format, so this writes one by hand:

- ``compiled.so``: the operators in ``neo_model_src/tiny_ops.c``, built with gcc against the TVM
  0.7/0.8 packed-function ABI that ``libdlr.so`` from ``dlr==1.6.0`` loads;
- ``compiled_model.json``: a TVM graph-runtime graph wiring those operators together;
- ``compiled.params``: the weights, in TVM's binary NDArray-list layout;
- ``compiled.meta``: Neo's metadata (input and output names), as Neo writes it.

The network: adaptive average pooling of each channel to a 4x4 grid (PyTorch's definition),
flatten, dense layer with bias (weights from ``compiled.params``), softmax. Input ``input0``
of shape ``(1, C, H, W)`` float32, output ``(1, num_classes)`` float32.
:meth:`TinyClassifier.predict` computes the same thing in numpy.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import json
import pathlib
import shutil
import struct
import subprocess
import tempfile
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

INPUT_NAME = "input0"
OUTPUT_NAME = "output0"
GRID = 4  # pooled grid is GRID x GRID per channel

_SOURCE = pathlib.Path(__file__).with_name("neo_model_src") / "tiny_ops.c"

# TVM's binary NDArray list (src/runtime/file_utils.cc, ndarray.cc): all little-endian.
_NDARRAY_LIST_MAGIC = 0xF7E58D4F05049CB7
_NDARRAY_MAGIC = 0xDD5E40F096B4A13F
_KDLCPU = 1
_KDLFLOAT = 2


@dataclasses.dataclass(frozen=True)
class TinyClassifier:
    """A built model folder and the numpy reference of what its graph computes."""

    model_dir: pathlib.Path
    input_shape: Tuple[int, ...]  # (1, C, H, W)
    num_classes: int
    weight: np.ndarray  # (num_classes, C * 16) float32, bound as "p0"
    bias: np.ndarray  # (num_classes,) float32, bound as "p1"
    input_name: str = INPUT_NAME

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (1, num_classes) float32, as the compiled graph gives them."""
        x = np.asarray(x, dtype=np.float32)
        if x.shape != self.input_shape:
            raise ValueError(f"expected input of shape {self.input_shape}, got {x.shape}")
        pooled = adaptive_avg_pool_4x4(x)
        features = pooled.reshape(1, -1)
        logits = (
            features.astype(np.float64) @ self.weight.astype(np.float64).T
            + self.bias.astype(np.float64)
        ).astype(np.float32)
        shifted = logits.astype(np.float64) - logits.max()
        probs = np.exp(shifted) / np.exp(shifted).sum()
        result: np.ndarray = probs.astype(np.float32)
        return result


def adaptive_avg_pool_4x4(x: np.ndarray) -> np.ndarray:
    """(1, C, H, W) -> (1, C, 4, 4) float32: cell (i, j) averages rows
    ``[floor(i*H/4), ceil((i+1)*H/4))`` and columns ``[floor(j*W/4), ceil((j+1)*W/4))``
    (PyTorch's ``adaptive_avg_pool2d``; windows overlap when H or W is not a multiple of 4)."""
    _, c, h, w = x.shape
    out = np.empty((1, c, GRID, GRID), dtype=np.float32)
    for i in range(GRID):
        r0, r1 = (i * h) // GRID, -(-((i + 1) * h) // GRID)
        for j in range(GRID):
            c0, c1 = (j * w) // GRID, -(-((j + 1) * w) // GRID)
            window = x[0, :, r0:r1, c0:c1].astype(np.float64)
            out[0, :, i, j] = window.mean(axis=(1, 2)).astype(np.float32)
    return out


def build_tiny_classifier(
    out_dir: pathlib.Path,
    *,
    input_shape: Sequence[int] = (1, 3, 32, 32),
    num_classes: int = 10,
    seed: int = 0,
) -> TinyClassifier:
    """Write a Neo-layout model folder into ``out_dir`` (created; must hold no other files).

    Weights are seeded-random with zero mean per class row, so a flat grey image scores only the
    bias and images that differ in where their brightness or colour sits get different classes.
    """
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != 4 or shape[0] != 1 or min(shape) < 1:
        raise ValueError(f"input_shape must be (1, C, H, W) with positive sizes, got {shape}")
    if num_classes < 2:
        raise ValueError("num_classes must be at least 2")
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty; DLR needs a folder of model files only")

    channels = shape[1]
    features = channels * GRID * GRID
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((num_classes, features))
    weight -= weight.mean(axis=1, keepdims=True)
    weight = (weight * 8.0).astype(np.float32)
    bias = (rng.standard_normal(num_classes) * 0.1).astype(np.float32)

    shutil.copyfile(_compiled_ops(), out_dir / "compiled.so")
    graph = _graph_json(shape, num_classes)
    (out_dir / "compiled_model.json").write_text(json.dumps(graph, indent=1), encoding="utf-8")
    (out_dir / "compiled.params").write_bytes(save_params({"p0": weight, "p1": bias}))
    meta = {
        "Model": {
            "Inputs": [{"name": INPUT_NAME, "dtype": "float32", "shape": list(shape)}],
            "Outputs": [{"name": OUTPUT_NAME, "dtype": "float32"}],
        }
    }
    (out_dir / "compiled.meta").write_text(json.dumps(meta), encoding="utf-8")
    return TinyClassifier(
        model_dir=out_dir,
        input_shape=shape,
        num_classes=num_classes,
        weight=weight,
        bias=bias,
    )


@functools.cache
def _compiled_ops() -> pathlib.Path:
    """Compile tiny_ops.c once per process; the result lives in a private temporary folder."""
    build_dir = pathlib.Path(tempfile.mkdtemp(prefix="tiny_ops_"))
    atexit.register(shutil.rmtree, build_dir, ignore_errors=True)
    target = build_dir / "tiny_ops.so"
    subprocess.run(
        ["gcc", "-O2", "-shared", "-fPIC", "-std=c99", "-Wall", "-Wextra", "-Werror",
         "-o", str(target), str(_SOURCE), "-lm"],
        check=True,
        capture_output=True,
        text=True,
    )  # fmt: skip
    return target


def _graph_json(input_shape: Tuple[int, ...], num_classes: int) -> Dict[str, Any]:
    """TVM graph-runtime JSON (the layout `relay.build` writes as ``graph_json``)."""
    channels = input_shape[1]
    features = channels * GRID * GRID
    nodes: List[Dict[str, Any]] = []
    shapes: List[List[int]] = []

    def add(name: str, shape: Sequence[int], func: str = "", inputs: Sequence[int] = ()) -> int:
        node: Dict[str, Any] = {"op": "null", "name": name, "inputs": []}
        if func:
            node = {
                "op": "tvm_op",
                "name": name,
                "attrs": {
                    "func_name": func,
                    "num_inputs": str(len(inputs)),
                    "num_outputs": "1",
                    "flatten_data": "0",
                },
                "inputs": [[i, 0, 0] for i in inputs],
            }
        nodes.append(node)
        shapes.append(list(shape))
        return len(nodes) - 1

    x = add(INPUT_NAME, input_shape)
    w = add("p0", (num_classes, features))
    b = add("p1", (num_classes,))
    pooled = add("fused_adaptive_avg_pool2d", (1, channels, GRID, GRID),
                 "tiny_adaptive_avg_pool2d_4x4", [x])  # fmt: skip
    flat = add("fused_flatten", (1, features), "tiny_flatten", [pooled])
    logits = add("fused_dense_add", (1, num_classes), "tiny_dense_bias", [flat, w, b])
    probs = add("fused_softmax", (1, num_classes), "tiny_softmax", [logits])
    count = len(nodes)
    return {
        "nodes": nodes,
        "arg_nodes": [x, w, b],
        "heads": [[probs, 0, 0]],
        "attrs": {
            "dltype": ["list_str", ["float32"] * count],
            "storage_id": ["list_int", list(range(count))],
            "shape": ["list_shape", shapes],
        },
        "node_row_ptr": list(range(count + 1)),
    }


def save_params(params: Dict[str, np.ndarray]) -> bytes:
    """Serialize float32 arrays as TVM's ``SaveParams``: list magic, reserved, names, arrays."""
    names = list(params)
    out = [struct.pack("<QQ", _NDARRAY_LIST_MAGIC, 0), struct.pack("<Q", len(names))]
    for name in names:
        encoded = name.encode("utf-8")
        out += [struct.pack("<Q", len(encoded)), encoded]
    out.append(struct.pack("<Q", len(names)))
    for name in names:
        array = np.ascontiguousarray(params[name], dtype="<f4")
        data = array.tobytes()
        out += [
            struct.pack("<QQ", _NDARRAY_MAGIC, 0),
            struct.pack("<ii", _KDLCPU, 0),  # DLDevice (DLContext in TVM 0.7)
            struct.pack("<i", array.ndim),
            struct.pack("<BBH", _KDLFLOAT, 32, 1),  # DLDataType: float32, 1 lane
            struct.pack(f"<{array.ndim}q", *array.shape),
            struct.pack("<q", len(data)),
            data,
        ]
    return b"".join(out)
