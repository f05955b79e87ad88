"""Step 3, synthesize: the ``dev`` stage with the configuration a user who brings the pretrained
model writes (:data:`BROUGHT_MODEL_CONTEXT`): ``model_artifact_uri``, the model's architecture
and input normalization, and one ``onnx`` device class (ONNX Runtime; no Neo compilation to
stand in for). ``cdk.json`` is read as ``cdk synth`` reads it; these keys override it, like
``-c``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from main_job.errors import MainJobError
from main_job.paths import ROOT

STAGE = "dev"
ONNX_CLASS_GROUP = "EdgeAiDevOnnx"
BROUGHT_MODEL_URI = "s3://edge-ai-local-models/efficientnet_lite0/model.tar.gz"
# EfficientNet-Lite's input statistics: 127 and 128 on the 0-255 scale (edge_training.pretrained).
LITE_MEAN = ",".join([f"{127 / 255:.6f}"] * 3)
LITE_STD = ",".join([f"{128 / 255:.6f}"] * 3)
BROUGHT_MODEL_CONTEXT: dict[str, Any] = {
    "stage": STAGE,
    "model_artifact_uri": BROUGHT_MODEL_URI,
    "architecture": "efficientnet_lite0",
    "input_mean": LITE_MEAN,
    "input_std": LITE_STD,
    "device_classes": {
        "onnx": {"thing_group": ONNX_CLASS_GROUP, "build": "onnx", "platform_architecture": "amd64"}
    },
}


def own_model_context(uri: str, keys: dict[str, Any]) -> dict[str, Any]:
    """:data:`BROUGHT_MODEL_CONTEXT` for the user's own model (``--model``): its URI and its
    ``keys`` (name, and normalization and input shape when the model states them; otherwise
    ``cdk.json``'s apply, not EfficientNet-Lite's)."""
    own = {
        k: v
        for k, v in BROUGHT_MODEL_CONTEXT.items()
        if k not in ("input_mean", "input_std", "architecture")
    }
    return {**own, "model_artifact_uri": uri, **keys}


def synthesize_stage(
    outdir: Path,
    context: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Path:
    """The ``dev`` stage with ``overrides`` (default :data:`BROUGHT_MODEL_CONTEXT`) over
    ``cdk.json``'s context (``context``: that context, for tests).

    The job's stage is its own: one ONNX class of its own, nothing promoted. So the promoted
    releases in ``cdk.json`` (``releases``, written by ``rollout.promote`` for the user's own
    classes) are left out: they name classes this stage does not have, and synth would refuse
    them. A configuration this stage still cannot use is a :class:`MainJobError` naming it.

    ``app`` is the repository's top-level module, importable wherever ``main_job`` is (both sit
    at the repository root, which ``python -m main_job`` from there puts on the path)."""
    import app as cdk_app
    from app_config import ConfigError

    if context is None:
        context = json.loads((ROOT / "cdk.json").read_text())["context"]
    own = {key: value for key, value in context.items() if key != "releases"}
    shutil.rmtree(outdir, ignore_errors=True)
    try:
        app = cdk_app.create_app(
            context={**own, **(overrides or BROUGHT_MODEL_CONTEXT)}, outdir=str(outdir)
        )
    except ConfigError as error:
        raise MainJobError(f"cdk.json does not fit the main job's dev stage: {error}") from None
    app.synth()
    return outdir
