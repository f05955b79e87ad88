"""A SageMaker Neo compilation job as a CloudFormation custom resource.

Neo jobs take minutes, so this resource waits inside the custom-resource call using the CDK
Provider framework's ``is_complete`` polling. The stopping condition is capped (app_config:
at most 3000 s) so that polling always ends inside CloudFormation's one-hour limit.

One :class:`CompilationService` per stack (handler Lambdas, Provider, the Neo execution role)
serves a :class:`CompilationJob` per device class: adding a class adds one custom resource.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from aws_cdk import Aws, CfnResource, CustomResource, Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import custom_resources as cr
from constructs import Construct, IDependable

from edge_constructs.artifact_bucket.construct import Prefixes
from edge_constructs.lambda_function import PythonFunction
from edge_constructs.nag import (
    S3_OBJECT_ACTIONS,
    acknowledge_provider_framework,
    acknowledge_wildcards,
    resource_ending,
    resources,
)
from edge_constructs.naming import digest, job_name, register_content, without
from edge_constructs.props import NeoTarget
from edge_constructs.runtime_common.cr_names import Compilation as P
from edge_constructs.s3_grants import grant_read_object
from edge_constructs.sagemaker_jobs import acknowledge_job_prefix, allow_job_management

RUNTIME_DIR = Path(__file__).parent / "runtime"
INPUT_NAME = "input0"
POLL_INTERVAL = Duration.seconds(30)
# Headroom on top of the job's own stopping condition for queueing and polling.
WAIT_HEADROOM = Duration.minutes(10)
MAX_TOTAL_WAIT = Duration.minutes(55)
# Where Neo writes a job's log stream (named after the job).
JOB_LOG_GROUP = "/aws/sagemaker/CompilationJobs"
# What the job name may not follow, and why. Everything else the handler receives counts.
DIGEST_EXCLUSIONS = {
    P.JOB_NAME: "derived from this digest",
    P.OUTPUT_S3_URI: "derived from the job name",
}


class CompilationService(Construct):
    """The handler, poller, Provider and Neo execution role shared by a stack's compilations.

    Props:
        name_prefix: prefix of the job names it may manage (``<prefix>-neo-*``).
        bucket: artifact bucket (Neo reads ``training/``, writes ``compiled/``).
        max_runtime_seconds: the jobs' stopping condition (<= 3000); sets the polling budget.
        log_retention: retention of its logs.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name_prefix: str,
        bucket: s3.IBucket,
        max_runtime_seconds: int,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, id_)
        self.name_prefix = name_prefix
        self.bucket = bucket
        self.max_runtime_seconds = max_runtime_seconds
        self.role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="SageMaker execution role of the Neo compilation jobs",
        )
        bucket.grant_read(self.role, f"{Prefixes.TRAINING}*")
        bucket.grant_put(self.role, f"{Prefixes.COMPILED}*")
        logs_finding = self._grant_job_logs_and_metrics(name_prefix)
        acknowledge_wildcards(
            self.role,
            "Neo reads the model from training/ and writes its output under "
            "compiled/<job name>/ (file name chosen by Neo); grant_* adds the object-level "
            "action families for those prefixes only. Its logs go to the log group "
            f"{JOB_LOG_GROUP} (CreateLogStream/DescribeLogStreams act on the group, written "
            "<group>:*), PutLogEvents only to the streams of this stack's jobs.",
            [
                *S3_OBJECT_ACTIONS,
                resource_ending(f"/{Prefixes.TRAINING}*"),
                resource_ending(f"/{Prefixes.COMPILED}*"),
                *resources(f"{logs_finding}:*", f"{logs_finding}:log-stream:{name_prefix}-neo-*"),
            ],
        )
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
        acknowledge_job_prefix(
            is_complete.role, job_kind="CompilationJob", name_pattern=f"{name_prefix}-neo-*"
        )
        total = Duration.seconds(
            min(
                MAX_TOTAL_WAIT.to_seconds(),
                max_runtime_seconds + WAIT_HEADROOM.to_seconds(),
            )
        )
        self.provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=on_event.function,
            is_complete_handler=is_complete.function,
            query_interval=POLL_INTERVAL,
            total_timeout=total,
            log_group=logs.LogGroup(self, "ProviderLogs", retention=log_retention),
        )
        acknowledge_provider_framework(self.provider)

    def _grant_job_logs_and_metrics(self, name_prefix: str) -> str:
        """What CreateCompilationJob's RoleArn is documented to need beyond S3: "Write logs to
        Amazon CloudWatch Logs" and "Publish metrics to Amazon CloudWatch" (botocore sagemaker
        CreateCompilationJobRequest.RoleArn; SageMaker developer guide, "How to use SageMaker
        AI execution roles", CreateCompilationJob API: Execution Role Permissions). Without
        them a failed compile leaves no log to read. Returns the log group's ARN as cdk-nag
        writes it, for the acknowledgement.

        Scope, from the docs: Neo logs to the group ``/aws/sagemaker/CompilationJobs``, one
        stream per job named after it (SageMaker developer guide, "Log groups and streams that
        Amazon SageMaker AI sends to Amazon CloudWatch Logs"), so PutLogEvents (resource type
        log-stream) gets this stack's job names only. CreateLogGroup takes the group's ARN,
        the other group actions the group's ARN with ``:*`` (CloudWatch Logs User Guide,
        "Overview of managing access permissions to your CloudWatch Logs resources").
        PutMetricData supports no resource ARN (Service Authorization Reference); the namespace
        is limited by condition to ``/aws/sagemaker/*``, where SageMaker AI publishes its job
        metrics (developer guide, "Amazon SageMaker AI metrics in Amazon CloudWatch"; no page
        names a namespace for compilation jobs, so no narrower one is safe). It lives in a
        policy of its own, like the training role's, so that its ``Resource::*``
        acknowledgement cannot cover a "*" added to the role later.
        """
        group = f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:{JOB_LOG_GROUP}"
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="JobLogGroup", actions=["logs:CreateLogGroup"], resources=[group]
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="JobLogStreams",
                actions=["logs:CreateLogStream", "logs:DescribeLogStreams"],
                resources=[f"{group}:*"],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="JobLogEvents",
                actions=["logs:PutLogEvents"],
                resources=[f"{group}:log-stream:{name_prefix}-neo-*"],
            )
        )
        metrics = iam.Policy(
            self,
            "JobMetrics",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(
                    sid="JobMetrics",
                    actions=["cloudwatch:PutMetricData"],
                    resources=["*"],
                    conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
                )
            ],
        )
        acknowledge_wildcards(
            metrics,
            "cloudwatch:PutMetricData supports no resource ARN (Service Authorization "
            "Reference); it is limited to SageMaker's /aws/sagemaker/* namespaces by condition.",
            resources("*"),
        )
        return f"arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:{JOB_LOG_GROUP}"

    def grant_read_uri(self, uri: str) -> None:
        """Let Neo read a literal ``s3://`` model brought from outside this app."""
        grant_read_object(self.role, uri)


class CompilationJob(Construct):
    """Compiles a traced PyTorch ``model.tar.gz`` with Neo; output under ``compiled/<job>/``.

    Props:
        service: the stack's :class:`CompilationService`.
        model_artifact_uri: S3 URI of the model archive (a token from the training job, whose
            content the job name follows by construction, or a literal URI of a brought model).
        after: what must finish before compiling (the training WaitCondition).
        target: the device class's :class:`app_config.NeoTarget`, used as is.
        framework_version: PyTorch version the model was traced with (Neo's FrameworkVersion).
        input_shape: NCHW shape of ``input0``.
        compiler_options: Neo CompilerOptions (JSON object) or None.

    The job name is a digest of every property the handler receives, less
    ``DIGEST_EXCLUSIONS``.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        service: CompilationService,
        model_artifact_uri: str,
        after: Sequence[IDependable],
        target: NeoTarget,
        framework_version: str,
        input_shape: tuple[int, int, int, int],
        compiler_options: dict[str, object] | None = None,
    ) -> None:
        super().__init__(scope, id_)
        properties: dict[str, object] = {
            P.ROLE_ARN: service.role.role_arn,
            P.MODEL_ARTIFACT_URI: model_artifact_uri,
            P.FRAMEWORK: "PYTORCH",
            P.FRAMEWORK_VERSION: framework_version,
            P.DATA_INPUT_CONFIG: json.dumps({INPUT_NAME: list(input_shape)}),
            P.MAX_RUNTIME_SECONDS: str(service.max_runtime_seconds),
            P.COMPILER_OPTIONS: json.dumps(compiler_options, sort_keys=True)
            if compiler_options
            else "",
        }
        if target.device:
            properties[P.TARGET_DEVICE] = target.device
        else:
            properties[P.TARGET_PLATFORM_OS] = target.os or ""
            properties[P.TARGET_PLATFORM_ARCH] = target.arch or ""
            if target.accelerator:
                properties[P.TARGET_PLATFORM_ACCELERATOR] = target.accelerator
        excluded_later = {P.JOB_NAME: "", P.OUTPUT_S3_URI: ""}
        content = digest(self, without({**properties, **excluded_later}, DIGEST_EXCLUSIONS))
        self.job_name = job_name(service.name_prefix, "neo", content)
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=service.provider.service_token,
            resource_type="Custom::CompilationJob",
            properties={
                **properties,
                P.OUTPUT_S3_URI: f"s3://{service.bucket.bucket_name}/{Prefixes.COMPILED}"
                f"{self.job_name}",
                P.JOB_NAME: self.job_name,
            },
        )
        self.resource.node.add_dependency(service.role, *after)
        cfn = self.resource.node.default_child
        assert isinstance(cfn, CfnResource)
        register_content(cfn, content)
        self.compiled_artifact_uri = self.resource.get_att_string(P.COMPILED_ARTIFACT_URI)
