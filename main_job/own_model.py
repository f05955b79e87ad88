"""Step 1 with ``--model PATH``: the user's own model instead of the pretrained one.

The model (a ``model.tar.gz`` or the folder it is made from, as ``model_check`` describes it)
is checked as the pipeline will use it (:func:`model_check.check_model`); then the archive the
simulated account holds at the stage's ``model_artifact_uri`` is written to
``<out>/model/model.tar.gz``: the user's files as they are, plus, when the model has only a
traced ``model.pth``, a ``model.onnx`` exported from it here, so that the job's ONNX device
class runs the user's own weights (on AWS a ``neo`` class compiles ``model.pth``; an ``onnx``
class needs that ``model.onnx`` in the uploaded archive, which the job then says).
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from main_job.errors import MainJobError
from model_check import (
    CheckedModel,
    ModelCheckError,
    check_model,
    model_name,
    open_model,
    read_labels,
    read_normalization,
)
from model_check.archive import MODEL_ONNX, OpenedModel
from model_check.checks import DEFAULT_SHAPE, model_input_shape

BUCKET = "edge-ai-local-models"  # the simulated account's bucket for the brought archive


@dataclass(frozen=True)
class OwnModel:
    checked: CheckedModel
    archive: Path  # <out>/model/model.tar.gz: what model_artifact_uri holds
    uri: str
    context: dict[str, Any]  # the -c keys the job synthesizes the dev stage with
    notes: list[str] = field(default_factory=list)

    def deploy_command(self) -> str:
        """The keys that deploy the uploaded archive. Without ``model.pth`` only onnx classes
        can build from it (Neo compiles ``model.pth``), so the command names one, as the job's
        own stage has it."""
        keys = {**self.context, "model_artifact_uri": "s3://<your-bucket>/<key>/model.tar.gz"}
        if not self.checked.neo:
            keys["device_classes"] = (
                "'" + json.dumps({"onnx": {"thing_group": "<your-group>", "build": "onnx"}}) + "'"
            )
        return "cdk deploy --all " + " ".join(f"-c {k}={v}" for k, v in keys.items())


def quick_check(given: Path, name: str | None, scratch: Path) -> None:
    """What ``--check-args`` can check in a second: the layout, labels, normalization and
    name (running the model waits for the job)."""
    try:
        opened = open_model(given, scratch)
        read_labels(opened)
        read_normalization(opened)
        model_name(opened, name)
        model_input_shape(opened)
    except ModelCheckError as error:
        raise MainJobError(f"--model {error}") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _write_archive(opened: OpenedModel, exported: Path | None, target: Path) -> None:
    """The user's files at the root (file order and bytes kept), then ``model.onnx``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if opened.is_archive and exported is None:
        shutil.copyfile(opened.given, target)
        return
    buffer = io.BytesIO()
    # dereference: a symlinked model file (DVC, a cache) goes in as the file it points to;
    # packaging refuses links in an archive (packaging_logic._member_path)
    with tarfile.open(fileobj=buffer, mode="w:gz", dereference=True) as tar:
        for name in opened.files:
            tar.add(opened.root / name, arcname=name)
        if exported is not None:
            tar.add(exported, arcname=MODEL_ONNX)
    target.write_bytes(buffer.getvalue())


def bring_own(given: Path, name: str | None, out_model: Path, scratch: Path) -> OwnModel:
    """Check ``given`` and write the archive the simulated account holds (module docstring)."""
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        opened = open_model(given, scratch / "unpacked")
        checked = check_model(opened, workdir=scratch / "export", given_name=name)
    except ModelCheckError as error:
        raise MainJobError(f"--model {error}") from None
    shutil.rmtree(out_model, ignore_errors=True)
    archive = out_model / "model.tar.gz"
    _write_archive(opened, checked.onnx if checked.exported_onnx else None, archive)
    context: dict[str, Any] = {"architecture": checked.name}
    if checked.normalization is not None:
        context.update(checked.normalization.context())
    if checked.input_shape != DEFAULT_SHAPE:
        context["input_shape"] = ",".join(str(v) for v in checked.input_shape)
    notes = []
    if checked.exported_onnx:
        notes.append(
            f"your archive has no {MODEL_ONNX}: the job exported one from model.pth into "
            f"{archive}; upload that archive to deploy onnx classes (neo classes compile "
            "model.pth)"
        )
    if not checked.neo:
        notes.append(
            "your archive has no model.pth: neo device classes (SageMaker Neo compiles "
            "model.pth) cannot build from it; deploy it to onnx classes (build: onnx)"
        )
    if checked.normalization is None:
        notes.append(
            "no mean/std in metadata.json: the stage's input_mean/input_std (ImageNet's by "
            "default) normalize the inputs; set them if your model was trained otherwise"
        )
    return OwnModel(
        checked=checked,
        archive=archive,
        uri=f"s3://{BUCKET}/{checked.name}/model.tar.gz",
        context=context,
        notes=notes,
    )
