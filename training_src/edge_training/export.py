"""What the job leaves behind (formats: docs/CONTRACTS.md).

``--model-dir`` (becomes model.tar.gz, Neo's input): a ``torch.jit.trace``d float32 CPU
``model.pth`` and ``labels.json``, nothing else. ``--output-data-dir``: ``labels.json``,
``metadata.json`` and, with ``--export-onnx true``, ``model.onnx``: a model folder the device
component can run with ONNX Runtime.
"""

import hashlib
import inspect
import json
import logging
import os
import shutil
import warnings

import torch

from .data import IMAGENET_MEAN, IMAGENET_STD
from .errors import TrainingInputError

LOGGER = logging.getLogger(__name__)

MODEL_FILE = "model.pth"
LABELS_FILE = "labels.json"
METADATA_FILE = "metadata.json"
ONNX_FILE = "model.onnx"
INPUT_NAME = "input0"  # Neo's input config: {"input0": [1, 3, H, W]}
RELATIVE_TOLERANCE = 1e-4


class ExportMismatchError(RuntimeError):
    """An exported model does not compute what the trained model computes."""


def _check_close(name, expected, actual):
    expected, actual = expected.detach().float(), actual.detach().float()
    if expected.shape != actual.shape:
        raise ExportMismatchError(
            f"{name}: output shape {tuple(actual.shape)} != eager {expected.shape}"
        )
    scale = max(1.0, float(expected.abs().max()))
    error = float((expected - actual).abs().max())
    if error > RELATIVE_TOLERANCE * scale:
        raise ExportMismatchError(
            f"{name} differs from the eager model: max abs error {error:.3g} (scale {scale:.3g})"
        )
    LOGGER.info("%s matches the eager model (max abs error %.3g)", name, error)


def _random_input(input_shape, seed):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(*input_shape, generator=generator)


def write_json(path, value):
    with open(path, "w") as handle:
        json.dump(value, handle, indent=2, sort_keys=True)
        handle.write("\n")


def labels_map(class_names):
    """``{"0": "cat", "1": "dog"}``: class index (decimal string) -> name."""
    return {str(index): name for index, name in enumerate(class_names)}


def save_torchscript(model, input_shape, model_dir):
    """Trace ``model`` at ``input_shape`` into ``<model_dir>/model.pth``; verify the reload."""
    model = model.to("cpu").float().eval()
    example = _random_input(input_shape, seed=1)
    path = os.path.join(model_dir, MODEL_FILE)
    with warnings.catch_warnings():
        # PyTorch 2.x deprecates torch.jit.trace/load; Neo needs exactly that format.
        warnings.simplefilter("ignore", FutureWarning)
        with torch.no_grad():
            traced = torch.jit.trace(model, example)
        traced.save(path)
        reloaded = torch.jit.load(path, map_location="cpu")
    probe = _random_input(input_shape, seed=2)
    with torch.no_grad():
        _check_close("traced " + MODEL_FILE, model(probe), reloaded(probe))
    return path


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_model_dir(model, class_names, input_shape, model_dir):
    """``model.pth`` + ``labels.json``; warn about anything else already in the folder."""
    os.makedirs(model_dir, exist_ok=True)
    path = save_torchscript(model, input_shape, model_dir)
    write_json(os.path.join(model_dir, LABELS_FILE), labels_map(class_names))
    extra = sorted(set(os.listdir(model_dir)) - {MODEL_FILE, LABELS_FILE})
    if extra:
        LOGGER.warning(
            "%s holds other files that will end up in model.tar.gz: %s", model_dir, ", ".join(extra)
        )
    return path


def metadata(arch, model_path, input_shape, resize_shorter, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """docs/CONTRACTS.md ``metadata.json``; ``mean``/``std`` on the 0-1 scale (ImageNet's by
    default: torchvision's weights; a model trained with other statistics passes its own)."""
    return {
        "schema_version": 1,
        "model_id": f"{arch}-{sha256_of(model_path)[:12]}",
        "input_name": INPUT_NAME,
        "input_shape": list(input_shape),
        "layout": "NCHW",
        "channel_order": "RGB",
        "scale": 1.0 / 255.0,
        "mean": list(mean),
        "std": list(std),
        "resize_shorter": resize_shorter,
        "framework": "pytorch",
        "framework_version": torch.__version__.split("+")[0],
        "arch": arch,
    }


def _onnx_opset():
    """17 where the exporter has it; PyTorch 1.8's exporter stops at 13."""
    major_minor = tuple(int(part) for part in torch.__version__.split(".")[:2])
    return 17 if major_minor >= (1, 13) else 13


# The first axis of input and output is named, not fixed: the inference component runs a
# waiting backlog as one batch (``BatchSize``) on such a model. ``dynamic_axes`` is in
# ``torch.onnx.export`` since PyTorch 1.2, so also in the 1.8.1 training image ("torch.onnx",
# ``dynamic_axes``: "a dictionary to specify dynamic axes of input/output ... KEY (str): an input
# or output name ... VALUE (dict or list): ... the names of the dynamic axes").
BATCH_AXIS = "batch"


def export_onnx(model, input_shape, path):
    """TorchScript-based ONNX export (fast, no onnxscript); ``input0`` -> ``output0``, with a
    dynamic batch axis (:data:`BATCH_AXIS`)."""
    model = model.to("cpu").float().eval()
    kwargs = dict(
        input_names=[INPUT_NAME],
        output_names=["output0"],
        opset_version=_onnx_opset(),
        dynamic_axes={INPUT_NAME: {0: BATCH_AXIS}, "output0": {0: BATCH_AXIS}},
    )
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False  # the torch.export-based default is slower and needs onnxscript
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with torch.no_grad():
            torch.onnx.export(model, (_random_input(input_shape, seed=1),), path, **kwargs)
    try:
        import onnxruntime  # optional: absent on SageMaker's training images
    except ImportError:
        LOGGER.info("onnxruntime is not installed: skipping the ONNX check")
        return
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    # two inputs in one run: the batch axis really is dynamic, and rows stay apart
    probe = torch.cat([_random_input(input_shape, seed=2), _random_input(input_shape, seed=3)])
    (actual,) = session.run(None, {INPUT_NAME: probe.numpy()})
    with torch.no_grad():
        _check_close(ONNX_FILE, model(probe), torch.from_numpy(actual))


def write_output_data_dir(
    model,
    arch,
    model_path,
    input_shape,
    resize_shorter,
    output_dir,
    with_onnx,
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
):
    """labels.json + metadata.json (+ model.onnx): usable as the component's ONNX model dir."""
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as exc:
        raise TrainingInputError(f"cannot create output dir {output_dir}: {exc}") from None
    labels = os.path.join(os.path.dirname(model_path), LABELS_FILE)
    shutil.copyfile(labels, os.path.join(output_dir, LABELS_FILE))
    info = metadata(arch, model_path, input_shape, resize_shorter, mean, std)
    write_json(os.path.join(output_dir, METADATA_FILE), info)
    if with_onnx:
        export_onnx(model, input_shape, os.path.join(output_dir, ONNX_FILE))
    LOGGER.info("wrote %s (model_id %s)", output_dir, info["model_id"])
