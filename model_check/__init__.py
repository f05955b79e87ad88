"""Check a model a user brings (``model_artifact_uri``) before it meets AWS.

A brought model is a ``model.tar.gz`` (or the folder it is made from) with, at its root:

- ``model.pth``: a ``torch.jit.trace``d float32 model, what SageMaker Neo compiles for ``neo``
  device classes ("Saving Models for SageMaker Neo", PyTorch: "save your model ... with
  torch.jit.trace ... model.pth ... compress it into a tar.gz":
  https://docs.aws.amazon.com/sagemaker/latest/dg/neo-compilation-preparing-model.html);
- ``model.onnx``: what ``onnx`` device classes run with ONNX Runtime (packaging reads it from
  the archive's root, ``edge_constructs/model_packaging/runtime/packaging_logic.py``);
- ``labels.json`` (optional): one name per model output, ``["cat", ...]`` or ``{"0": "cat"}``;
- ``metadata.json`` (optional): the model's input normalization, ``mean`` and ``std`` on the
  0-1 scale, and ``arch``, its name (what ``training_src`` and ``edge_training.pretrained``
  write).

The checks (:func:`check_model`) are the ones every class needs (layout, labels, normalization,
a model name that names the model) and, per build, what can be checked on this machine: the ONNX
model runs in ONNX Runtime; ``model.pth`` loads as TorchScript and runs at the stage's input
shape. What only Neo can check is said, not guessed (:data:`ONLY_NEO`).
"""

from model_check.archive import ModelCheckError, OpenedModel, open_model
from model_check.checks import (
    ONLY_NEO,
    CheckedModel,
    Normalization,
    check_model,
    model_name,
    read_labels,
    read_normalization,
)

__all__ = [
    "ONLY_NEO",
    "CheckedModel",
    "ModelCheckError",
    "Normalization",
    "OpenedModel",
    "check_model",
    "model_name",
    "open_model",
    "read_labels",
    "read_normalization",
]
