"""Custom::TrainingJob logic: properties in, CreateTrainingJob request out; idempotent on JobName.

Completion is not polled here: a training job can outlast the one-hour custom-resource limit,
so the stack waits on a CloudFormation WaitCondition that ``training_signal`` (EventBridge) or,
for a job that had already ended, the create path signals. Nothing here creates a client:
the SageMaker client is passed in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

import wait_condition_signal
from cr_names import Training as P
from cr_properties import (
    PropertyError,
    boolean,
    integer,
    job_name,
    json_list,
    s3_uri,
    string,
    string_map,
    tag_list,
)
from job_lifecycle import JobKind

LOGGER = logging.getLogger(__name__)

CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"

Signaller = Callable[[str, str, str, Optional[str], Optional[str]], Any]


@dataclass(frozen=True)
class TrainingProps:
    job_name: str
    role_arn: str
    image_uri: str
    instance_type: str
    instance_count: int
    volume_size_gb: int
    max_runtime_seconds: int
    use_spot: bool
    max_wait_seconds: Optional[int]
    checkpoint_s3_uri: str
    output_s3_uri: str
    train_s3_uri: str
    validation_s3_uri: str
    hyperparameters: dict[str, str]
    metric_definitions: list[dict[str, str]]
    wait_handle_url: str
    tags: list[dict[str, str]]

    @property
    def model_artifact_uri(self) -> str:
        return model_artifact_uri(self.output_s3_uri, self.job_name)


def model_artifact_uri(output_s3_uri: str, name: str) -> str:
    return f"{output_s3_uri.rstrip('/')}/{name}/output/model.tar.gz"


def parse_props(props: Mapping[str, Any]) -> TrainingProps:
    """Parse the string-typed ResourceProperties; every error names the property."""
    use_spot = boolean(props, P.USE_SPOT)
    max_runtime = integer(props, P.MAX_RUNTIME_SECONDS)
    max_wait: Optional[int] = None
    if use_spot:
        max_wait = integer(props, P.MAX_WAIT_SECONDS)
        if max_wait < max_runtime:
            raise PropertyError(
                f"Property MaxWaitSeconds ({max_wait}) must be at least "
                f"MaxRuntimeSeconds ({max_runtime}) when UseSpot is true"
            )

    metrics = json_list(props, P.METRIC_DEFINITIONS)
    if not all(
        isinstance(m, dict)
        and set(m) == {"Name", "Regex"}
        and all(isinstance(v, str) and v for v in m.values())
        for m in metrics
    ):
        raise PropertyError(
            'Property MetricDefinitions must be a JSON list of {"Name": str, "Regex": str}'
        )

    return TrainingProps(
        job_name=job_name(props),
        role_arn=string(props, P.ROLE_ARN),
        image_uri=string(props, P.IMAGE_URI),
        instance_type=string(props, P.INSTANCE_TYPE),
        instance_count=integer(props, P.INSTANCE_COUNT),
        volume_size_gb=integer(props, P.VOLUME_SIZE_GB),
        max_runtime_seconds=max_runtime,
        use_spot=use_spot,
        max_wait_seconds=max_wait,
        checkpoint_s3_uri=s3_uri(props, P.CHECKPOINT_S3_URI, required=False),
        output_s3_uri=s3_uri(props, P.OUTPUT_S3_URI),
        train_s3_uri=s3_uri(props, P.TRAIN_S3_URI, required=False),
        validation_s3_uri=s3_uri(props, P.VALIDATION_S3_URI, required=False),
        hyperparameters=string_map(props, P.HYPERPARAMETERS),
        metric_definitions=[dict(m) for m in metrics],
        wait_handle_url=string(props, P.WAIT_HANDLE_URL),
        tags=tag_list(props),
    )


# ---------------------------------------------------------------- request builder
def _channel(name: str, s3_uri: str) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": s3_uri,
                "S3DataDistributionType": "FullyReplicated",
            }
        },
        "InputMode": "File",
    }


def build_create_request(p: TrainingProps) -> dict[str, Any]:
    """The CreateTrainingJob request for ``p`` (pure)."""
    algorithm: dict[str, Any] = {"TrainingImage": p.image_uri, "TrainingInputMode": "File"}
    if p.metric_definitions:
        algorithm["MetricDefinitions"] = p.metric_definitions
    stopping: dict[str, int] = {"MaxRuntimeInSeconds": p.max_runtime_seconds}
    if p.use_spot and p.max_wait_seconds is not None:
        stopping["MaxWaitTimeInSeconds"] = p.max_wait_seconds

    request: dict[str, Any] = {
        "TrainingJobName": p.job_name,
        "RoleArn": p.role_arn,
        "AlgorithmSpecification": algorithm,
        "HyperParameters": p.hyperparameters,
        "OutputDataConfig": {"S3OutputPath": p.output_s3_uri},
        "ResourceConfig": {
            "InstanceType": p.instance_type,
            "InstanceCount": p.instance_count,
            "VolumeSizeInGB": p.volume_size_gb,
        },
        "StoppingCondition": stopping,
        "EnableManagedSpotTraining": p.use_spot,
    }
    channels = [
        _channel(name, uri)
        for name, uri in (("train", p.train_s3_uri), ("validation", p.validation_s3_uri))
        if uri
    ]
    if channels:
        request["InputDataConfig"] = channels
    if p.checkpoint_s3_uri:
        request["CheckpointConfig"] = {
            "S3Uri": p.checkpoint_s3_uri,
            "LocalPath": CHECKPOINT_LOCAL_PATH,
        }
    if p.tags:
        request["Tags"] = p.tags
    return request


# ---------------------------------------------------------------- lifecycle
JOB = JobKind(noun="Training", running=frozenset({"InProgress"}))


def _signal_existing(description: dict[str, Any], p: TrainingProps, signal: Signaller) -> None:
    """Signal the handle for a job found already existing (it may have ended).

    An expired handle is no error: nothing waits on it any more (see HandleExpired). That is
    what a rollback Update meets: CloudFormation sends the OLD properties back, with the old
    job's handle, and that handle's wait condition completed when the old job ended.
    """
    status = description.get("TrainingJobStatus", "")
    artifact = description.get("ModelArtifacts", {}).get("S3ModelArtifacts") or (
        p.model_artifact_uri
    )
    try:
        signal(p.wait_handle_url, p.job_name, status, description.get("FailureReason"), artifact)
    except wait_condition_signal.HandleExpired:
        LOGGER.warning(
            "The wait handle of training job %s has expired: its wait condition completed or "
            "timed out long ago, so nothing waits for this signal (a rollback Update)",
            p.job_name,
        )


def _response(p: TrainingProps, description: dict[str, Any]) -> dict[str, Any]:
    return {
        "PhysicalResourceId": p.job_name,
        "Data": {
            "JobName": p.job_name,
            "ModelArtifactUri": p.model_artifact_uri,
            "TrainingJobArn": description.get("TrainingJobArn", ""),
        },
    }


def create(sagemaker: Any, props: Mapping[str, Any], signal: Signaller) -> dict[str, Any]:
    p = parse_props(props)
    description, started = JOB.ensure(sagemaker, p.job_name, lambda: build_create_request(p))
    if not started:
        # The EventBridge rule fires only on a state change; a job that had already ended
        # before this (re)create will never fire it again for this wait handle.
        _signal_existing(description, p, signal)
    return _response(p, description)


def update(
    sagemaker: Any,
    props: Mapping[str, Any],
    old_props: Mapping[str, Any],
    signal: Signaller,
) -> dict[str, Any]:
    p = parse_props(props)
    old_name = old_props.get(P.JOB_NAME)
    description, started = JOB.update(
        sagemaker, p.job_name, old_name, lambda: build_create_request(p)
    )
    # A job found (not started now) that may already have ended: its rule will not fire again
    # for a wait handle it has not signalled (a new name's handle, or a replaced handle).
    if not started and (
        old_name != p.job_name or old_props.get(P.WAIT_HANDLE_URL) != p.wait_handle_url
    ):
        _signal_existing(description, p, signal)
    return _response(p, description)


def delete(sagemaker: Any, physical_id: Optional[str]) -> dict[str, Any]:
    """Stop the job if it runs. Never deletes the job record or its artifacts. Safe twice."""
    return JOB.delete(sagemaker, physical_id)


def on_event(
    event: Mapping[str, Any],
    sagemaker: Any,
    signal: Signaller = wait_condition_signal.signal_if_terminal,
) -> dict[str, Any]:
    request_type = event["RequestType"]
    props = event.get("ResourceProperties", {})
    if request_type == "Create":
        return create(sagemaker, props, signal)
    if request_type == "Update":
        return update(sagemaker, props, event.get("OldResourceProperties", {}), signal)
    if request_type == "Delete":
        return delete(sagemaker, event.get("PhysicalResourceId"))
    raise ValueError(f"Unknown RequestType {request_type!r}")
