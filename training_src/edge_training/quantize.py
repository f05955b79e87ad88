"""int8 ONNX models by ONNX Runtime static quantization, and the accuracy gate that keeps them
honest.

What ONNX Runtime's guide says, and what this module does with it ("Quantize ONNX Models",
https://onnxruntime.ai/docs/performance/model-optimizations/quantization.html):

- "it is recommended to use ... static quantization for CNN models" ("Method selection"):
  ``quantize_static`` with a calibration set, MinMax ranges.
- QDQ format: "S8S8 with QDQ is the default setting and balances performance and accuracy. It
  should be the first choice" ("Data type selection"). ``--int8-format s8s8`` (the default).
- "On x86-64 machines with AVX2 and AVX512 extensions, ONNX Runtime uses the VPMADDUBSW
  instruction for U8S8 ... might suffer from saturation ... you can either try reduce_range or
  the U8U8 format"; "Reduce-range ... is designed for the U8S8 format on AVX2 and AVX512
  (non-VNNI) machines ... not needed on machines supporting VNNI"; "On AVX2 and AVX512
  machines, you will generally need to enable reduce-range as well if per-channel is enabled"
  (FAQ). onnxruntime 1.32's ``quantize_static`` docstring ("Choosing parameters for CPU
  inference") recommends U8S8 with ``reduce_range=True`` on x86 without VNNI, U8S8 without it
  on VNNI, S8S8 on ARM. ``--int8-format u8s8-reduce-range`` is the choice for an x86 device
  without VNNI, ``u8s8`` for one with VNNI.
- Per-channel weights: "can improve the accuracy for models whose weight ranges are large"
  (FAQ); on by default.
- Pre-processing first: "we recommend performing model optimization during pre-processing
  instead of the quantization process" ("Quantization Debugging"); ``quant_pre_process``
  (symbolic shape inference, ORT basic graph optimization, ONNX shape inference:
  ``onnxruntime/quantization/shape_inference.py``). ONNX Runtime 1.10, the last release for
  Python 3.6 (the PyTorch 1.8 training image), predates ``quant_pre_process`` (1.13): there the
  same optimization and ONNX shape inference run directly, without the symbolic step.
- Int8 gains need VNNI (x86) or dot-product instructions (ARM): "x86-64 with VNNI ... and ARM
  with dot-product instructions can get better performance in general" (FAQ). Size shrinks
  about 4x everywhere.

The gate: FP32 and int8 models run on the held-out validation images; top-1 of both, the drop
in points and the top-1 agreement go into ``metadata.json`` under ``"int8"``; a drop above
``--max-int8-top1-drop`` fails the job with both numbers.
"""

import hashlib
import json
import logging
import os
import random
import shutil
import tempfile
from typing import Iterable, List, NamedTuple, Sequence

import numpy as np

from .config import INT8_FORMATS
from .errors import TrainingInputError

LOGGER = logging.getLogger(__name__)

INT8_ONNX_FILE = "model.int8.onnx"


class Int8GateError(TrainingInputError):
    """The int8 model lost more top-1 accuracy than allowed: the build fails."""


class Int8Settings(NamedTuple):
    activation_type: str  # "QInt8" / "QUInt8" (onnxruntime.quantization.QuantType names)
    weight_type: str
    reduce_range: bool
    per_channel: bool = True


def settings_for(int8_format: str) -> Int8Settings:
    if int8_format == "s8s8":
        return Int8Settings("QInt8", "QInt8", False)
    if int8_format == "u8s8":
        return Int8Settings("QUInt8", "QInt8", False)
    if int8_format == "u8s8-reduce-range":
        return Int8Settings("QUInt8", "QInt8", True)
    raise TrainingInputError(
        "--int8-format {!r}: expected one of {}".format(int8_format, ", ".join(INT8_FORMATS))
    )


def _onnxruntime():
    try:
        import onnxruntime
        from onnxruntime import quantization
    except ImportError as exc:
        raise TrainingInputError(
            f"--quantize int8 needs onnxruntime and onnx (training_src/requirements.txt): {exc}"
        ) from None
    return onnxruntime, quantization


def pre_process(source: str, target: str) -> None:
    """ORT's ``quant_pre_process`` where it exists, else its optimization and shape steps."""
    onnxruntime, quantization = _onnxruntime()
    quant_pre_process = getattr(quantization, "quant_pre_process", None)
    if quant_pre_process is None:
        shape_inference = getattr(quantization, "shape_inference", None)
        quant_pre_process = getattr(shape_inference, "quant_pre_process", None)
    if quant_pre_process is not None:
        quant_pre_process(source, target)
        return
    import onnx  # ORT < 1.13 (Python 3.6): the optimization and ONNX shape inference steps

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = target
    onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    onnx.save(onnx.shape_inference.infer_shapes(onnx.load(target)), target)


def _reader_class(quantization):
    class TensorReader(quantization.CalibrationDataReader):
        """Feeds the calibration tensors one at a time (batch 1: the traced input shape)."""

        def __init__(self, input_name, tensors):
            self.input_name = input_name
            self.tensors = list(tensors)
            self.position = 0

        def get_next(self):
            if self.position >= len(self.tensors):
                return None
            tensor = self.tensors[self.position]
            self.position += 1
            return {self.input_name: tensor}

        def __len__(self):
            return len(self.tensors)

        def rewind(self):
            self.position = 0

    return TensorReader


def quantize_model(
    fp32_path: str,
    int8_path: str,
    calibration: Sequence[np.ndarray],
    settings: Int8Settings,
    input_name: str = "input0",
) -> None:
    """Static QDQ quantization of ``fp32_path`` into ``int8_path``, calibrated on
    ``calibration`` (float32 NCHW tensors, batch 1, preprocessed as for inference)."""
    if not calibration:
        raise TrainingInputError("int8 quantization needs at least one calibration image")
    _, quantization = _onnxruntime()
    work = tempfile.mkdtemp(prefix="int8-")
    try:
        prepared = os.path.join(work, "prepared.onnx")
        pre_process(fp32_path, prepared)
        reader = _reader_class(quantization)(input_name, calibration)
        quantization.quantize_static(
            prepared,
            int8_path,
            reader,
            quant_format=quantization.QuantFormat.QDQ,
            per_channel=settings.per_channel,
            reduce_range=settings.reduce_range,
            activation_type=getattr(quantization.QuantType, settings.activation_type),
            weight_type=getattr(quantization.QuantType, settings.weight_type),
            calibrate_method=quantization.CalibrationMethod.MinMax,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def sample_calibration(samples, count: int, seed: int) -> list:
    """``count`` training samples, spread over the classes (round robin over a seeded
    shuffle of each class), so the activation ranges see every class."""
    by_class = {}
    for sample in samples:
        by_class.setdefault(sample[1], []).append(sample)
    rng = random.Random(seed)  # noqa: S311 - a reproducible sample, not cryptography
    queues = []
    for name in sorted(by_class):
        items = list(by_class[name])
        rng.shuffle(items)
        queues.append(items)
    chosen = []
    while len(chosen) < count and any(queues):
        for queue in queues:
            if queue and len(chosen) < count:
                chosen.append(queue.pop())
    return chosen


class Int8Report(NamedTuple):
    fp32_top1: float  # 0-100
    int8_top1: float
    top1_drop: float  # points: fp32_top1 - int8_top1
    top1_agreement: float  # 0-100: same top-1 class from both models
    validation_images: int


def top1_classes(session, input_name: str, tensors: Sequence[np.ndarray]) -> List[int]:
    classes = []
    for tensor in tensors:
        (logits,) = session.run(None, {input_name: tensor})
        classes.append(int(np.argmax(logits.reshape(-1))))
    return classes


def compare(
    fp32_path: str,
    int8_path: str,
    tensors: Iterable[np.ndarray],
    targets: Sequence[int],
    input_name: str = "input0",
) -> Int8Report:
    """Top-1 of both models on the validation tensors, the drop and their agreement. The
    tensors are taken one at a time (any iterable): each runs through both models before the
    next is asked for, so memory does not grow with the validation set."""
    onnxruntime, _ = _onnxruntime()
    sessions = [
        onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        for path in (fp32_path, int8_path)
    ]
    count = fp32_hits = int8_hits = agree = 0
    for tensor, target in zip(tensors, targets):
        fp32, int8 = (top1_classes(s, input_name, [tensor])[0] for s in sessions)
        count += 1
        fp32_hits += fp32 == target
        int8_hits += int8 == target
        agree += fp32 == int8
    if not count:
        raise TrainingInputError("the int8 accuracy gate needs validation images")
    fp32_top1 = 100.0 * fp32_hits / count
    int8_top1 = 100.0 * int8_hits / count
    agreement = 100.0 * agree / count
    return Int8Report(
        fp32_top1=round(fp32_top1, 4),
        int8_top1=round(int8_top1, 4),
        top1_drop=round(fp32_top1 - int8_top1, 4),
        top1_agreement=round(agreement, 4),
        validation_images=count,
    )


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def gate_record(
    report: Int8Report,
    settings: Int8Settings,
    int8_format,
    fp32_path,
    int8_path,
    calibration_images,
    max_drop,
):
    """The ``"int8"`` entry of metadata.json."""
    return {
        "file": os.path.basename(int8_path),
        "sha256": _sha256(int8_path),
        "size_bytes": os.path.getsize(int8_path),
        "fp32_size_bytes": os.path.getsize(fp32_path),
        "quant_format": "QDQ",
        "int8_format": int8_format,
        "activation_type": settings.activation_type,
        "weight_type": settings.weight_type,
        "per_channel": settings.per_channel,
        "reduce_range": settings.reduce_range,
        "calibration_images": calibration_images,
        "validation_images": report.validation_images,
        "fp32_top1": report.fp32_top1,
        "int8_top1": report.int8_top1,
        "top1_drop": report.top1_drop,
        "top1_agreement": report.top1_agreement,
        "max_top1_drop": max_drop,
        "passed": report.top1_drop <= max_drop,
    }


def record_in_metadata(metadata_path: str, record: dict) -> None:
    """Add ``record`` as ``"int8"`` to metadata.json (informational keys: docs/CONTRACTS.md)."""
    with open(metadata_path) as handle:
        metadata = json.load(handle)
    metadata["int8"] = record
    partial = metadata_path + ".partial"
    with open(partial, "w") as handle:
        json.dump(metadata, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(partial, metadata_path)


def enforce(report: Int8Report, max_drop: float) -> None:
    """Fail the build when int8 lost more than ``max_drop`` top-1 points."""
    message = (
        f"int8 top-1 {report.int8_top1:.2f}% vs FP32 top-1 {report.fp32_top1:.2f}% on "
        f"{report.validation_images} validation images: a drop of {report.top1_drop:.2f} "
        f"points (agreement {report.top1_agreement:.2f}%), max_int8_top1_drop is {max_drop:g}"
    )
    if report.top1_drop > max_drop:
        raise Int8GateError("int8 accuracy gate failed: " + message)
    LOGGER.info("int8 accuracy gate passed: %s", message)
