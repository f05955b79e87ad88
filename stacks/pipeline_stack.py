"""Training, then one pipeline per device class, in one stack: the stack only wires constructs.

They share a stack on purpose: the model package's location changes with every new model, and
a cross-stack export that changes while imported would block the update.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import Annotations, CfnOutput, Stack
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

import device_contract
from app_config import DEFAULT_CLASS, PipelineConfig
from device_contract import topics
from edge_constructs.bundles import build_source_zip, trusted_build_dir
from edge_constructs.compilation_job.construct import CompilationService
from edge_constructs.component_logs.construct import ComponentLogGroups
from edge_constructs.device_class.construct import (
    ClassTargets,
    ComponentCode,
    DeviceClassPipeline,
    TrainedModel,
)
from edge_constructs.drift_baseline.construct import DriftBaseline, DriftBaselineHandler
from edge_constructs.limits import LOG_RETENTION_NAMES
from edge_constructs.model_packaging.construct import ArtifactHandler
from edge_constructs.training_job.construct import TrainingJob


def retention_days(days: int) -> logs.RetentionDays:
    return getattr(logs.RetentionDays, LOG_RETENTION_NAMES[days])  # type: ignore[no-any-return]


class PipelineStack(Stack):
    """Props: ``config`` (the stage), ``bucket`` (artifact bucket), ``repo_root`` (where
    ``training_src/`` and ``component_src/`` are). Thing groups are the devices stack's."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: PipelineConfig,
        bucket: s3.IBucket,
        repo_root: Path,
        **kwargs: Any,
    ):
        super().__init__(scope, id_, **kwargs)
        name_prefix = f"{config.prefix}-{config.stage}"
        for index, warning in enumerate(config.warnings):
            Annotations.of(self).add_warning_v2(f"edge-ai:config-{index}", warning)
        retention = retention_days(config.log_retention_days)

        # 1. Train once (or take the model the user brings); every class builds from it.
        self.training: TrainingJob | None = None
        if config.trains:
            self.training = TrainingJob(
                self,
                "Training",
                name_prefix=name_prefix,
                bucket=bucket,
                training=config.training,
                architecture=config.architecture,
                input_shape=config.input_shape,
                framework_version=config.pytorch_version,
                source_dir=repo_root / "training_src",
                log_retention=retention,
            )
            model = TrainedModel(
                model_artifact_uri=self.training.model_artifact_uri,
                onnx_artifact_uri=self.training.onnx_artifact_uri,
                after=[self.training.completion],
            )
            CfnOutput(self, "TrainingJobName", value=self.training.job_name)
        else:
            model = TrainedModel(
                model_artifact_uri=config.model_artifact_uri,
                onnx_artifact_uri=config.model_artifact_uri,
                after=[],
            )

        # 2. Shared services: packaging/publishing, and Neo for the classes that compile.
        self.artifacts = ArtifactHandler(
            self, "ArtifactHandler", bucket=bucket, log_retention=retention
        )
        self.compilation: CompilationService | None = None
        if any(c.neo_target is not None for c in config.device_classes):
            self.compilation = CompilationService(
                self,
                "CompilationService",
                name_prefix=name_prefix,
                bucket=bucket,
                max_runtime_seconds=config.compilation_max_runtime_seconds,
                log_retention=retention,
            )
        if not config.trains:
            self.artifacts.grant_read_uri(config.model_artifact_uri)
            if self.compilation is not None:
                self.compilation.grant_read_uri(config.model_artifact_uri)

        # The components' log groups (created or adopted; left on delete).
        self.log_groups = ComponentLogGroups(
            self,
            "ComponentLogGroups",
            component_prefix=f"{config.component_namespace}.{config.stage}",
            retention_days=config.log_retention_days,
            log_retention=retention,
        )

        # 3. One pipeline per device class.
        build_dir = trusted_build_dir(self)
        code = ComponentCode(
            # device_contract as this synth imports it: the recipes above are built from it.
            inference_zip=build_source_zip(
                repo_root / "component_src",
                build_dir,
                "edge-inference",
                packages=[Path(device_contract.__file__).parent],
                package_exclude=device_contract.CLOUD_ONLY,
            ),
            dlr_requirements=repo_root / "component_src" / "requirements.txt",
            onnx_requirements=repo_root / "component_src" / "requirements-onnx.txt",
        )
        self.classes: dict[str, DeviceClassPipeline] = {}
        for device_class in config.device_classes:
            canary = device_class.canary_thing_group
            self.classes[device_class.name] = DeviceClassPipeline(
                self,
                "Default" if device_class.name == DEFAULT_CLASS else f"Class{device_class.name}",
                config=config,
                device_class=device_class,
                model=model,
                artifacts=self.artifacts,
                compilation=self.compilation,
                targets=ClassTargets(
                    fleet_arn=self.thing_group_arn(device_class.thing_group),
                    canary_arn=self.thing_group_arn(canary) if canary else None,
                ),
                code=code,
                log_groups=self.log_groups,
            )

        # 4. The drift baseline of the trained model, per class's model id
        # (device_contract.drift), in each class's own scope: adding a class adds its own
        # resources only. A brought model has none (its drift alarm stays OK for lack of data).
        if self.training is not None:
            handler = DriftBaselineHandler(self, "Drift", bucket=bucket, log_retention=retention)
            for class_name, pipeline in self.classes.items():
                baseline = DriftBaseline(
                    pipeline,
                    "DriftBaseline",
                    handler=handler,
                    source_uri=self.training.onnx_artifact_uri,
                    model_ids=[pipeline.package.model_id],
                    after=[pipeline.package.resource],
                )
                CfnOutput(
                    pipeline,
                    "DriftBaselineStatus",
                    value=baseline.status,
                    description=f"device class {class_name}: what the fleet's "
                    "drift alarm compares with (fleet/baselines/<model id>.json)",
                )

        CfnOutput(
            self,
            "PredictionsTopic",
            value=topics.predictions_output(config.publish_topic_prefix),
        )

    def thing_group_arn(self, name: str) -> str:
        """The ARN of a thing group the devices stack creates (by name: no cross-stack export)."""
        return self.format_arn(service="iot", resource="thinggroup", resource_name=name)
