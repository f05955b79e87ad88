"""A SageMaker Neo compilation job as a CloudFormation custom resource.

Neo jobs take minutes, so this resource waits inside the custom-resource call using the CDK
Provider framework's ``is_complete`` polling. The stopping condition is capped (app_config:
at most 3000 s) so that polling always ends inside CloudFormation's one-hour limit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import CustomResource, Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import custom_resources as cr
from constructs import Construct, IDependable

from edge_constructs.artifact_bucket.construct import Prefixes
from edge_constructs.lambda_function import PythonFunction
from edge_constructs.nag import acknowledge_provider_framework, acknowledge_scoped_wildcards
from edge_constructs.naming import digest, job_name
from edge_constructs.s3_grants import grant_read_object
from edge_constructs.sagemaker_jobs import acknowledge_job_prefix, allow_job_management

RUNTIME_DIR = Path(__file__).parent / "runtime"
INPUT_NAME = "input0"
POLL_INTERVAL = Duration.seconds(30)
# Headroom on top of the job's own stopping condition for queueing and polling.
WAIT_HEADROOM = Duration.minutes(10)
MAX_TOTAL_WAIT = Duration.minutes(55)


@dataclass(frozen=True)
class NeoTargetProps:
    """Exactly one of ``device`` or ``os`` + ``arch`` (+ optional ``accelerator``)."""

    device: str | None = None
    os: str | None = None
    arch: str | None = None
    accelerator: str | None = None


@dataclass(frozen=True)
class CompilationJobProps:
    """framework_version: PyTorch version the model was traced with (Neo's FrameworkVersion).
    input_shape: NCHW shape of ``input0``. max_runtime_seconds: stopping condition (<= 3000).
    compiler_options: Neo CompilerOptions (JSON object) or None."""

    framework_version: str
    input_shape: tuple[int, int, int, int]
    target: NeoTargetProps
    max_runtime_seconds: int
    compiler_options: dict[str, object] | None = None


class CompilationJob(Construct):
    """Compiles a traced PyTorch ``model.tar.gz`` with Neo; output under ``compiled/<job>/``.

    Props:
        name_prefix: prefix of the job name (``<prefix>-neo-<digest>``).
        bucket: artifact bucket (reads ``training/``, writes ``compiled/``).
        model_artifact_uri: S3 URI of the model archive (a token from the training job, or a
            literal URI of a model brought from elsewhere).
        upstream_id: a string that changes whenever the model behind ``model_artifact_uri``
            does (the training job name); it is part of this job's name.
        after: what must finish before compiling (the training WaitCondition).
        props: :class:`CompilationJobProps`.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name_prefix: str,
        bucket: s3.IBucket,
        model_artifact_uri: str,
        upstream_id: str,
        after: Sequence[IDependable],
        props: CompilationJobProps,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, id_)
        self.role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="SageMaker execution role of the Neo compilation job",
        )
        if model_artifact_uri.startswith("s3://"):
            grant_read_object(self.role, model_artifact_uri)
        else:
            bucket.grant_read(self.role, f"{Prefixes.TRAINING}*")
        bucket.grant_put(self.role, f"{Prefixes.COMPILED}*")
        acknowledge_scoped_wildcards(
            self.role,
            "Neo reads the model from training/ and writes its output under "
            "compiled/<job name>/ (file name chosen by Neo); grant_* adds the object-level "
            "action families for those prefixes only.",
        )

        target = props.target
        inputs: dict[str, object] = {
            "RoleArn": self.role.role_arn,
            "Upstream": upstream_id,
            "ModelArtifactUri": model_artifact_uri,
            "Framework": "PYTORCH",
            "FrameworkVersion": props.framework_version,
            "DataInputConfig": json.dumps({INPUT_NAME: list(props.input_shape)}),
            "MaxRuntimeSeconds": str(props.max_runtime_seconds),
            "CompilerOptions": json.dumps(props.compiler_options, sort_keys=True)
            if props.compiler_options
            else "",
        }
        if target.device:
            inputs["TargetDevice"] = target.device
        else:
            inputs["TargetPlatformOs"] = target.os or ""
            inputs["TargetPlatformArch"] = target.arch or ""
            if target.accelerator:
                inputs["TargetPlatformAccelerator"] = target.accelerator
        content = digest(self, inputs)
        self.job_name = job_name(name_prefix, "neo", content)

        on_event = PythonFunction(
            self,
            "Handler",
            code_dir=RUNTIME_DIR,
            handler="compilation_handler.on_event",
            timeout=Duration.minutes(2),
            log_retention=log_retention,
            description="Custom::CompilationJob: starts, finds or stops a Neo compilation job",
        )
        is_complete = PythonFunction(
            self,
            "IsComplete",
            code_dir=RUNTIME_DIR,
            handler="compilation_handler.is_complete",
            timeout=Duration.minutes(1),
            log_retention=log_retention,
            description="Custom::CompilationJob: reports whether the Neo job has finished",
        )
        job_arns = allow_job_management(
            on_event.role,
            job_kind="CompilationJob",
            name_pattern=f"{name_prefix}-neo-*",
            execution_role=self.role,
        )
        is_complete.role.add_to_policy(
            iam.PolicyStatement(
                sid="DescribeCompilationJobs",
                actions=["sagemaker:DescribeCompilationJob"],
                resources=[job_arns],
            )
        )
        acknowledge_job_prefix(is_complete.role)
        total = Duration.seconds(
            min(
                MAX_TOTAL_WAIT.to_seconds(),
                props.max_runtime_seconds + WAIT_HEADROOM.to_seconds(),
            )
        )
        provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=on_event.function,
            is_complete_handler=is_complete.function,
            query_interval=POLL_INTERVAL,
            total_timeout=total,
            log_group=logs.LogGroup(self, "ProviderLogs", retention=log_retention),
        )
        acknowledge_provider_framework(provider)

        self.resource = CustomResource(
            self,
            "Resource",
            service_token=provider.service_token,
            resource_type="Custom::CompilationJob",
            properties={
                **inputs,
                "OutputS3Uri": f"s3://{bucket.bucket_name}/{Prefixes.COMPILED}{self.job_name}",
                "JobName": self.job_name,
            },
        )
        self.resource.node.add_dependency(self.role, *after)
        self.compiled_artifact_uri = self.resource.get_att_string("CompiledArtifactUri")
