"""Read a synthesized cloud assembly and deploy one stage of it into a simulated account.

What it reads (cloud-assembly schema, aws-cdk-lib ``cloud-assembly-schema``): the top-level
``manifest.json``, the stage's nested assembly (an artifact of type ``cdk:cloud-assembly`` whose
``displayName`` is the stage), its ``aws:cloudformation:stack`` artifacts (``templateFile``,
``stackName``, ``dependencies``) and ``cdk:asset-manifest`` files (``source.path``,
``packaging``, ``destinations.*.objectKey``).

Deploying is ``cdk deploy`` of each stack, in dependency order, through the simulated
account's CloudFormation (``device_sim.cloud.cloudformation.engine``), whose providers act on
one backend per service (``device_sim.cloud``). Custom resources are replayed with the
project's own handler code taken from the Lambda code assets (exactly the code that would be
deployed); SageMaker training and Neo compilation are stand-ins (``device_sim.cloud.sagemaker``)
that put what SageMaker would write where the handlers say it is: ``model.tar.gz`` with
``labels.json`` for training, and Neo's output for compilation, which is the model folder the
caller passes (by default the tiny Neo-layout model of ``stand_ins/neo_model.py``).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from device_sim.cloud.account import Cloud
from device_sim.cloud.cloudformation.engine import CloudFormation, Failure
from device_sim.cloud.cloudformation.stack import (
    AssetFile,
    DeployedResource,
    DeployedStack,
    StackArtifact,
    Stage,
)
from device_sim.cloud.cloudformation.template import NO_VALUE, Resolver
from device_sim.cloud.env import Env
from device_sim.cloud.errors import AssemblyError
from device_sim.cloud.greengrass import ComponentVersion
from device_sim.cloud.iam import Role
from device_sim.cloud.lambda_ import import_from
from device_sim.cloud.standins import ONNX_FILE, StandIns
from stacks import synth_stamp

if TYPE_CHECKING:
    from device_sim.brought import BroughtModel

__all__ = [
    "NO_VALUE",
    "ONNX_FILE",
    "AssemblyError",
    "AssetFile",
    "Cloud",
    "CloudFormation",
    "ComponentVersion",
    "DeployedResource",
    "DeployedStack",
    "Env",
    "Failure",
    "Resolver",
    "Role",
    "StackArtifact",
    "Stage",
    "StandIns",
    "default_stand_ins",
    "deploy_stage",
    "handler_module",
    "load_stage",
    "onnx_model_folder",
    "read_onnx_model",
    "split_s3",
]


def load_stage(assembly_dir: Path, stage: str) -> Stage:
    """The nested assembly of ``stage`` in ``assembly_dir`` (a ``cdk.out`` or a synth outdir)."""
    manifest_path = assembly_dir / "manifest.json"
    if not assembly_dir.is_dir():
        raise AssemblyError(f"cloud assembly {assembly_dir} does not exist (run cdk synth first)")
    if not manifest_path.is_file():
        raise AssemblyError(f"{assembly_dir} is not a cloud assembly: no manifest.json")
    stale = synth_stamp.problem(assembly_dir)
    if stale is not None:
        raise AssemblyError(stale)
    manifest = _read_json(manifest_path)
    nested = {
        a.get("properties", {}).get("displayName", aid): a["properties"]["directoryName"]
        for aid, a in manifest.get("artifacts", {}).items()
        if a.get("type") == "cdk:cloud-assembly"
    }
    if stage not in nested:
        raise AssemblyError(
            f"unknown stage {stage!r} in {assembly_dir}; stages there: "
            f"{', '.join(sorted(nested)) or 'none'}"
        )
    directory = assembly_dir / nested[stage]
    inner = _read_json(directory / "manifest.json")
    artifacts = inner.get("artifacts", {})
    asset_files: dict[str, AssetFile] = {}
    for artifact in artifacts.values():
        if artifact.get("type") != "cdk:asset-manifest":
            continue
        asset_manifest_path = directory / artifact["properties"]["file"]
        for asset_hash, entry in _read_json(asset_manifest_path).get("files", {}).items():
            destination = next(iter(entry["destinations"].values()))
            asset_files[asset_hash] = AssetFile(
                asset_hash=asset_hash,
                source=(asset_manifest_path.parent / entry["source"]["path"]).resolve(),
                packaging=entry["source"].get("packaging", "file"),
                bucket_template=destination["bucketName"],
                object_key=destination["objectKey"],
            )
    stacks: dict[str, StackArtifact] = {}
    for aid, artifact in artifacts.items():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        props = artifact["properties"]
        stacks[aid] = StackArtifact(
            artifact_id=aid,
            stack_name=props.get("stackName", aid),
            display_name=artifact.get("displayName", aid),
            template=_read_json(directory / props["templateFile"]),
            assets=asset_files,
            dependencies=[d for d in artifact.get("dependencies", []) if d in artifacts],
        )
    ordered: list[StackArtifact] = []
    seen: set[str] = set()

    def visit(aid: str, path: tuple[str, ...]) -> None:
        if aid in seen or aid not in stacks:
            return
        if aid in path:
            raise AssemblyError(f"stack dependency cycle: {' -> '.join((*path, aid))}")
        for dep in stacks[aid].dependencies:
            visit(dep, (*path, aid))
        seen.add(aid)
        ordered.append(stacks[aid])

    for aid in sorted(stacks):
        visit(aid, ())
    if not ordered:
        raise AssemblyError(f"stage {stage!r} in {assembly_dir} has no stacks")
    return Stage(name=stage, directory=directory, stacks=ordered)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AssemblyError(f"{path} is missing") from None
    except json.JSONDecodeError as error:
        raise AssemblyError(f"{path} is not valid JSON: {error}") from None


def split_s3(uri: str) -> tuple[str, str]:
    match = re.match(r"^s3://([^/]+)/(.+)$", uri)
    if not match:
        raise AssemblyError(f"not an s3://bucket/key URI: {uri!r}")
    return match.group(1), match.group(2)


ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")


def onnx_model_folder(given: Path, workdir: Path) -> Path:
    """``--onnx-model`` as a folder: the folder given, or a ``model.tar.gz`` as a user who
    brings a model has it (``model.onnx`` and ``labels.json`` at its root, as packaging reads
    the brought archive) unpacked into ``workdir``. The archive is unpacked with tarfile's
    ``data`` filter (Python docs, "Extraction filters"): no absolute paths, no ``..``, no
    links out of the folder, no device files."""
    if given.is_dir():
        return given
    if not given.is_file() or not given.name.endswith(ARCHIVE_SUFFIXES):
        raise AssemblyError(
            f"--onnx-model {given}: not a folder or a .tar.gz archive with {ONNX_FILE} and "
            "labels.json"
        )
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    try:
        with tarfile.open(given, "r:*") as archive:
            archive.extractall(workdir, filter="data")
    except (tarfile.TarError, OSError, EOFError) as error:
        raise AssemblyError(f"--onnx-model {given}: not a readable .tar.gz ({error})") from None
    if not (workdir / ONNX_FILE).is_file():
        found = sorted(p.relative_to(workdir).as_posix() for p in workdir.rglob("*") if p.is_file())
        raise AssemblyError(
            f"--onnx-model {given}: no {ONNX_FILE} at the archive's root (files: "
            f"{', '.join(found[:10]) or 'none'}); make it with "
            f"tar -C <folder> -czf model.tar.gz {ONNX_FILE} labels.json"
        )
    return workdir


def read_onnx_model(folder: Path) -> dict[str, str]:
    """The labels of a caller's ONNX model folder (``model.onnx`` + ``labels.json``, as
    ``train.py`` and ``edge_training.pretrained`` export it); a one-line error otherwise."""
    if not (folder / ONNX_FILE).is_file():
        raise AssemblyError(f"--onnx-model {folder}: no {ONNX_FILE} in it")
    try:
        raw = json.loads((folder / "labels.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AssemblyError(f"--onnx-model {folder}: no labels.json in it") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise AssemblyError(f"--onnx-model {folder}/labels.json: not JSON ({error})") from None
    if isinstance(raw, list):
        raw = {str(i): name for i, name in enumerate(raw)}
    if not isinstance(raw, dict) or not raw:
        raise AssemblyError(f"--onnx-model {folder}/labels.json: expected a non-empty object")
    return {str(k): str(v) for k, v in raw.items()}


@contextlib.contextmanager
def handler_module(stage: Stage, module: str) -> Iterator[ModuleType]:
    """Import ``module`` from the Lambda code asset that ships it, as Lambda would (the asset
    folder is the import root, so sibling modules import each other as top-level modules)."""
    for stack in stage.stacks:
        for asset in stack.assets.values():
            if asset.source.is_dir() and (asset.source / f"{module}.py").is_file():
                with import_from(asset.source, module) as loaded:
                    yield loaded
                return
    raise AssemblyError(f"no Lambda asset in stage {stage.name} ships {module}.py")


def deploy_stage(stage: Stage, env: Env, stand_ins: StandIns) -> Cloud:
    """``cdk deploy`` every stack of ``stage`` (in dependency order) into a fresh simulated
    account; a stack that does not reach CREATE_COMPLETE fails with its first failure."""
    cloud = Cloud(env=env)
    cloudformation = CloudFormation(cloud, stand_ins)
    for artifact in stage.stacks:
        stack = cloudformation.deploy(artifact)
        if stack.status != "CREATE_COMPLETE":
            failures = "; ".join(f"{e.logical_id}: {e.reason}" for e in stack.failures())
            raise AssemblyError(f"{stack.display_name}: {stack.status}: {failures}")
    return cloud


def default_stand_ins(
    workdir: Path,
    input_shape: tuple[int, ...],
    num_classes: int = 10,
    model_dir: Path | None = None,
    onnx_model: Path | None = None,
    brought: BroughtModel | None = None,
) -> StandIns:
    """The model folder Neo would have produced; default: the tiny Neo-layout classifier built
    for the real ``libdlr.so`` (``stand_ins/neo_model.py``) at the stack's input shape.
    With ``onnx_model`` (a folder with ``model.onnx`` and ``labels.json``), the labels are
    that model's (one training job feeds every class, so they are the tiny model's too, with
    as many classes) and the training stand-in writes it as ``output/output.tar.gz``.
    With ``brought`` (``--brought-model``), its archive is what ``model_artifact_uri`` holds,
    and Neo's stand-in scores as many classes as the user's model."""
    labels = {str(i): f"class-{i}" for i in range(num_classes)}
    if onnx_model is not None:
        labels = read_onnx_model(onnx_model)
        num_classes = len(labels)
    archive = None
    if brought is not None:
        labels, archive = dict(brought.labels), brought.archive
        num_classes = len(labels)
    if model_dir is not None:
        if not model_dir.is_dir() or not any(model_dir.iterdir()):
            raise AssemblyError(f"--model {model_dir} is not a folder with a compiled model")
        return StandIns(model_dir, labels, onnx_model, archive)
    from stand_ins.neo_model import build_tiny_classifier

    target = workdir / "neo-model"
    if target.exists():
        shutil.rmtree(target)
    build_tiny_classifier(target, input_shape=input_shape, num_classes=num_classes)
    return StandIns(target, labels, onnx_model, archive)
