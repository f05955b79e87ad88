"""``--brought-model``: the user's own ``model.tar.gz`` (or its folder), put where the stage's
``model_artifact_uri`` points in the simulated account instead of a stand-in, so that the
stage's own packaging reads the user's files (``model.onnx`` for ONNX classes, ``labels.json``
for every class) as it will on AWS. It is checked first with :mod:`model_check` (layout,
labels against the model's outputs, normalization, that it runs)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from device_sim.cloud.cloudformation.stack import Stage
from device_sim.cloud.errors import AssemblyError
from device_sim.cloud.standins import tar_folder
from model_check import ModelCheckError, check_model, open_model
from model_check.archive import MODEL_ONNX, MODEL_PTH

# The custom resources whose properties name the brought archive when the stage trains none
# (stacks/pipeline_stack.py: model_artifact_uri feeds compilation and packaging directly).
BROUGHT_PROPERTIES = {
    "Custom::CompilationJob": ("ModelArtifactUri",),
    "Custom::ModelPackage": ("TrainingArtifactUri", "OnnxArtifactUri"),
}


@dataclass(frozen=True)
class BroughtModel:
    given: Path
    archive: bytes  # what the simulated account holds at model_artifact_uri
    labels: dict[str, str]  # index -> name: the user's, or numbered by the model's outputs
    has_onnx: bool
    has_pth: bool


def read_brought_model(
    given: Path, workdir: Path, input_shape: tuple[int, int, int, int]
) -> BroughtModel:
    """``given`` checked and read; :class:`AssemblyError` naming the problem otherwise."""
    try:
        opened = open_model(given, workdir / "unpacked")
        checked = check_model(opened, input_shape=input_shape, workdir=workdir / "export")
    except ModelCheckError as error:
        raise AssemblyError(f"--brought-model {error}") from None
    return BroughtModel(
        given=given,
        archive=given.read_bytes() if opened.is_archive else tar_folder(opened.root),
        labels=checked.label_map(),
        has_onnx=opened.has(MODEL_ONNX),
        has_pth=opened.has(MODEL_PTH),
    )


def brought_uris(stage: Stage) -> set[str]:
    """The literal ``s3://`` URIs the stage reads a brought model from: empty when it trains
    its own (those properties are then ``Fn::GetAtt`` of the training job)."""
    found: set[str] = set()
    for stack in stage.stacks:
        for resource in stack.template.get("Resources", {}).values():
            for name in BROUGHT_PROPERTIES.get(resource.get("Type", ""), ()):
                value = resource.get("Properties", {}).get(name)
                if isinstance(value, str) and value.startswith("s3://"):
                    found.add(value)
    return found
