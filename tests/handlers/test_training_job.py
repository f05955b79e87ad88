"""Custom::TrainingJob: request builder, idempotent create/update/delete, wait-handle signals."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
import training_handler
import training_logic
import wait_condition_signal
from botocore.stub import Stubber

from .conftest import REGION, WaitHandle
from .sagemaker_fake import SageMakerFake

ROLE = "arn:aws:iam::123456789012:role/training"
OUTPUT = "s3://artifacts-bucket/training/"


def props(wait_url: str = "https://example.invalid/handle", **overrides: str) -> dict[str, str]:
    base = {
        "ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:provider",
        "JobName": "vgg16-train-0123456789ab",
        "RoleArn": ROLE,
        "ImageUri": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/pytorch-training:1.8.1-cpu",
        "InstanceType": "ml.m5.xlarge",
        "InstanceCount": "1",
        "VolumeSizeGb": "30",
        "MaxRuntimeSeconds": "3600",
        "UseSpot": "false",
        "MaxWaitSeconds": "7200",
        "CheckpointS3Uri": "",
        "OutputS3Uri": OUTPUT,
        "TrainS3Uri": "s3://data-bucket/train/",
        "ValidationS3Uri": "",
        "Hyperparameters": '{"epochs": "2", "sagemaker_program": "train.py", '
        '"sagemaker_submit_directory": "\\"s3://code/source.tar.gz\\""}',
        "MetricDefinitions": '[{"Name": "val:acc", "Regex": "val_acc=([0-9.]+)"}]',
        "WaitHandleUrl": wait_url,
        "Tags": '{"project": "edge"}',
    }
    base.update(overrides)
    return base


def event(request_type: str, properties: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "RequestId": "9f1c6c3e-2b7a-4d0e-8a59-4c1b9e2f7d10",
        "LogicalResourceId": "TrainingJob",
        "ResourceType": "Custom::TrainingJob",
        "ResourceProperties": properties,
        **extra,
    }


@pytest.fixture
def fake(sagemaker: Any, monkeypatch: pytest.MonkeyPatch) -> SageMakerFake:
    """The handler's SageMaker client: moto, with moto's gaps filled (see sagemaker_fake)."""
    wrapper = SageMakerFake(sagemaker)
    monkeypatch.setattr(training_handler, "sagemaker_client", lambda: wrapper)
    return wrapper


# ---------------------------------------------------------------- request builder
def build(**overrides: str) -> dict[str, Any]:
    return training_logic.build_create_request(training_logic.parse_props(props(**overrides)))


def test_request_on_demand_ignores_max_wait_and_has_train_channel_only() -> None:
    request = build()
    assert request["EnableManagedSpotTraining"] is False
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}
    assert [c["ChannelName"] for c in request["InputDataConfig"]] == ["train"]
    source = request["InputDataConfig"][0]["DataSource"]["S3DataSource"]
    assert source["S3Uri"] == "s3://data-bucket/train/"
    assert "CheckpointConfig" not in request
    assert request["ResourceConfig"] == {
        "InstanceType": "ml.m5.xlarge",
        "InstanceCount": 1,
        "VolumeSizeInGB": 30,
    }
    assert request["HyperParameters"]["sagemaker_program"] == "train.py"
    assert request["AlgorithmSpecification"]["MetricDefinitions"] == [
        {"Name": "val:acc", "Regex": "val_acc=([0-9.]+)"}
    ]
    assert request["Tags"] == [{"Key": "project", "Value": "edge"}]
    assert request["OutputDataConfig"] == {"S3OutputPath": OUTPUT}


def test_request_spot_with_checkpoint_and_validation_channel() -> None:
    request = build(
        UseSpot="true",
        CheckpointS3Uri="s3://artifacts-bucket/checkpoints/job",
        ValidationS3Uri="s3://data-bucket/val/",
    )
    assert request["EnableManagedSpotTraining"] is True
    assert request["StoppingCondition"] == {
        "MaxRuntimeInSeconds": 3600,
        "MaxWaitTimeInSeconds": 7200,
    }
    assert request["CheckpointConfig"] == {
        "S3Uri": "s3://artifacts-bucket/checkpoints/job",
        "LocalPath": "/opt/ml/checkpoints",
    }
    assert [c["ChannelName"] for c in request["InputDataConfig"]] == ["train", "validation"]


def test_request_without_train_channel_has_no_input_config() -> None:
    request = build(TrainS3Uri="", ValidationS3Uri="")
    assert "InputDataConfig" not in request


def test_minimal_properties_from_an_older_template_parse() -> None:
    minimal = props()
    for optional in ("Tags", "MaxWaitSeconds", "CheckpointS3Uri", "ValidationS3Uri"):
        del minimal[optional]
    request = training_logic.build_create_request(training_logic.parse_props(minimal))
    assert "Tags" not in request
    assert "CheckpointConfig" not in request


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"InstanceCount": "two"}, "InstanceCount must be an integer"),
        ({"UseSpot": "yes"}, 'UseSpot must be "true" or "false"'),
        ({"UseSpot": "true", "MaxWaitSeconds": "60"}, "MaxWaitSeconds (60) must be at least"),
        ({"UseSpot": "true", "MaxWaitSeconds": ""}, "MaxWaitSeconds is required"),
        ({"Hyperparameters": "{not json"}, "Hyperparameters is not valid JSON"),
        ({"Hyperparameters": '{"epochs": 2}'}, "Hyperparameters must be a JSON object"),
        ({"MetricDefinitions": '[{"Name": "x"}]'}, "MetricDefinitions must be"),
        ({"JobName": "bad_name"}, "JobName must match"),
        ({"JobName": "x" * 64}, "JobName must match"),
        ({"OutputS3Uri": "bucket/training"}, "OutputS3Uri must be an s3:// URI"),
        ({"RoleArn": ""}, "RoleArn is required"),
    ],
)
def test_bad_properties_raise_naming_the_property(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(training_logic.PropertyError, match=re.escape(message)):
        training_logic.parse_props(props(**overrides))


# ---------------------------------------------------------------- lifecycle against moto
def test_create_starts_one_job_and_returns_its_data(
    fake: SageMakerFake, wait_handle: WaitHandle
) -> None:
    result = training_handler.handler(event("Create", props(wait_handle.url)), None)

    name = "vgg16-train-0123456789ab"
    assert result["PhysicalResourceId"] == name
    assert result["Data"] == {
        "JobName": name,
        "ModelArtifactUri": f"s3://artifacts-bucket/training/{name}/output/model.tar.gz",
        "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:123456789012:training-job/{name}",
    }
    assert fake.training_job_names() == [name]
    described = fake.describe_training_job(TrainingJobName=name)
    assert described["ResourceConfig"]["InstanceType"] == "ml.m5.xlarge"
    # A job started now is signalled by the EventBridge rule, not by the create path.
    assert wait_handle.requests == []


def test_retried_create_of_a_running_job_starts_nothing_and_sends_no_signal(
    fake: SageMakerFake, wait_handle: WaitHandle
) -> None:
    training_handler.handler(event("Create", props(wait_handle.url)), None)
    fake.set_training_status("vgg16-train-0123456789ab", "InProgress")
    second = training_handler.handler(event("Create", props(wait_handle.url)), None)

    assert fake.calls["create_training_job"] == 1
    assert len(fake.training_job_names()) == 1
    assert second["PhysicalResourceId"] == "vgg16-train-0123456789ab"
    assert wait_handle.requests == []


def test_retried_create_of_a_completed_job_signals_success_with_the_artifact(
    fake: SageMakerFake, wait_handle: WaitHandle
) -> None:
    training_handler.handler(event("Create", props(wait_handle.url)), None)
    training_handler.handler(event("Create", props(wait_handle.url)), None)  # moto: Completed

    assert fake.calls["create_training_job"] == 1
    name = "vgg16-train-0123456789ab"
    assert wait_handle.bodies() == [
        {
            "Status": "SUCCESS",
            "Reason": f"Training job {name} completed",
            "UniqueId": name,
            "Data": f"s3://artifacts-bucket/training/{name}/output/model.tar.gz",
        }
    ]


def test_recreate_of_a_failed_job_signals_failure_with_sagemakers_reason(
    fake: SageMakerFake, wait_handle: WaitHandle
) -> None:
    training_handler.handler(event("Create", props(wait_handle.url)), None)
    fake.set_training_status(
        "vgg16-train-0123456789ab", "Failed", "AlgorithmError: No pth file found"
    )
    training_handler.handler(event("Create", props(wait_handle.url)), None)

    [body] = wait_handle.bodies()
    assert body["Status"] == "FAILURE"
    assert "AlgorithmError: No pth file found" in body["Reason"]
    assert body["UniqueId"] == "vgg16-train-0123456789ab"
    assert fake.calls["create_training_job"] == 1


def test_create_that_races_a_concurrent_create_adopts_the_existing_job(
    boto_session: Any,
) -> None:
    """SageMaker answers ResourceInUse when the job appeared between describe and create."""
    client = boto_session.client("sagemaker")
    name = "vgg16-train-0123456789ab"
    p = training_logic.parse_props(props())
    with Stubber(client) as stub:
        stub.add_client_error(
            "describe_training_job",
            "ValidationException",
            "Requested resource not found.",
            expected_params={"TrainingJobName": name},
        )
        stub.add_client_error(
            "create_training_job",
            "ResourceInUse",
            "Training job names must be unique",
            expected_params=training_logic.build_create_request(p),
        )
        stub.add_response(
            "describe_training_job",
            _stub_description(name, "InProgress"),
            {"TrainingJobName": name},
        )
        signals: list[Any] = []
        result = training_logic.on_event(
            event("Create", props()), client, lambda *a: signals.append(a)
        )
        stub.assert_no_pending_responses()
    assert result["PhysicalResourceId"] == name
    assert signals == [("https://example.invalid/handle", name, "InProgress", None, _artifact())]


def _artifact(name: str = "vgg16-train-0123456789ab") -> str:
    return f"s3://artifacts-bucket/training/{name}/output/model.tar.gz"


def _stub_description(name: str, status: str) -> dict[str, Any]:
    import datetime

    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    return {
        "TrainingJobName": name,
        "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:123456789012:training-job/{name}",
        "ModelArtifacts": {"S3ModelArtifacts": _artifact(name)},
        "TrainingJobStatus": status,
        "SecondaryStatus": "Training",
        "AlgorithmSpecification": {"TrainingInputMode": "File"},
        "ResourceConfig": {"VolumeSizeInGB": 30},
        "StoppingCondition": {},
        "CreationTime": now,
    }


def test_update_with_unchanged_inputs_starts_nothing(
    fake: SageMakerFake, wait_handle: WaitHandle
) -> None:
    created = training_handler.handler(event("Create", props(wait_handle.url)), None)
    updated = training_handler.handler(
        event(
            "Update",
            props(wait_handle.url),
            PhysicalResourceId=created["PhysicalResourceId"],
            OldResourceProperties=props(wait_handle.url),
        ),
        None,
    )
    assert updated == created
    assert fake.calls["create_training_job"] == 1
    assert len(fake.training_job_names()) == 1
    assert wait_handle.requests == []


def test_update_with_a_new_wait_handle_for_an_ended_job_signals_the_new_handle(
    fake: SageMakerFake, wait_handle: WaitHandle
) -> None:
    """A replaced WaitConditionHandle would otherwise wait 12 h for an event already past."""
    old = props("https://example.invalid/old-handle")
    training_handler.handler(event("Create", old), None)
    training_handler.handler(
        event(
            "Update",
            props(wait_handle.url),
            PhysicalResourceId="vgg16-train-0123456789ab",
            OldResourceProperties=old,
        ),
        None,
    )
    assert fake.calls["create_training_job"] == 1
    assert [b["Status"] for b in wait_handle.bodies()] == ["SUCCESS"]


def test_rollback_update_to_a_job_whose_wait_handle_expired_succeeds(
    fake: SageMakerFake, wait_handle: WaitHandle, expired_handle: WaitHandle
) -> None:
    """Issue 17 part 2, item 1: rolling back a training change.

    A failed update rolls back by sending Update with ResourceProperties = the OLD resource's
    (old JobName, old WaitHandleUrl) and OldResourceProperties = the failed new ones. The old
    job ended long ago; its handle's presigned URL carries a fixed expiry (X-Amz-Expires=86399
    in the handle URLs CloudFormation returns) and S3 answers 403 AccessDenied "Request has
    expired" past it. A WaitCondition waits at most 43200 s (AWS::CloudFormation::WaitCondition,
    Timeout), so nothing can still wait on an expired handle: the rollback must succeed, not
    end in UPDATE_ROLLBACK_FAILED.
    """
    old = props(expired_handle.url)
    training_handler.handler(event("Create", old), None)
    new = props(wait_handle.url, JobName="vgg16-train-fedcba987654", InstanceType="ml.g4dn.xlarge")
    training_handler.handler(
        event(
            "Update", new, PhysicalResourceId="vgg16-train-0123456789ab", OldResourceProperties=old
        ),
        None,
    )
    fake.set_training_status("vgg16-train-fedcba987654", "Failed", "AlgorithmError: OOM")

    rolled_back = training_handler.handler(
        event(
            "Update",
            old,
            PhysicalResourceId="vgg16-train-fedcba987654",
            OldResourceProperties=new,
        ),
        None,
    )

    assert rolled_back["PhysicalResourceId"] == "vgg16-train-0123456789ab"
    assert rolled_back["Data"]["ModelArtifactUri"] == _artifact()
    assert fake.calls["create_training_job"] == 2  # the old job is found, not started again
    # The handler did try the old handle (it cannot know it expired without asking S3)...
    assert [b["UniqueId"] for b in expired_handle.bodies()] == ["vgg16-train-0123456789ab"]
    # ...and sent nothing to the new handle: its wait condition is being rolled back.
    assert wait_handle.requests == []


def test_after_a_rollback_a_live_new_handle_is_still_signalled(
    fake: SageMakerFake, wait_handle: WaitHandle, expired_handle: WaitHandle
) -> None:
    """Deploying the failed change again: CloudFormation creates a fresh handle (the rollback
    deleted the last one) and the job of that name already exists, Failed. The live handle must
    get the FAILURE at once, with SageMaker's reason, not wait out the Timeout."""
    old = props(expired_handle.url)
    training_handler.handler(event("Create", old), None)
    failed_name = "vgg16-train-fedcba987654"
    first_try = props("https://example.invalid/deleted-handle", JobName=failed_name)
    training_handler.handler(
        event("Update", first_try, PhysicalResourceId=old["JobName"], OldResourceProperties=old),
        None,
    )
    fake.set_training_status(failed_name, "Failed", "AlgorithmError: OOM")
    training_handler.handler(
        event("Update", old, PhysicalResourceId=failed_name, OldResourceProperties=first_try),
        None,
    )

    again = props(wait_handle.url, JobName=failed_name)
    training_handler.handler(
        event("Update", again, PhysicalResourceId=old["JobName"], OldResourceProperties=old),
        None,
    )
    [body] = wait_handle.bodies()
    assert body["Status"] == "FAILURE" and "AlgorithmError: OOM" in body["Reason"]
    assert fake.calls["create_training_job"] == 2


def test_a_handle_refused_for_another_reason_still_fails_the_request(
    fake: SageMakerFake, wait_handle: WaitHandle
) -> None:
    """Only expiry means "nothing waits": any other 403 (a signature mismatch, a policy) is a
    real failure, and CloudFormation must see it rather than wait 12 h for a lost signal."""
    old = props("https://example.invalid/old-handle")
    training_handler.handler(event("Create", old), None)
    wait_handle.status = 403
    wait_handle.error_body = (
        b"<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated"
        b" does not match the signature you provided.</Message></Error>"
    )
    with pytest.raises(wait_condition_signal.SignalError, match="HTTP 403"):
        training_handler.handler(
            event(
                "Update",
                props(wait_handle.url),
                PhysicalResourceId="vgg16-train-0123456789ab",
                OldResourceProperties=old,
            ),
            None,
        )
    assert len(wait_handle.requests) == 1


def test_update_with_changed_inputs_starts_a_new_job_under_a_new_physical_id(
    fake: SageMakerFake, wait_handle: WaitHandle
) -> None:
    old = props(wait_handle.url)
    created = training_handler.handler(event("Create", old), None)
    new = props(wait_handle.url, JobName="vgg16-train-fedcba987654", InstanceType="ml.g4dn.xlarge")
    updated = training_handler.handler(
        event(
            "Update",
            new,
            PhysicalResourceId=created["PhysicalResourceId"],
            OldResourceProperties=old,
        ),
        None,
    )
    assert updated["PhysicalResourceId"] == "vgg16-train-fedcba987654"
    assert updated["PhysicalResourceId"] != created["PhysicalResourceId"]
    assert updated["Data"]["ModelArtifactUri"] == _artifact("vgg16-train-fedcba987654")
    assert sorted(fake.training_job_names()) == [
        "vgg16-train-0123456789ab",
        "vgg16-train-fedcba987654",
    ]
    described = fake.describe_training_job(TrainingJobName="vgg16-train-fedcba987654")
    assert described["ResourceConfig"]["InstanceType"] == "ml.g4dn.xlarge"


def test_delete_stops_a_running_job_and_keeps_artifacts(
    fake: SageMakerFake, s3: Any, wait_handle: WaitHandle
) -> None:
    name = "vgg16-train-0123456789ab"
    s3.create_bucket(
        Bucket="artifacts-bucket", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    artifact_key = f"training/{name}/output/model.tar.gz"
    s3.put_object(Bucket="artifacts-bucket", Key=artifact_key, Body=b"model")
    training_handler.handler(event("Create", props(wait_handle.url)), None)
    fake.set_training_status(name, "InProgress")

    delete = event("Delete", props(wait_handle.url), PhysicalResourceId=name)
    assert training_handler.handler(delete, None)["PhysicalResourceId"] == name
    assert fake.stopped == [name]
    assert fake.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "Stopping"

    # Twice: the job is Stopping now, so nothing more is stopped and nothing fails.
    training_handler.handler(delete, None)
    assert fake.stopped == [name]
    assert fake.calls["stop_training_job"] == 1

    assert s3.get_object(Bucket="artifacts-bucket", Key=artifact_key)["Body"].read() == b"model"
    assert fake.training_job_names() == [name]  # the job record stays too


def test_delete_of_a_completed_job_stops_nothing(fake: SageMakerFake) -> None:
    name = "vgg16-train-0123456789ab"
    training_handler.handler(event("Create", props()), None)
    training_handler.handler(event("Delete", props(), PhysicalResourceId=name), None)
    assert fake.calls["stop_training_job"] == 0


def test_delete_that_races_the_job_ending_does_not_fail(fake: SageMakerFake) -> None:
    name = "vgg16-train-0123456789ab"
    training_handler.handler(event("Create", props()), None)
    fake.set_training_status(name, "InProgress")
    original_stop = fake.stop_training_job

    def stop_after_it_ended(TrainingJobName: str) -> Any:
        fake.set_training_status(name, "Completed")
        return original_stop(TrainingJobName=TrainingJobName)

    fake.stop_training_job = stop_after_it_ended  # type: ignore[method-assign]
    training_handler.handler(event("Delete", props(), PhysicalResourceId=name), None)
    assert fake.stopped == []


@pytest.mark.parametrize(
    "physical_id",
    [
        "AWSCDK::CustomResourceProviderFramework::CREATE_FAILED",
        "9f1c6c3e-2b7a-4d0e-8a59-4c1b9e2f7d10",  # a request ID: a valid name, but no such job
        "",
    ],
)
def test_delete_with_a_physical_id_that_is_no_job_does_nothing(
    fake: SageMakerFake, physical_id: str
) -> None:
    result = training_handler.handler(
        event("Delete", props(), PhysicalResourceId=physical_id), None
    )
    assert result["PhysicalResourceId"] == physical_id
    assert fake.calls["stop_training_job"] == 0
    assert fake.training_job_names() == []


def test_the_wait_handle_url_is_never_logged(
    fake: SageMakerFake, wait_handle: WaitHandle, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    training_handler.handler(event("Create", props(wait_handle.url)), None)
    training_handler.handler(event("Create", props(wait_handle.url)), None)  # signals
    assert len(wait_handle.requests) == 1
    assert caplog.records
    assert "s3cr3tsig" not in caplog.text
    assert "127.0.0.1" not in caplog.text
