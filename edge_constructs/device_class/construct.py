"""Everything one device class gets: build, package, components, deployments.

Per class (see the README's picture): its own build (a Neo compilation, or the training job's
ONNX export), its own model package and model component, a runtime component for its platform,
an inference component, and its deployments (one to the whole class; or, with a canary ring,
the latest release to the canary group and the promoted release to the rest of the class).
Every construct ID here is scoped by the class, and nothing here reads another class, so
adding a class adds resources and changes none of the others'.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Fn
from constructs import Construct, IDependable

from device_contract import captures, names
from edge_constructs.compilation_job.construct import (
    INPUT_NAME,
    CompilationJob,
    CompilationService,
)
from edge_constructs.component_logs.construct import ComponentLogGroups
from edge_constructs.greengrass import recipes
from edge_constructs.greengrass.construct import (
    LOG_MANAGER,
    NUCLEUS,
    ComponentVersion,
    ThingGroupDeployment,
    log_manager_configuration,
)
from edge_constructs.model_packaging.construct import (
    INT8_ONNX_FILE,
    ArtifactHandler,
    ModelPackage,
    PublishedArtifact,
)
from edge_constructs.props import DEFAULT_CLASS, ComponentPin, DeviceClass, PipelineConfig
from edge_constructs.runtime_common.cr_names import Package


@dataclass(frozen=True)
class TrainedModel:
    """What every class builds from (one training job per stage feeds them all).

    model_artifact_uri: the traced ``model.tar.gz`` (a token from the training job, or the
        brought model's literal URI); Neo compiles it, and packaging reads its labels.json.
    onnx_artifact_uri: an archive with ``model.onnx`` at its root: the training job's
        ``output.tar.gz``, or the brought model.
    after: what must finish first (the training WaitCondition; nothing for a brought model).
    """

    model_artifact_uri: str
    onnx_artifact_uri: str
    after: Sequence[IDependable]


@dataclass(frozen=True)
class ClassTargets:
    """The class's thing-group ARNs (from the devices stack): fleet, and canary or None."""

    fleet_arn: str
    canary_arn: str | None


@dataclass(frozen=True)
class ComponentCode:
    """Local files the class's components ship (built once per stack).

    inference_zip: the reproducible zip of ``component_src`` (see bundles.py).
    dlr_requirements / onnx_requirements: the runtime venvs' pinned requirements.
    """

    inference_zip: Path
    dlr_requirements: Path
    onnx_requirements: Path


def component_prefix(config: PipelineConfig, device_class: DeviceClass) -> str:
    """``<namespace>.<stage>`` for the default class (the single-target names), else
    ``<namespace>.<stage>.<class>``: a thing in two classes' groups never gets two versions
    of one component (device_contract/names.py)."""
    return names.component_prefix(config.component_namespace, config.stage, device_class.name)


def component_name(config: PipelineConfig, device_class: DeviceClass, part: str) -> str:
    """The class's component ``part`` (``names.MODEL``, ``names.runtime_part(dlr)``, ...)."""
    return names.component_name(config.component_namespace, config.stage, device_class.name, part)


def deployment_name(config: PipelineConfig, device_class: DeviceClass, ring: str) -> str:
    base = f"{config.prefix}-{config.stage}"
    if device_class.name != DEFAULT_CLASS:
        base = f"{base}-{device_class.name}"
    return f"{base}-edge-inference" + ("-canary" if ring == "canary" else "")


def package_metadata(
    config: PipelineConfig, device_class: DeviceClass, built_by: str
) -> dict[str, Any]:
    """metadata.json of the class's package (docs/CONTRACTS.md)."""
    height, width = config.input_shape[2], config.input_shape[3]
    resize = config.training.hyperparameters.get("resize-shorter")
    target = device_class.neo_target
    return {
        "schema_version": 1,
        "input_name": INPUT_NAME,
        "input_shape": list(config.input_shape),
        "layout": "NCHW",
        "channel_order": "RGB",
        "scale": 1 / 255,
        "mean": list(config.input_mean),
        "std": list(config.input_std),
        "resize_shorter": int(resize) if resize else round(min(height, width) * 256 / 224),
        "architecture": config.architecture,
        "framework": "PYTORCH",
        "framework_version": config.pytorch_version,
        "target": target.slug if target is not None else f"onnx-{device_class.architecture}",
        ("compilation_job" if target is not None else "built_by"): built_by,
        **(
            {"precision": "int8", "int8_format": device_class.int8_format}
            if device_class.int8
            else {}
        ),
    }


def release_configuration(configuration: Mapping[str, Any]) -> dict[str, Any]:
    """What the deployment merges: the recipe's configuration without ``CaptureBucket``. The
    bucket's name is a CloudFormation reference (the bucket is named at deploy time), which a
    release in cdk.json cannot record (rollout/promote.py refuses it); it stays the recipe's
    default, and a stage's artifact bucket never changes (it is retained and stateful)."""
    return {k: v for k, v in configuration.items() if k != "CaptureBucket"}


class DeviceClassPipeline(Construct):
    """Build, package, components and deployments of one :class:`app_config.DeviceClass`.

    Props:
        config: the stage's :class:`app_config.PipelineConfig` (namespace, model shape,
            deployment policy, pinned public components), used as is.
        device_class: the class, used as is.
        model: the :class:`TrainedModel` every class builds from.
        artifacts: the stack's :class:`ArtifactHandler` (packaging, publishing).
        compilation: the stack's :class:`CompilationService` (required for ``neo`` classes).
        targets: the class's thing-group ARNs.
        code: the files the components ship.
        log_groups: the stack's :class:`ComponentLogGroups` (the components' CloudWatch log
            groups, with the stage's retention).

    Attributes: ``package``, ``model_component``, ``runtime_name``/``runtime_version``,
    ``inference_component``, ``deployments`` (ring -> :class:`ThingGroupDeployment`),
    ``compilation`` (None for ONNX classes).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: PipelineConfig,
        device_class: DeviceClass,
        model: TrainedModel,
        artifacts: ArtifactHandler,
        compilation: CompilationService | None,
        targets: ClassTargets,
        code: ComponentCode,
        log_groups: ComponentLogGroups,
    ) -> None:
        super().__init__(scope, id_)
        if bool(device_class.canary_thing_group) != (targets.canary_arn is not None):
            raise ValueError(f"device class {device_class.name}: canary group and ARN disagree")
        self.log_retention = log_groups.log_retention
        prefix = component_prefix(config, device_class)
        architecture = device_class.architecture

        # 1. Build: compile with Neo, or take the ONNX export as it is.
        self.compilation: CompilationJob | None = None
        if device_class.neo_target is not None:
            if compilation is None:
                raise ValueError(f"device class {device_class.name}: neo build needs the service")
            self.compilation = CompilationJob(
                self,
                "Compilation",
                service=compilation,
                model_artifact_uri=model.model_artifact_uri,
                after=model.after,
                target=device_class.neo_target,
                framework_version=config.pytorch_version,
                input_shape=config.input_shape,
                compiler_options=device_class.neo_compiler_options,
            )
            source = {"compiled_artifact_uri": self.compilation.compiled_artifact_uri}
            after: Sequence[IDependable] = [self.compilation.resource]
            built_by = self.compilation.job_name
            summary = f"compiled by Neo for {device_class.neo_target.slug}"
        else:
            source = {"onnx_artifact_uri": model.onnx_artifact_uri}
            after = model.after
            built_by = "training ONNX export"
            summary = f"exported to ONNX for linux/{architecture}"
            if device_class.int8:
                # the training job's int8 model (train.py --quantize int8), gated against FP32
                source["onnx_file"] = INT8_ONNX_FILE
                built_by = f"training int8 export ({device_class.int8_format}, QDQ)"
                summary = f"quantized to int8 ({device_class.int8_format}) for linux/{architecture}"

        # 2. Package for Greengrass.
        metadata = package_metadata(config, device_class, built_by)
        self.package = ModelPackage(
            self,
            "ModelPackage",
            handler=artifacts,
            model_name=config.architecture,
            training_artifact_uri=model.model_artifact_uri,
            metadata=metadata,
            after=after,
            **source,
        )

        # 3. Components: the model, the runtime, the inference component.
        package = self.package
        model_name = component_name(config, device_class, names.MODEL)
        self.model_component = ComponentVersion(
            self,
            "ModelComponent",
            artifact_bucket=artifacts.bucket,
            log_retention=self.log_retention,
            name=model_name,
            recipe_for=lambda version: recipes.model_recipe(
                name=model_name,
                version=version,
                description=f"{config.architecture} {summary} "
                f"(PyTorch {config.pytorch_version}, input {list(config.input_shape)})",
                artifact_uri=package.artifact_uri,
                architecture=architecture,
            ),
        )
        self.runtime: ComponentVersion | None = None
        if device_class.runtime == "variant.DLR":
            self.runtime_name, self.runtime_version = "variant.DLR", config.variant_dlr_version
            launcher = recipes.variant_dlr_launcher(architecture)
        else:
            dlr = device_class.runtime == "bundled"
            runtime_name = component_name(config, device_class, names.runtime_part(dlr))
            requirements = PublishedArtifact(
                self,
                "RuntimeArtifact",
                handler=artifacts,
                path=code.dlr_requirements if dlr else code.onnx_requirements,
                component_name=runtime_name,
            )
            self.runtime = ComponentVersion(
                self,
                "RuntimeComponent",
                artifact_bucket=artifacts.bucket,
                log_retention=self.log_retention,
                name=runtime_name,
                recipe_for=lambda version: recipes.runtime_recipe(
                    name=runtime_name,
                    version=version,
                    requirements_uri=requirements.uri,
                    requirements_file=requirements.file_name,
                    architecture=architecture,
                    dlr=dlr,
                ),
            )
            self.runtime.node.add_dependency(requirements)
            self.runtime_name, self.runtime_version = self.runtime.name, self.runtime.version
            launcher = recipes.bundled_launcher(runtime_name)

        inference_name = component_name(
            config, device_class, names.inference_part(device_class.dlr)
        )
        inference_code = PublishedArtifact(
            self,
            "InferenceArtifact",
            handler=artifacts,
            path=code.inference_zip,
            component_name=inference_name,
        )
        self.configuration = recipes.inference_configuration(
            top_k=config.inference_top_k,
            topic_prefix=config.publish_topic_prefix,
            runtime="dlr" if device_class.dlr else "onnx",
            capture_bucket=artifacts.bucket.bucket_name,
            capture_prefix=captures.device_prefix(config.stage, device_class.name),
            batch_size=device_class.batch_size,
            inference_threads=device_class.inference_threads,
        )
        model_component, configuration = self.model_component, self.configuration
        runtime_name_, runtime_version_ = self.runtime_name, self.runtime_version
        self.inference_component = ComponentVersion(
            self,
            "InferenceComponent",
            artifact_bucket=artifacts.bucket,
            log_retention=self.log_retention,
            name=inference_name,
            recipe_for=lambda version: recipes.inference_recipe(
                name=inference_name,
                version=version,
                artifact_uri=inference_code.uri,
                unarchived_name=inference_code.unarchived_name,
                launcher=launcher,
                model_name=model_component.name,
                model_version=model_component.version,
                model_dir=f"{{{model_component.name}:artifacts:decompressedPath}}/"
                f"{package.archive_name}",
                runtime_name=runtime_name_,
                runtime_version=runtime_version_,
                configuration=configuration,
                architecture=architecture,
            ),
        )
        self.inference_component.node.add_dependency(inference_code)

        # 4. Logs of our components, with retention; the log manager uploads into them. Created
        # or adopted, and left on delete: running devices recreate a deleted group
        # (edge_constructs/component_logs).
        for component in (inference_name, self.runtime_name):
            if component.startswith(prefix):
                log_groups.add(self, f"Logs{component.rsplit('.', 1)[1]}", component=component)

        # 5. Deployments: the latest release to the canary ring (or the whole class), the
        # promoted release to the rest of a class that has a canary ring.
        self.latest = self.latest_release(config)
        self.deployments: dict[str, ThingGroupDeployment] = {}
        if targets.canary_arn is None:
            self._deploy(config, device_class, "all", targets.fleet_arn, self.latest)
        else:
            self._deploy(config, device_class, "canary", targets.canary_arn, self.latest)
            if device_class.release is not None:
                self._deploy(config, device_class, "fleet", targets.fleet_arn, device_class.release)

        label = "" if device_class.name == DEFAULT_CLASS else device_class.name
        CfnOutput(self, "ModelPackageUri", value=self.package.artifact_uri)
        if device_class.int8:
            att = self.package.resource.get_att_string
            CfnOutput(
                self,
                "Int8AccuracyGate",
                value=Fn.join(
                    "",
                    [
                        "int8 top-1 ",
                        att(Package.INT8_TOP1),
                        "% vs FP32 ",
                        att(Package.FP32_TOP1),
                        "% (drop ",
                        att(Package.INT8_TOP1_DROP),
                        " points, top-1 agreement ",
                        att(Package.INT8_TOP1_AGREEMENT),
                        "%)",
                    ],
                ),
                description=f"device class {label or DEFAULT_CLASS}: the int8 accuracy gate",
            )
        for part, component_version in (
            ("Model", self.model_component),
            ("Inference", self.inference_component),
        ):
            CfnOutput(
                self,
                f"{part}ComponentVersion",
                value=f"{component_version.name}@{component_version.version}",
                description=f"device class {label or DEFAULT_CLASS}",
            )

    def latest_release(self, config: PipelineConfig) -> dict[str, ComponentPin]:
        """Every component this synth built, pinned: what the canary (or the class) runs."""
        components = {
            self.model_component.name: ComponentPin(self.model_component.version),
            self.runtime_name: ComponentPin(self.runtime_version),
            self.inference_component.name: ComponentPin(
                self.inference_component.version, release_configuration(self.configuration)
            ),
            LOG_MANAGER: ComponentPin(
                config.log_manager_version,
                log_manager_configuration([self.inference_component.name, self.runtime_name]),
            ),
        }
        if config.nucleus_version:
            components[NUCLEUS] = ComponentPin(config.nucleus_version)
        return components

    def _deploy(
        self,
        config: PipelineConfig,
        device_class: DeviceClass,
        ring: str,
        target_arn: str,
        components: dict[str, ComponentPin] | Any,
    ) -> None:
        deployment = ThingGroupDeployment(
            self,
            {"all": "Deployment", "canary": "CanaryDeployment", "fleet": "FleetDeployment"}[ring],
            name=deployment_name(config, device_class, ring),
            target_arn=target_arn,
            components=components,
            policy=config.deployment,
            ring={
                "stage": config.stage,
                "class": device_class.name,
                "ring": ring,
                # rollout.promote records it with the release: synth then refuses the release
                # once the stage's prefix moves (app_config/releases.py check_releases)
                "topic_prefix": config.publish_topic_prefix,
            },
            log_retention=self.log_retention,
        )
        if ring != "fleet":  # a promoted release's versions exist already (retained)
            for version in (self.model_component, self.inference_component, self.runtime):
                if version is not None:
                    deployment.node.add_dependency(version)
        self.deployments[ring] = deployment
