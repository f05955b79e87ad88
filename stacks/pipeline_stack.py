"""Train -> compile -> package -> component versions -> deployment, in one stack.

They share a stack on purpose: the model package's location changes with every new model, and
a cross-stack export that changes while imported would block the update.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk import Aws, CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from app_config import PipelineConfig
from edge_constructs.bundles import BUILD_DIR, build_source_zip
from edge_constructs.compilation_job.construct import (
    INPUT_NAME,
    CompilationJob,
    CompilationJobProps,
    NeoTargetProps,
)
from edge_constructs.greengrass import recipes
from edge_constructs.greengrass.construct import (
    LOG_MANAGER,
    NUCLEUS,
    ComponentVersion,
    DeploymentPolicy,
    ThingGroupDeployment,
    log_manager_configuration,
)
from edge_constructs.model_packaging.construct import (
    ArtifactHandler,
    ModelPackage,
    PublishedArtifact,
)
from edge_constructs.training_job.construct import TrainingJob, TrainingJobProps

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def retention_days(days: int) -> logs.RetentionDays:
    names = {
        1: "ONE_DAY",
        3: "THREE_DAYS",
        5: "FIVE_DAYS",
        7: "ONE_WEEK",
        14: "TWO_WEEKS",
        30: "ONE_MONTH",
        60: "TWO_MONTHS",
        90: "THREE_MONTHS",
        120: "FOUR_MONTHS",
        150: "FIVE_MONTHS",
        180: "SIX_MONTHS",
        365: "ONE_YEAR",
        400: "THIRTEEN_MONTHS",
        545: "EIGHTEEN_MONTHS",
        731: "TWO_YEARS",
        1827: "FIVE_YEARS",
        3653: "TEN_YEARS",
    }
    return getattr(logs.RetentionDays, names[days])  # type: ignore[no-any-return]


class PipelineStack(Stack):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: PipelineConfig,
        bucket: s3.IBucket,
        thing_group_arn: str,
        repo_root: Path,
        **kwargs: Any,
    ):
        super().__init__(scope, id_, **kwargs)
        name_prefix = f"{config.prefix}-{config.stage}"
        retention = retention_days(config.log_retention_days)
        height, width = config.input_shape[2], config.input_shape[3]

        # 1. Train (or take the model the user brings).
        if config.trains:
            training_src = repo_root / "training_src"
            hyperparameters = {
                **config.training.hyperparameters,
                "arch": config.architecture,
                "input-shape": ",".join(str(d) for d in config.input_shape),
            }
            self.training: TrainingJob | None = TrainingJob(
                self,
                "Training",
                name_prefix=name_prefix,
                bucket=bucket,
                log_retention=retention,
                props=TrainingJobProps(
                    source_dir=training_src,
                    entry_point="train.py",
                    framework_version=config.pytorch_version,
                    instance_type=config.training.instance_type,
                    instance_count=config.training.instance_count,
                    volume_gb=config.training.volume_gb,
                    max_runtime_seconds=config.training.max_runtime_seconds,
                    use_spot=config.training.use_spot,
                    max_wait_seconds=config.training.max_wait_seconds,
                    image_uri=config.training.image_uri,
                    train_uri=config.training.data_uri,
                    validation_uri=config.training.validation_uri,
                    hyperparameters=hyperparameters,
                    metric_definitions=json.loads(
                        (training_src / "metric_definitions.json").read_text()
                    ),
                    run_id=config.training.run_id,
                ),
            )
            model_uri = self.training.model_artifact_uri
            upstream = self.training.job_name
            after = [self.training.completion]
        else:
            self.training = None
            model_uri = config.model_artifact_uri
            upstream = config.model_artifact_uri
            after = []

        # 2. Compile with Neo for the device.
        target = config.neo_target
        self.compilation = CompilationJob(
            self,
            "Compilation",
            name_prefix=name_prefix,
            bucket=bucket,
            model_artifact_uri=model_uri,
            upstream_id=upstream,
            after=after,
            log_retention=retention,
            props=CompilationJobProps(
                framework_version=config.pytorch_version,
                input_shape=config.input_shape,
                target=NeoTargetProps(
                    device=target.device,
                    os=target.os,
                    arch=target.arch,
                    accelerator=target.accelerator,
                ),
                max_runtime_seconds=config.compilation_max_runtime_seconds,
                compiler_options=config.neo_compiler_options,
            ),
        )

        # 3. Package the compiled model for Greengrass.
        self.artifact_handler = ArtifactHandler(
            self, "ArtifactHandler", bucket=bucket, log_retention=retention
        )
        if not config.trains:
            self.artifact_handler.grant_read_uri(config.model_artifact_uri)
        resize = config.training.hyperparameters.get("resize-shorter")
        metadata = {
            "schema_version": 1,
            "input_name": INPUT_NAME,
            "input_shape": list(config.input_shape),
            "layout": "NCHW",
            "channel_order": "RGB",
            "scale": 1 / 255,
            "mean": IMAGENET_MEAN,
            "std": IMAGENET_STD,
            "resize_shorter": int(resize) if resize else round(min(height, width) * 256 / 224),
            "architecture": config.architecture,
            "framework": "PYTORCH",
            "framework_version": config.pytorch_version,
            "target": target.slug,
            "compilation_job": self.compilation.job_name,
        }
        self.package = ModelPackage(
            self,
            "ModelPackage",
            handler=self.artifact_handler,
            model_name=config.architecture,
            compiled_artifact_uri=self.compilation.compiled_artifact_uri,
            training_artifact_uri=model_uri,
            metadata=metadata,
            after=[self.compilation.resource],
        )

        # 4. Component versions: the model, the runtime, the inference component.
        namespace = f"{config.component_namespace}.{config.stage}"
        architecture = recipes.NEO_ARCHITECTURES.get(target.device or target.arch or "")
        package = self.package
        self.model_component = ComponentVersion(
            self,
            "ModelComponent",
            name=f"{namespace}.Model",
            recipe_for=lambda version: recipes.model_recipe(
                name=f"{namespace}.Model",
                version=version,
                description=f"{config.architecture} compiled by Neo for {target.slug} "
                f"(PyTorch {config.pytorch_version}, input {list(config.input_shape)})",
                artifact_uri=package.artifact_uri,
                architecture=architecture,
            ),
            extra_content={
                "compilation": self.compilation.job_name,
                "packager": self.artifact_handler.code_digest,
                "metadata": metadata,
            },
        )

        if config.runtime_component == "bundled":
            requirements = PublishedArtifact(
                self,
                "RuntimeArtifact",
                handler=self.artifact_handler,
                path=repo_root / "component_src" / "requirements.txt",
                component_name=f"{namespace}.DlrRuntime",
            )
            runtime = ComponentVersion(
                self,
                "RuntimeComponent",
                name=f"{namespace}.DlrRuntime",
                recipe_for=lambda version: recipes.runtime_recipe(
                    name=f"{namespace}.DlrRuntime",
                    version=version,
                    requirements_uri=requirements.uri,
                    requirements_file=requirements.file_name,
                ),
            )
            runtime.node.add_dependency(requirements)
            runtime_name, runtime_version = runtime.name, runtime.version
            launcher = recipes.bundled_launcher(runtime_name)
        else:
            runtime_name, runtime_version = "variant.DLR", config.variant_dlr_version
            launcher = recipes.variant_dlr_launcher(architecture)

        inference_code = PublishedArtifact(
            self,
            "InferenceArtifact",
            handler=self.artifact_handler,
            path=build_source_zip(repo_root / "component_src", BUILD_DIR, "edge-inference"),
            component_name=f"{namespace}.DlrInference",
        )
        configuration = recipes.inference_configuration(
            top_k=config.inference_top_k, topic_prefix=config.publish_topic_prefix
        )
        model_component = self.model_component
        self.inference_component = ComponentVersion(
            self,
            "InferenceComponent",
            name=f"{namespace}.DlrInference",
            recipe_for=lambda version: recipes.inference_recipe(
                name=f"{namespace}.DlrInference",
                version=version,
                artifact_uri=inference_code.uri,
                unarchived_name=inference_code.unarchived_name,
                launcher=launcher,
                model_name=model_component.name,
                model_version=model_component.version,
                model_dir=f"{{{model_component.name}:artifacts:decompressedPath}}/"
                f"{package.archive_name}",
                runtime_name=runtime_name,
                runtime_version=runtime_version,
                configuration=configuration,
                architecture=architecture,
            ),
        )
        self.inference_component.node.add_dependency(inference_code)

        # 5. Logs of our components, with retention; the log manager uploads into them.
        for component in (self.inference_component.name, runtime_name):
            if component.startswith(namespace):
                logs.LogGroup(
                    self,
                    f"Logs{component.rsplit('.', 1)[1]}",
                    log_group_name=f"/aws/greengrass/UserComponent/{Aws.REGION}/{component}",
                    retention=retention,
                    removal_policy=RemovalPolicy.DESTROY,
                )

        # 6. The deployment: everything pinned.
        components: dict[str, tuple[str, dict[str, Any] | None]] = {
            self.model_component.name: (self.model_component.version, None),
            runtime_name: (runtime_version, None),
            self.inference_component.name: (self.inference_component.version, configuration),
            LOG_MANAGER: (
                config.log_manager_version,
                log_manager_configuration([self.inference_component.name, runtime_name]),
            ),
        }
        if config.nucleus_version:
            components[NUCLEUS] = (config.nucleus_version, None)
        deployment = config.deployment
        self.deployment = ThingGroupDeployment(
            self,
            "Deployment",
            name=f"{name_prefix}-edge-inference",
            target_arn=thing_group_arn,
            components=components,
            policy=DeploymentPolicy(
                timeout_minutes=deployment.timeout_minutes,
                rollout_max_per_minute=deployment.rollout_max_per_minute,
                abort_failure_threshold_percent=deployment.abort_failure_threshold_percent,
                abort_min_executed_things=deployment.abort_min_executed_things,
                component_update_policy=deployment.component_update_policy,
                component_update_timeout_seconds=deployment.component_update_timeout_seconds,
            ),
        )
        for component_version in (self.model_component, self.inference_component):
            self.deployment.node.add_dependency(component_version)
        if config.runtime_component == "bundled":
            self.deployment.node.add_dependency(runtime)

        if self.training is not None:
            CfnOutput(self, "TrainingJobName", value=self.training.job_name)
        CfnOutput(self, "CompilationJobName", value=self.compilation.job_name)
        CfnOutput(self, "ModelPackageUri", value=self.package.artifact_uri)
        for label, component_version in (
            ("Model", self.model_component),
            ("Inference", self.inference_component),
        ):
            CfnOutput(
                self,
                f"{label}ComponentVersion",
                value=f"{component_version.name}@{component_version.version}",
            )
        CfnOutput(
            self,
            "PredictionsTopic",
            value=f"{config.publish_topic_prefix}/<thing name>/{recipes.PREDICTIONS_SUFFIX}",
        )
