"""What is checked of a brought model, and what only SageMaker Neo can check."""

from __future__ import annotations

import json
import math
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model_check.archive import (
    LABELS,
    METADATA,
    MODEL_ONNX,
    MODEL_PTH,
    ModelCheckError,
    OpenedModel,
)

# app_config's ``architecture`` key: the name packaging puts in the model id and package key.
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,40}$")
# What Neo alone decides, said rather than guessed: the PyTorch it loads the file with is the
# stage's pytorch_version (CreateCompilationJob InputConfig.FrameworkVersion, botocore
# sagemaker/2017-07-24 service-2.json), and its operator support is per target.
ONLY_NEO = (
    "that Neo's PyTorch (pytorch_version) loads model.pth: trace it with that version",
    "that Neo supports every operator of the model for the class's target device",
)


@dataclass(frozen=True)
class Normalization:
    """``(x / 255 - mean) / std`` per RGB channel (docs/CONTRACTS.md ``metadata.json``)."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def context(self) -> dict[str, str]:
        """As the ``input_mean``/``input_std`` keys take it."""
        return {
            "input_mean": ",".join(f"{v:.6g}" for v in self.mean),
            "input_std": ",".join(f"{v:.6g}" for v in self.std),
        }


@dataclass
class CheckedModel:
    opened: OpenedModel
    name: str
    labels: list[str] | None
    normalization: Normalization | None
    input_shape: tuple[int, int, int, int]
    outputs: int  # classes the model scores, found by running it
    onnx: Path | None  # the model.onnx an ONNX class runs: the brought one, or exported here
    exported_onnx: bool
    checked: list[str] = field(default_factory=list)  # what passed, one line each

    @property
    def neo(self) -> bool:
        return self.opened.has(MODEL_PTH)

    def label_map(self) -> dict[str, str]:
        """Class index -> name, as ``labels.json`` maps them: the model's labels, or its
        outputs numbered when it has none."""
        names = self.labels or [str(i) for i in range(self.outputs)]
        return {str(i): name for i, name in enumerate(names)}


def _json_file(opened: OpenedModel, name: str) -> Any:
    try:
        return json.loads((opened.root / name).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelCheckError(f"{opened.given}: {name} is not JSON ({error})") from None


def read_labels(opened: OpenedModel) -> list[str] | None:
    """``labels.json`` as a list (index = model output); None when the model has none. The
    component reads ``["cat", ...]`` or ``{"0": "cat", ...}`` (docs/CONTRACTS.md)."""
    if not opened.has(LABELS):
        return None
    raw = _json_file(opened, LABELS)
    where = f"{opened.given}: {LABELS}"
    if isinstance(raw, dict):
        if not all(isinstance(k, str) and k.isdigit() for k in raw):
            raise ModelCheckError(f'{where}: keys must be class indices "0", "1", ...')
        by_index = {int(k): v for k, v in raw.items()}
        if len(by_index) != len(raw):
            raise ModelCheckError(f"{where}: a class index appears twice (e.g. 1 and 01)")
        missing = sorted(set(range(len(by_index))) - set(by_index))
        if missing:
            raise ModelCheckError(
                f"{where}: indices must run 0..{len(by_index) - 1} without gaps; "
                f"{missing[0]} is missing"
            )
        raw = [by_index[i] for i in range(len(by_index))]
    if not isinstance(raw, list) or not raw:
        raise ModelCheckError(f"{where}: expected a non-empty list or object of class names")
    if not all(isinstance(name, str) and name.strip() for name in raw):
        raise ModelCheckError(f"{where}: every class name must be a non-empty string")
    return [str(name) for name in raw]


def read_metadata(opened: OpenedModel) -> dict[str, Any]:
    if not opened.has(METADATA):
        return {}
    raw = _json_file(opened, METADATA)
    if not isinstance(raw, dict):
        raise ModelCheckError(f"{opened.given}: {METADATA} must be a JSON object")
    return raw


def _triple(opened: OpenedModel, raw: Any, key: str, positive: bool) -> tuple[float, float, float]:
    where = f"{opened.given}: {METADATA} {key}"
    if not isinstance(raw, list) or len(raw) != 3:
        raise ModelCheckError(f"{where}: expected 3 numbers (R, G, B), got {raw!r}")
    values = []
    for value in raw:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ModelCheckError(f"{where}: {value!r} is not a number")
        if not math.isfinite(value) or (positive and value <= 0):
            raise ModelCheckError(f"{where}: {value!r} must be finite" + (" and > 0" * positive))
        if abs(value) > 1.5:
            # inputs are scaled by 1/255 before (x - mean) / std (metadata.json's scale)
            raise ModelCheckError(
                f"{where}: {value!r} looks like the 0-255 scale; metadata.json takes the 0-1 "
                f"scale ({value / 255:.6g})"
            )
        values.append(float(value))
    return values[0], values[1], values[2]


def read_normalization(opened: OpenedModel) -> Normalization | None:
    """``metadata.json``'s ``mean`` and ``std``; None when it states neither."""
    meta = read_metadata(opened)
    if "mean" not in meta and "std" not in meta:
        return None
    if "mean" not in meta or "std" not in meta:
        missing = "std" if "mean" in meta else "mean"
        raise ModelCheckError(f"{opened.given}: {METADATA} sets one of mean/std without {missing}")
    return Normalization(
        _triple(opened, meta["mean"], "mean", positive=False),
        _triple(opened, meta["std"], "std", positive=True),
    )


def model_name(opened: OpenedModel, given_name: str | None = None) -> str:
    """The name packaging gives the model (``architecture``): ``given_name``, else
    ``metadata.json``'s ``arch``/``architecture``, else the archive's or folder's name
    (``resnet18-4class.tar.gz`` -> ``resnet18_4class``; a plain ``model.tar.gz`` -> its
    folder's name). Never a default that names another model."""
    meta = read_metadata(opened)
    candidates: list[tuple[str, str]] = []
    if given_name:
        candidates.append(("--model-name", given_name))
    for key in ("arch", "architecture"):
        if isinstance(meta.get(key), str):
            candidates.append((f"{METADATA} {key}", meta[key]))
    stem = opened.given.name
    for suffix in (".tar.gz", ".tgz"):
        stem = stem.removesuffix(suffix)
    if stem in ("model", "") and opened.is_archive:
        stem = opened.given.resolve().parent.name
    candidates.append(("the file name", stem))
    source, raw = candidates[0]
    name = re.sub(r"[^a-z0-9_]+", "_", raw.strip().lower()).strip("_")
    if name[:1].isdigit() or len(name) == 1:  # the key's pattern: a letter first, 2+ chars
        name = f"model_{name}"
    name = name[:41]
    if not NAME_PATTERN.fullmatch(name):
        raise ModelCheckError(
            f"{source} {raw!r} does not make a model name ({NAME_PATTERN.pattern}); "
            "give one with --model-name"
        )
    return name


def _class_count(shape: Any, where: str) -> int:
    if not isinstance(shape, (list, tuple)) or len(shape) != 2 or not isinstance(shape[-1], int):
        raise ModelCheckError(
            f"{where}: output shape {list(shape) if isinstance(shape, (list, tuple)) else shape}"
            " is not (batch, classes): the component reads one score per class"
        )
    if shape[-1] < 2:
        # the component ranks classes (top-k of the scores), and packaging's stand-ins and
        # the Neo input both expect a classifier's scores
        raise ModelCheckError(
            f"{where}: scores 1 class; the component ranks at least 2. For a yes/no model, "
            "output both scores (e.g. torch.cat([1 - p, p], dim=1)) with two labels"
        )
    return int(shape[-1])


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "es" if word.endswith("s") else "s")


def _input_shape(raw: Any, fallback: tuple[int, int, int, int], where: str) -> tuple[int, ...]:
    """The model's NCHW input shape; a symbolic axis (a string) takes the stage's value."""
    if not isinstance(raw, (list, tuple)) or len(raw) != 4:
        raise ModelCheckError(f"{where}: input shape {raw} is not NCHW (4 axes)")
    shape = tuple(v if isinstance(v, int) and v > 0 else fallback[i] for i, v in enumerate(raw))
    if shape[1] != 3 and shape[3] == 3:
        raise ModelCheckError(
            f"{where}: input shape {list(raw)} is channels-last (NHWC); the pipeline feeds "
            "NCHW, (1, 3, H, W): export the model with its input transposed"
        )
    if shape[1] != 3:
        raise ModelCheckError(
            f"{where}: input shape {list(raw)} has {shape[1]} channels; the component feeds "
            "3 (RGB, NCHW)"
        )
    if shape[2] != shape[3]:
        # app_config's input_shape: the training script, packaging and the device derive the
        # resize from one square crop
        raise ModelCheckError(
            f"{where}: input shape {list(raw)} is not square; the pipeline's input_shape is "
            "(1, 3, S, S)"
        )
    return shape


def check_onnx(
    path: Path, input_shape: tuple[int, int, int, int], where: str
) -> tuple[tuple[int, ...], int]:
    """ONNX Runtime loads ``path`` (CPU) and runs it on zeros: (its input shape, its class
    count). One input, NCHW with 3 channels; one output (batch, classes). ``where`` names the
    file in errors as the user knows it (``model.tar.gz: model.onnx``)."""
    import numpy as np
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:  # ORT raises its own Fail/InvalidGraph/... types
        raise ModelCheckError(f"{where}: ONNX Runtime cannot load it ({error})") from None
    inputs = session.get_inputs()
    if len(inputs) != 1:
        names = [i.name for i in inputs]
        raise ModelCheckError(f"{where}: {len(inputs)} inputs {names}; the component feeds one")
    shape = _input_shape(inputs[0].shape, input_shape, where)
    probe = np.zeros((1, *shape[1:]), dtype=np.float32)
    try:
        (output, *_rest) = session.run(None, {inputs[0].name: probe})
    except Exception as error:
        raise ModelCheckError(
            f"{where}: does not run on a {list(probe.shape)} input ({error})"
        ) from None
    return shape, _class_count(list(np.asarray(output).shape), where)


def _last_line(error: BaseException) -> str:
    """The line of a TorchScript interpreter error that says what failed: its last one (the
    first says only "The following operation failed in the TorchScript interpreter.")."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1][:300] if lines else type(error).__name__


def _torchscript_problem(path: Path) -> str:
    """Why ``torch.jit.load`` refused ``path``: a TorchScript archive holds ``code/`` and
    ``constants.pkl`` (``torch.jit.save``); ``torch.save`` writes only ``data.pkl``."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return "not a PyTorch file (neither a zip archive nor TorchScript)"
    if any(n.endswith("/data.pkl") for n in names) and not any("/code/" in n for n in names):
        return (
            "a torch.save()d state_dict or module, not a traced model: Neo compiles TorchScript "
            "(torch.jit.trace(model.eval(), example).save('model.pth'))"
        )
    return "torch.jit.load cannot read it"


def check_torchscript(
    path: Path, input_shape: tuple[int, int, int, int], onnx_out: Path | None, where: str
) -> int:
    """``model.pth`` loads as TorchScript and runs on zeros at ``input_shape`` (Neo's
    DataInputConfig ``{"input0": [1, 3, H, W]}``); its class count. With ``onnx_out`` it is
    exported there too (TorchScript-based exporter, input ``input0``, output ``output0``, as
    ``training_src``'s export) so that ONNX Runtime can run the model on this machine."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notices
        try:
            model = torch.jit.load(str(path), map_location="cpu")  # type: ignore[no-untyped-call]
        except Exception:
            raise ModelCheckError(f"{where}: {_torchscript_problem(path)}") from None
        model.eval()
        floats = {p.dtype for p in model.parameters()} - {torch.float32}
        if floats:
            names = ", ".join(sorted(str(d) for d in floats))
            raise ModelCheckError(
                f"{where}: parameters in {names}; Neo compiles float32 models (model.float())"
            )
        probe = torch.zeros(*input_shape)
        try:
            with torch.no_grad():
                output = model(probe)
        except Exception as error:
            raise ModelCheckError(
                f"{where}: does not run on a {list(input_shape)} input ({_last_line(error)}). "
                "The pipeline feeds RGB NCHW, (1, 3, S, S): a model traced at another square "
                "size names it in metadata.json input_shape (or model_check --input-shape)"
            ) from None
        if not isinstance(output, torch.Tensor):
            raise ModelCheckError(
                f"{where}: returns {type(output).__name__}, not one tensor of class scores"
            )
        classes = _class_count(list(output.shape), where)
        if onnx_out is not None:
            onnx_out.parent.mkdir(parents=True, exist_ok=True)
            with torch.no_grad():
                torch.onnx.export(
                    model,
                    (probe,),
                    str(onnx_out),
                    input_names=["input0"],
                    output_names=["output0"],
                    opset_version=17,
                    dynamo=False,
                )
    return classes


DEFAULT_SHAPE = (1, 3, 224, 224)


def model_input_shape(opened: OpenedModel) -> tuple[int, int, int, int]:
    """``metadata.json``'s ``input_shape`` (what the model was traced at), else 1,3,224,224;
    refused unless it is one the pipeline can feed (app_config's input_shape rule)."""
    from app_config import ConfigError
    from app_config.training import parse_input_shape

    raw = read_metadata(opened).get("input_shape")
    if raw is None:
        return DEFAULT_SHAPE
    try:
        return parse_input_shape(raw)
    except ConfigError as error:
        raise ModelCheckError(f"{opened.given}: {METADATA} {error}") from None


def check_model(
    opened: OpenedModel,
    *,
    workdir: Path,
    input_shape: tuple[int, int, int, int] | None = None,
    given_name: str | None = None,
) -> CheckedModel:
    """Every check this machine can make (module docstring), at ``input_shape`` (default:
    :func:`model_input_shape`). ``workdir`` receives an ONNX export of ``model.pth`` when the
    model has no ``model.onnx``."""
    if input_shape is None:
        input_shape = model_input_shape(opened)
    labels = read_labels(opened)
    normalization = read_normalization(opened)
    name = model_name(opened, given_name)
    checked = [f"layout: {', '.join(opened.files[:6])} at the root"]
    counts: dict[str, int] = {}
    shape: tuple[int, ...] = input_shape
    onnx: Path | None = None
    exported = False
    if opened.has(MODEL_PTH):
        onnx_out = None if opened.has(MODEL_ONNX) else workdir / MODEL_ONNX
        counts[MODEL_PTH] = check_torchscript(
            opened.root / MODEL_PTH, input_shape, onnx_out, f"{opened.given}: {MODEL_PTH}"
        )
        checked.append(
            f"{MODEL_PTH}: TorchScript, float32, runs on {list(input_shape)}, "
            f"{_plural(counts[MODEL_PTH], 'class')}"
        )
        if onnx_out is not None:
            onnx, exported = onnx_out, True
    if opened.has(MODEL_ONNX):
        onnx = opened.root / MODEL_ONNX
        shape, counts[MODEL_ONNX] = check_onnx(onnx, input_shape, f"{opened.given}: {MODEL_ONNX}")
        checked.append(
            f"{MODEL_ONNX}: ONNX Runtime runs it on {[1, *shape[1:]]}, "
            f"{_plural(counts[MODEL_ONNX], 'class')}"
        )
    if len(set(counts.values())) > 1:
        raise ModelCheckError(
            f"{opened.given}: {MODEL_PTH} scores {counts[MODEL_PTH]} classes and {MODEL_ONNX} "
            f"{counts[MODEL_ONNX]}: they are not the same model"
        )
    outputs = next(iter(counts.values()))
    if labels is not None and len(labels) != outputs:
        raise ModelCheckError(
            f"{opened.given}: {LABELS} names {_plural(len(labels), 'class')} and the model "
            f"scores {outputs}: one name per model output"
        )
    checked.append(
        f"{LABELS}: {_plural(len(labels), 'name')}, one per output"
        if labels is not None
        else f"{LABELS}: none (predictions are numbered 0..{outputs - 1})"
    )
    checked.append(
        f"normalization: mean {list(normalization.mean)}, std {list(normalization.std)} "
        f"({METADATA})"
        if normalization is not None
        else f"normalization: none in {METADATA}; the stage's input_mean/input_std apply"
    )
    checked.append(f"model name: {name}")
    return CheckedModel(
        opened=opened,
        name=name,
        labels=labels,
        normalization=normalization,
        input_shape=(1, shape[1], shape[2], shape[3]),
        outputs=outputs,
        onnx=onnx,
        exported_onnx=exported,
        checked=checked,
    )
