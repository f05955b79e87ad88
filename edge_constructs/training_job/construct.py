"""A SageMaker training job as a CloudFormation custom resource that may run for hours.

Completion path (a custom resource must answer within one hour, a training job need not):

1. ``Custom::TrainingJob`` starts the job (or finds it: the name is derived from the inputs)
   and answers at once with the job name and the model artifact location.
2. An EventBridge rule on *SageMaker Training Job State Change* for exactly that job name
   queues a message (SQS) that a small Lambda consumes to signal a CloudFormation
   ``WaitCondition`` (up to 12 h): SUCCESS when the job completes, FAILURE with SageMaker's
   FailureReason when it fails or is stopped. A signal that fails is retried for an hour, then
   lands in a dead-letter queue with an alarm (``_signal_queue``).
   If the job had already ended when the resource was (re)created, the handler signals itself.
3. Everything that needs the model (compilation) depends on the WaitCondition.

The wait handle and condition carry the job's input digest in their logical IDs: a new job gets
a fresh condition to wait on, and ``cdk diff`` shows the replacement.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from aws_cdk import (
    Aws,
    CfnResource,
    CfnWaitCondition,
    CfnWaitConditionHandle,
    CustomResource,
    Duration,
    Stack,
)
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_event_sources as lambda_events
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sqs as sqs
from aws_cdk import custom_resources as cr
from constructs import Construct

from edge_constructs.artifact_bucket.construct import Prefixes
from edge_constructs.bundles import build_source_tarball, trusted_build_dir
from edge_constructs.lambda_function import PythonFunction
from edge_constructs.limits import MAX_WAIT_CONDITION_SECONDS, SIGNAL_MARGIN_SECONDS
from edge_constructs.nag import (
    ASSET_OBJECTS,
    S3_DELETE,
    S3_OBJECT_ACTIONS,
    acknowledge_provider_framework,
    acknowledge_wildcards,
    resource_ending,
    resources,
)
from edge_constructs.naming import digest, job_name, register_content, without
from edge_constructs.props import TrainingConfig
from edge_constructs.runtime_common.cr_names import Training as P
from edge_constructs.s3_grants import grant_read_prefix, prefix_finding
from edge_constructs.sagemaker_jobs import allow_job_management
from edge_constructs.training_job.ecr_image import parse_ecr_image_uri
from edge_constructs.training_job.images import REPOSITORY, training_image

RUNTIME_DIR = Path(__file__).parent / "runtime"
# Receives of a signal message before it moves to the dead-letter queue (Lambda recommends at
# least 5); times the visibility timeout (6 x 30 s) that is an hour of retries.
SIGNAL_RECEIVES = 20
ENTRY_POINT = "train.py"
# What the job name may not follow, and why. Everything else the handler receives counts.
DIGEST_EXCLUSIONS = {
    P.JOB_NAME: "derived from this digest",
    P.CHECKPOINT_S3_URI: "derived from the job name (checkpoints/<job name>/)",
    P.WAIT_HANDLE_URL: "a handle per digest: its logical ID carries the digest",
}
# `run_id` becomes part of the job's properties; SageMaker job names and tags allow this set.
RUN_ID_RE = re.compile(r"^[A-Za-z0-9-]{1,32}$")


class TrainingJob(Construct):
    """Starts a training job and waits (via a WaitCondition) until it has produced a model.

    Props:
        name_prefix: prefix of the job name (``<prefix>-train-<digest>``).
        bucket: artifact bucket; output under ``training/``, checkpoints under
            ``checkpoints/<job name>/``.
        training: the stage's :class:`app_config.TrainingConfig`, used as is.
        architecture / input_shape: the torchvision model and its NCHW input (hyperparameters
            ``arch`` and ``input-shape`` of ``train.py``).
        framework_version: PyTorch version of the training image; must equal Neo's.
        source_dir: the training script's folder (``train.py``, ``metric_definitions.json``),
            shipped as a reproducible tar.gz.
        log_retention: retention of the handler logs.

    The job name is a digest of every property the handler receives (less
    ``DIGEST_EXCLUSIONS``) and of the whole ``training`` configuration: no input can change
    without giving a new job.

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
        training: TrainingConfig,
        architecture: str,
        input_shape: tuple[int, int, int, int],
        framework_version: str,
        source_dir: Path,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, id_)
        if not RUN_ID_RE.match(training.run_id):
            raise ValueError(f"run_id {training.run_id!r}: expected 1-32 letters, digits or -")
        props = training
        # SageMaker's training toolkit pip-installs the source folder's requirements.txt
        # before the script runs (aws/sagemaker-training-toolkit, entry_point.py ``install``:
        # modules.has_requirements, modules.install_requirements). It holds what only int8
        # quantization needs (onnxruntime, onnx), so it ships only with an int8 class: other
        # jobs install nothing and need no network for it.
        int8 = training.hyperparameters.get("quantize") == "int8"
        tarball = build_source_tarball(
            source_dir, trusted_build_dir(self), exclude=() if int8 else ("requirements.txt",)
        )
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
        for uri in (props.data_uri, props.validation_uri):
            if uri:
                grant_read_prefix(self.role, uri)
        if props.image_uri:
            # By tag or digest, nested repository names included (ecr_image.py); the ARN carries
            # the registry's own account and region.
            image_uri = props.image_uri
            repository_arn = parse_ecr_image_uri(image_uri).repository_arn(Aws.PARTITION)
        else:
            image_uri, registry_account = training_image(
                self, framework_version, props.instance_type
            )
            repository_arn = (
                f"arn:{Aws.PARTITION}:ecr:{Aws.REGION}:{registry_account}:repository/{REPOSITORY}"
            )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="PullTrainingImage",
                actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                resources=[repository_arn],
            )
        )
        job_logs = (
            f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:"
            "log-group:/aws/sagemaker/TrainingJobs"
        )
        job_logs_finding = (
            "arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:"
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
        # The two actions that support no resource ARN, in a policy of their own: its
        # Resource::* acknowledgement cannot cover a "*" added to the role later.
        unscopable = iam.Policy(
            self,
            "UnscopableActions",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(
                    sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]
                ),
                iam.PolicyStatement(
                    sid="JobMetrics",
                    actions=["cloudwatch:PutMetricData"],
                    resources=["*"],
                    conditions={
                        "StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}
                    },
                ),
            ],
        )
        acknowledge_wildcards(
            unscopable,
            "ecr:GetAuthorizationToken and cloudwatch:PutMetricData support no resource ARN "
            "(Service Authorization Reference); PutMetricData is limited to the SageMaker "
            "training namespace by condition.",
            resources("*"),
        )
        hyperparameters = {
            # Always export ONNX too: an ONNX device class packages it, and adding one must
            # not change the training job the other classes depend on.
            "export-onnx": "true",
            **props.hyperparameters,
            "arch": architecture,
            "input-shape": ",".join(str(d) for d in input_shape),
            "sagemaker_program": ENTRY_POINT,
            "sagemaker_submit_directory": source.s3_object_url,
            "sagemaker_region": Aws.REGION,
        }
        properties: dict[str, object] = {
            P.ROLE_ARN: self.role.role_arn,
            P.IMAGE_URI: image_uri,
            P.INSTANCE_TYPE: props.instance_type,
            P.INSTANCE_COUNT: str(props.instance_count),
            P.VOLUME_SIZE_GB: str(props.volume_gb),
            P.MAX_RUNTIME_SECONDS: str(props.max_runtime_seconds),
            P.USE_SPOT: "true" if props.use_spot else "false",
            P.MAX_WAIT_SECONDS: str(props.max_wait_seconds) if props.use_spot else "",
            # Known once the name is: checkpoints/<job name>/ (below). UseSpot is an input.
            P.CHECKPOINT_S3_URI: "",
            P.OUTPUT_S3_URI: output_uri,
            P.TRAIN_S3_URI: props.data_uri,
            P.VALIDATION_S3_URI: props.validation_uri,
            P.HYPERPARAMETERS: hyperparameters,
            P.METRIC_DEFINITIONS: json.loads((source_dir / "metric_definitions.json").read_text()),
            P.RUN_ID: props.run_id,
        }
        # Every property the handler will receive, less the explicit exclusions (filled in
        # below, once the digest is known).
        excluded_later = {P.JOB_NAME: "", P.WAIT_HANDLE_URL: ""}  # filled in below
        content = digest(
            self,
            {
                "properties": without({**properties, **excluded_later}, DIGEST_EXCLUSIONS),
                # The whole configuration too, so that a field the properties do not (yet)
                # carry still renames the job.
                "training": dataclasses.asdict(props),
            },
        )
        self.job_name = job_name(name_prefix, "train", content)
        self.output_uri = output_uri
        if props.use_spot:
            # Each job its own checkpoints. SageMaker copies everything under CheckpointS3Uri
            # into a new job before it starts (developer guide, "Use checkpoints in Amazon
            # SageMaker AI"), so a prefix shared by jobs (it used to be <prefix>/<run_id>)
            # made a retrain with new hyperparameters resume the old job's last epoch and ship
            # its weights. The name is a digest of every input, so the prefix changes exactly
            # when the inputs do, and a retry of the same job still resumes its own progress.
            checkpoints = f"{Prefixes.CHECKPOINTS}{self.job_name}/"
            properties[P.CHECKPOINT_S3_URI] = f"s3://{bucket.bucket_name}/{checkpoints}"
            bucket.grant_read_write(self.role, f"{checkpoints}*")
        acknowledge_wildcards(
            self.role,
            "SageMaker writes the job's output under training/<job name>/ and checkpoints under "
            "checkpoints/<job name>/ (object names known only to the job); grant_* adds the "
            "object-level action families (s3:GetObject*, s3:List*, s3:Abort*) for those prefixes"
            " only. The source bundle is one object in the CDK asset bucket (its key is a content"
            " hash, so CDK grants the bucket's objects); the job's logs go to its own log "
            "streams.",
            [
                *S3_OBJECT_ACTIONS,
                *(S3_DELETE if props.use_spot else []),
                resource_ending(f"/{Prefixes.TRAINING}*"),
                *(
                    [resource_ending(f"/{Prefixes.CHECKPOINTS}{self.job_name}/*")]
                    if props.use_spot
                    else []
                ),
                ASSET_OBJECTS,
                *resources(f"{job_logs_finding}:log-stream:*"),
                # The data channels the user named, exactly.
                *(prefix_finding(uri) for uri in (props.data_uri, props.validation_uri) if uri),
            ],
        )

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
        self.signals, self.dead_signals = self._signal_queue(signaller)
        rule.add_target(
            targets.SqsQueue(
                self.signals,
                message=events.RuleTargetInput.from_object(
                    {"handleUrl": handle.ref, "detail": events.EventField.from_path("$.detail")}
                ),
                # Delivery to the queue: EventBridge's retry policy, then its own DLQ.
                retry_attempts=185,
                max_event_age=Duration.hours(24),
                dead_letter_queue=self.dead_signals,
            )
        )

        self.resource = CustomResource(
            self,
            "Resource",
            service_token=provider.service_token,
            resource_type="Custom::TrainingJob",
            properties={
                **{k: _as_property(self, v) for k, v in properties.items()},
                P.JOB_NAME: self.job_name,
                P.WAIT_HANDLE_URL: handle.ref,
            },
        )
        resource_properties = self.resource.node.default_child
        assert isinstance(resource_properties, CfnResource)
        register_content(resource_properties, content)
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
        self.model_artifact_uri = self.resource.get_att_string(P.MODEL_ARTIFACT_URI)
        #: Where SageMaker uploads SM_OUTPUT_DATA_DIR (``model.onnx``, labels, metadata):
        #: ``<S3OutputPath>/<job name>/output/output.tar.gz`` (SageMaker developer guide, "How
        #: Amazon SageMaker Processes Training Output"). Known at synth; valid after ``completion``.
        self.onnx_artifact_uri = f"{output_uri}/{self.job_name}/output/output.tar.gz"

    def _signal_queue(self, signaller: PythonFunction) -> tuple[sqs.Queue, sqs.Queue]:
        """The queue between the job-state rule and the signaller, and its dead-letter queue.

        Retry semantics relied on (training_signal.py says what each outcome does):

        * Lambda consumes the queue through an event source mapping with partial batch
          responses; a record the function reports failed becomes visible again after the
          queue's visibility timeout, and after ``maxReceiveCount`` receives SQS moves it to
          the dead-letter queue (Lambda Developer Guide, "Handling errors for an SQS event
          source in Lambda"; SQS Developer Guide, "Using dead-letter queues in Amazon SQS").
        * Visibility timeout: at least six times the function's timeout (Lambda Developer
          Guide, "Creating and configuring an Amazon SQS event source mapping"); with
          SIGNAL_RECEIVES receives that is an hour of retries. The source queue keeps a message
          longer than that, so a message reaches the DLQ rather than expiring.
        * The dead-letter queue keeps messages 14 days (SQS's maximum, ``MessageRetentionPeriod``
          in botocore's sqs model), and an alarm fires while it holds any: a signal that could
          not be sent is something a user sees, not only a WaitCondition Timeout hours later.
          EventBridge sends events it could not deliver to the queue there too.

        The messages carry the presigned handle URL: both queues are encrypted (SQS-managed
        keys, which EventBridge can send to without a key policy) and refuse non-TLS access.
        """
        dead = sqs.Queue(
            self,
            "SignalDeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        timeout = signaller.function.timeout
        assert timeout is not None
        queue = sqs.Queue(
            self,
            "Signals",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(6 * timeout.to_seconds()),
            retention_period=Duration.days(1),
            dead_letter_queue=sqs.DeadLetterQueue(queue=dead, max_receive_count=SIGNAL_RECEIVES),
        )
        signaller.function.add_event_source(
            lambda_events.SqsEventSource(queue, batch_size=10, report_batch_item_failures=True)
        )
        cloudwatch.Alarm(
            self,
            "SignalNotSent",
            alarm_description=(
                f"A wait-condition signal for training job {self.job_name} could not be sent "
                "(see the Signaller's log); the stack waits until the WaitCondition times out."
            ),
            metric=dead.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        return queue, dead


def _as_property(scope: Construct, value: object) -> object:
    """Custom-resource properties arrive as strings: nested values travel as JSON strings."""
    if isinstance(value, (dict, list)):
        return Stack.of(scope).to_json_string(value)
    return value
