"""A SageMaker training job as a CloudFormation custom resource that may run for hours.

Completion path (a custom resource must answer within one hour, a training job need not):

1. ``Custom::TrainingJob`` starts the job (or finds it: the name is derived from the inputs)
   and answers at once with the job name and the model artifact location.
2. An EventBridge rule on *SageMaker Training Job State Change* for exactly that job name
   invokes a small Lambda that signals a CloudFormation ``WaitCondition`` (up to 12 h): SUCCESS
   when the job completes, FAILURE with SageMaker's FailureReason when it fails or is stopped.
   If the job had already ended when the resource was (re)created, the handler signals itself.
3. Everything that needs the model (compilation) depends on the WaitCondition.

The wait handle and condition carry the job's input digest in their logical IDs: a new job gets
a fresh condition to wait on, and ``cdk diff`` shows the replacement.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import (
    Aws,
    CfnWaitCondition,
    CfnWaitConditionHandle,
    CustomResource,
    Duration,
    Stack,
)
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import custom_resources as cr
from constructs import Construct

from edge_constructs.artifact_bucket.construct import Prefixes
from edge_constructs.bundles import BUILD_DIR, build_source_tarball
from edge_constructs.lambda_function import PythonFunction
from edge_constructs.nag import acknowledge_provider_framework, acknowledge_scoped_wildcards
from edge_constructs.naming import digest, job_name
from edge_constructs.s3_grants import grant_read_prefix
from edge_constructs.sagemaker_jobs import allow_job_management
from edge_constructs.training_job.images import REPOSITORY, training_image

RUNTIME_DIR = Path(__file__).parent / "runtime"
MAX_WAIT_CONDITION_SECONDS = 43_200
SIGNAL_MARGIN_SECONDS = 1_800


@dataclass(frozen=True)
class TrainingJobProps:
    """What the training job runs.

    source_dir: folder with the training script (shipped as a reproducible tar.gz).
    entry_point: script SageMaker runs from it (``sagemaker_program``).
    framework_version: PyTorch version of the training image; must equal Neo's.
    instance_type / instance_count / volume_gb: the training cluster.
    max_runtime_seconds: SageMaker stopping condition.
    use_spot / max_wait_seconds: managed spot training (checkpoints go to the bucket, under
        a prefix of the job's own).
    image_uri: override of the image ("" = the SageMaker PyTorch image for the region).
    train_uri / validation_uri: S3 prefixes of the data channels ("" = none; with no train
        channel the script exports the stock model unchanged).
    hyperparameters: passed to the script as ``--key value``.
    metric_definitions: SageMaker metric definitions (Name, Regex).
    run_id: bump to re-run a job whose inputs did not change.
    """

    source_dir: Path
    entry_point: str
    framework_version: str
    instance_type: str
    instance_count: int
    volume_gb: int
    max_runtime_seconds: int
    use_spot: bool
    max_wait_seconds: int
    image_uri: str
    train_uri: str
    validation_uri: str
    hyperparameters: dict[str, str]
    metric_definitions: list[dict[str, str]]
    run_id: str


class TrainingJob(Construct):
    """Starts a training job and waits (via a WaitCondition) until it has produced a model.

    Props:
        name_prefix: prefix of the job name (``<prefix>-train-<digest>``).
        bucket: artifact bucket; output under ``training/``, checkpoints under
            ``checkpoints/<job name>/``.
        props: :class:`TrainingJobProps`.
        log_retention: retention of the handler logs.

    Attributes: ``job_name`` (known at synth), ``model_artifact_uri`` (a token),
    ``completion`` (the WaitCondition to depend on), ``role`` (the SageMaker execution role).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name_prefix: str,
        bucket: s3.IBucket,
        props: TrainingJobProps,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, id_)
        tarball = build_source_tarball(props.source_dir, BUILD_DIR)
        source = s3_assets.Asset(self, "SourceBundle", path=str(tarball))

        self.role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="SageMaker execution role of the training job",
        )
        source.grant_read(self.role)
        output_uri = f"s3://{bucket.bucket_name}/{Prefixes.TRAINING.rstrip('/')}"
        bucket.grant_put(self.role, f"{Prefixes.TRAINING}*")
        bucket.grant_read(self.role, f"{Prefixes.TRAINING}*")
        for uri in (props.train_uri, props.validation_uri):
            if uri:
                grant_read_prefix(self.role, uri)
        image_uri, registry_account = (
            (props.image_uri, props.image_uri.split(".", 1)[0])
            if props.image_uri
            else training_image(self, props.framework_version, props.instance_type)
        )
        repository = (
            props.image_uri.split("/", 1)[1].split(":")[0] if props.image_uri else REPOSITORY
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="PullTrainingImage",
                actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                resources=[
                    f"arn:{Aws.PARTITION}:ecr:{Aws.REGION}:{registry_account}:repository/{repository}"
                ],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]
            )
        )
        job_logs = (
            f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:"
            "log-group:/aws/sagemaker/TrainingJobs"
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="JobLogs",
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                resources=[job_logs, f"{job_logs}:log-stream:*"],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="JobMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={
                    "StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}
                },
            )
        )

        acknowledge_scoped_wildcards(
            self.role,
            "SageMaker writes the job's output under training/<job name>/ and checkpoints under "
            "checkpoints/<job name>/ (object names known only to the job); grant_* adds the "
            "object-level action families (s3:GetObject*, s3:List*, s3:Abort*) for those prefixes"
            " only. The source bundle is one object in the CDK asset bucket (its key is a content"
            " hash, so CDK grants the bucket's objects); the job's logs go to its own log "
            "streams; ecr:GetAuthorizationToken and cloudwatch:PutMetricData (namespace-"
            "conditioned) support no resource ARN.",
        )
        hyperparameters = {
            **props.hyperparameters,
            "sagemaker_program": props.entry_point,
            "sagemaker_submit_directory": source.s3_object_url,
            "sagemaker_region": Aws.REGION,
        }
        inputs = {
            "RoleArn": self.role.role_arn,
            "ImageUri": image_uri,
            "InstanceType": props.instance_type,
            "InstanceCount": str(props.instance_count),
            "VolumeSizeGb": str(props.volume_gb),
            "MaxRuntimeSeconds": str(props.max_runtime_seconds),
            "UseSpot": "true" if props.use_spot else "false",
            "MaxWaitSeconds": str(props.max_wait_seconds) if props.use_spot else "",
            # Known once the name is: checkpoints/<job name>/ (below). UseSpot is an input.
            "CheckpointS3Uri": "",
            "OutputS3Uri": output_uri,
            "TrainS3Uri": props.train_uri,
            "ValidationS3Uri": props.validation_uri,
            "Hyperparameters": hyperparameters,
            "MetricDefinitions": props.metric_definitions,
            "RunId": props.run_id,
        }
        content = digest(self, inputs)
        self.job_name = job_name(name_prefix, "train", content)
        if props.use_spot:
            # Each job its own checkpoints. SageMaker copies everything under CheckpointS3Uri
            # into a new job before it starts (developer guide, "Use checkpoints in Amazon
            # SageMaker AI"), so a prefix shared by jobs (it used to be <prefix>/<run_id>)
            # made a retrain with new hyperparameters resume the old job's last epoch and ship
            # its weights. The name is a digest of every input, so the prefix changes exactly
            # when the inputs do, and a retry of the same job still resumes its own progress.
            checkpoints = f"{Prefixes.CHECKPOINTS}{self.job_name}/"
            inputs["CheckpointS3Uri"] = f"s3://{bucket.bucket_name}/{checkpoints}"
            bucket.grant_read_write(self.role, f"{checkpoints}*")

        on_event = PythonFunction(
            self,
            "Handler",
            code_dir=RUNTIME_DIR,
            handler="training_handler.handler",
            timeout=Duration.minutes(2),
            log_retention=log_retention,
            description="Custom::TrainingJob: starts, finds or stops a SageMaker training job",
        )
        allow_job_management(
            on_event.role,
            job_kind="TrainingJob",
            name_pattern=f"{name_prefix}-train-*",
            execution_role=self.role,
        )

        signaller = PythonFunction(
            self,
            "Signaller",
            code_dir=RUNTIME_DIR,
            handler="training_signal.handler",
            timeout=Duration.seconds(30),
            log_retention=log_retention,
            description="Signals the training WaitCondition when the job ends",
        )
        provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=on_event.function,
            log_group=logs.LogGroup(self, "ProviderLogs", retention=log_retention),
        )
        acknowledge_provider_framework(provider)

        handle = CfnWaitConditionHandle(self, f"WaitHandle{content[:12]}")
        rule = events.Rule(
            self,
            "JobEnded",
            description=f"Training job {self.job_name} reached a terminal state",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Training Job State Change"],
                detail={
                    "TrainingJobName": [self.job_name],
                    "TrainingJobStatus": ["Completed", "Failed", "Stopped"],
                },
            ),
        )
        rule.add_target(
            targets.LambdaFunction(
                signaller.function,
                event=events.RuleTargetInput.from_object(
                    {"handleUrl": handle.ref, "detail": events.EventField.from_path("$.detail")}
                ),
                retry_attempts=20,
                max_event_age=Duration.hours(24),
            )
        )

        self.resource = CustomResource(
            self,
            "Resource",
            service_token=provider.service_token,
            resource_type="Custom::TrainingJob",
            properties={
                **{k: _as_property(self, v) for k, v in inputs.items()},
                "JobName": self.job_name,
                "WaitHandleUrl": handle.ref,
            },
        )
        # The rule must exist before the job can end, and the job's role before it starts.
        self.resource.node.add_dependency(rule, self.role)
        self.completion = CfnWaitCondition(
            self,
            f"WaitCondition{content[:12]}",
            handle=handle.ref,
            count=1,
            timeout=str(
                min(
                    MAX_WAIT_CONDITION_SECONDS,
                    (props.max_wait_seconds if props.use_spot else props.max_runtime_seconds)
                    + SIGNAL_MARGIN_SECONDS,
                )
            ),
        )
        self.completion.node.add_dependency(self.resource)
        self.model_artifact_uri = self.resource.get_att_string("ModelArtifactUri")


def _as_property(scope: Construct, value: object) -> object:
    """Custom-resource properties arrive as strings: nested values travel as JSON strings."""
    if isinstance(value, (dict, list)):
        return Stack.of(scope).to_json_string(value)
    return value
