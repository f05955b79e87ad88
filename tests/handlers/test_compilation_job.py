"""Custom::CompilationJob: request builder, idempotent lifecycle, is_complete."""

from __future__ import annotations

import json
import re
from typing import Any

import compilation_handler
import compilation_logic
import pytest

from .sagemaker_fake import SageMakerFake

NAME = "vgg16-neo-jetson-nano-0123456789"


def props(**overrides: str) -> dict[str, str]:
    base = {
        "ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:provider",
        "JobName": NAME,
        "RoleArn": "arn:aws:iam::123456789012:role/neo",
        "ModelArtifactUri": "s3://artifacts-bucket/training/job/output/model.tar.gz",
        "Framework": "PYTORCH",
        "FrameworkVersion": "1.8",
        "DataInputConfig": '{"input0": [1, 3, 224, 224]}',
        "TargetDevice": "jetson_nano",
        "CompilerOptions": "",
        "OutputS3Uri": "s3://artifacts-bucket/compiled/jetson_nano/",
        "MaxRuntimeSeconds": "900",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def event(request_type: str, properties: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "RequestId": "3c1d7a0e-5f7b-4b8e-9e3a-2d6f1c0b9a88",
        "LogicalResourceId": "CompilationJob",
        "ResourceType": "Custom::CompilationJob",
        "ResourceProperties": properties,
        **extra,
    }


@pytest.fixture
def fake(sagemaker: Any, monkeypatch: pytest.MonkeyPatch) -> SageMakerFake:
    wrapper = SageMakerFake(sagemaker)
    monkeypatch.setattr(compilation_handler, "sagemaker_client", lambda: wrapper)
    return wrapper


# ---------------------------------------------------------------- request builder
def build(**overrides: Any) -> dict[str, Any]:
    return compilation_logic.build_create_request(compilation_logic.parse_props(props(**overrides)))


def test_request_for_a_target_device() -> None:
    request = build()
    assert request == {
        "CompilationJobName": NAME,
        "RoleArn": "arn:aws:iam::123456789012:role/neo",
        "InputConfig": {
            "S3Uri": "s3://artifacts-bucket/training/job/output/model.tar.gz",
            "DataInputConfig": '{"input0": [1, 3, 224, 224]}',
            "Framework": "PYTORCH",
            "FrameworkVersion": "1.8",
        },
        "OutputConfig": {
            "S3OutputLocation": "s3://artifacts-bucket/compiled/jetson_nano/",
            "TargetDevice": "jetson_nano",
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 900},
    }


def test_request_for_a_target_platform_with_accelerator_and_compiler_options() -> None:
    options = '{"gpu-code": "sm_72", "trt-ver": "8.2.1", "cuda-ver": "10.2"}'
    request = build(
        TargetDevice="",
        TargetPlatformOs="LINUX",
        TargetPlatformArch="ARM64",
        TargetPlatformAccelerator="NVIDIA",
        CompilerOptions=options,
        Tags='{"project": "edge"}',
    )
    assert request["OutputConfig"] == {
        "S3OutputLocation": "s3://artifacts-bucket/compiled/jetson_nano/",
        "TargetPlatform": {"Os": "LINUX", "Arch": "ARM64", "Accelerator": "NVIDIA"},
        "CompilerOptions": options,
    }
    assert "TargetDevice" not in request["OutputConfig"]
    assert request["Tags"] == [{"Key": "project", "Value": "edge"}]


def test_request_for_a_platform_without_accelerator_from_minimal_properties() -> None:
    minimal = props(TargetPlatformOs="LINUX", TargetPlatformArch="X86_64")
    for key in ("TargetDevice", "CompilerOptions", "FrameworkVersion"):
        del minimal[key]
    request = compilation_logic.build_create_request(compilation_logic.parse_props(minimal))
    assert request["OutputConfig"]["TargetPlatform"] == {"Os": "LINUX", "Arch": "X86_64"}
    assert "CompilerOptions" not in request["OutputConfig"]
    assert "FrameworkVersion" not in request["InputConfig"]
    assert "Tags" not in request


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"TargetPlatformOs": "LINUX", "TargetPlatformArch": "ARM64"}, "not both"),
        ({"TargetDevice": ""}, "TargetDevice, or both TargetPlatformOs and TargetPlatformArch"),
        ({"TargetDevice": "", "TargetPlatformOs": "LINUX"}, "TargetPlatformArch"),
        ({"DataInputConfig": "[1,3,224"}, "DataInputConfig is not valid JSON"),
        ({"DataInputConfig": ""}, "DataInputConfig is required"),
        ({"CompilerOptions": '"fast"'}, "CompilerOptions must be a JSON object"),
        ({"MaxRuntimeSeconds": "15m"}, "MaxRuntimeSeconds must be an integer"),
        ({"ModelArtifactUri": "https://x/model.tar.gz"}, "ModelArtifactUri must be an s3://"),
        ({"JobName": "a" * 64}, "JobName must match"),
    ],
)
def test_bad_properties_raise_naming_the_property(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(compilation_logic.PropertyError, match=re.escape(message)):
        compilation_logic.parse_props(props(**overrides))


# ---------------------------------------------------------------- is_complete (pure)
def describe(status: str, reason: str = "") -> dict[str, Any]:
    return {
        "CompilationJobName": NAME,
        "CompilationJobStatus": status,
        "FailureReason": reason,
        "ModelArtifacts": {"S3ModelArtifacts": "s3://b/compiled/model-jetson_nano.tar.gz"},
    }


@pytest.mark.parametrize("status", ["STARTING", "INPROGRESS"])
def test_running_job_is_not_complete(status: str) -> None:
    assert compilation_logic.completion(describe(status)) == {"IsComplete": False}


def test_completed_job_is_complete_with_the_compiled_artifact() -> None:
    assert compilation_logic.completion(describe("COMPLETED")) == {
        "IsComplete": True,
        "Data": {
            "JobName": NAME,
            "CompiledArtifactUri": "s3://b/compiled/model-jetson_nano.tar.gz",
        },
    }


def test_failed_job_raises_with_sagemakers_reason() -> None:
    reason = "ClientError: InputConfiguration: No pth file found"
    with pytest.raises(
        compilation_logic.CompilationFailed,
        match=re.escape(f"Compilation job {NAME} failed: {reason}"),
    ):
        compilation_logic.completion(describe("FAILED", reason))


@pytest.mark.parametrize("status", ["STOPPING", "STOPPED"])
def test_stopped_job_raises(status: str) -> None:
    with pytest.raises(compilation_logic.CompilationFailed, match=f"stopped \\({status}\\)"):
        compilation_logic.completion(describe(status))


# ---------------------------------------------------------------- lifecycle against moto
def test_create_starts_one_job_and_is_complete_reports_its_artifact(fake: SageMakerFake) -> None:
    created = compilation_handler.on_event(event("Create", props()), None)
    assert created == {"PhysicalResourceId": NAME, "Data": {"JobName": NAME}}
    assert fake.compilation_job_names() == [NAME]
    sent = fake.describe_compilation_job(CompilationJobName=NAME)
    assert sent["OutputConfig"]["TargetDevice"] == "jetson_nano"
    assert json.loads(sent["InputConfig"]["DataInputConfig"]) == {"input0": [1, 3, 224, 224]}

    fake.set_compilation_status(NAME, "INPROGRESS")
    waiting = compilation_handler.is_complete(
        event("Create", props(), PhysicalResourceId=NAME), None
    )
    assert waiting == {"IsComplete": False}

    fake.set_compilation_status(NAME, "COMPLETED")
    done = compilation_handler.is_complete(event("Create", props(), PhysicalResourceId=NAME), None)
    assert done["IsComplete"] is True
    assert done["Data"]["JobName"] == NAME
    # moto reports the output location itself as the artifact (SageMaker names the tar.gz).
    assert done["Data"]["CompiledArtifactUri"] == "s3://artifacts-bucket/compiled/jetson_nano/"


def test_failed_job_fails_is_complete_with_the_reason(fake: SageMakerFake) -> None:
    compilation_handler.on_event(event("Create", props()), None)
    fake.set_compilation_status(NAME, "FAILED", "InputConfiguration: input shape mismatch")
    with pytest.raises(compilation_logic.CompilationFailed, match="input shape mismatch"):
        compilation_handler.is_complete(event("Create", props(), PhysicalResourceId=NAME), None)


def test_retried_create_starts_one_job(fake: SageMakerFake) -> None:
    first = compilation_handler.on_event(event("Create", props()), None)
    second = compilation_handler.on_event(event("Create", props()), None)
    assert first == second
    assert fake.calls["create_compilation_job"] == 1
    assert fake.compilation_job_names() == [NAME]


def test_update_with_unchanged_inputs_starts_nothing(fake: SageMakerFake) -> None:
    created = compilation_handler.on_event(event("Create", props()), None)
    updated = compilation_handler.on_event(
        event("Update", props(), PhysicalResourceId=NAME, OldResourceProperties=props()), None
    )
    assert updated == created
    assert fake.calls["create_compilation_job"] == 1


def test_update_with_changed_inputs_starts_a_new_job(fake: SageMakerFake) -> None:
    compilation_handler.on_event(event("Create", props()), None)
    new = props(JobName="vgg16-neo-rasp4b-0123456789", TargetDevice="rasp4b")
    updated = compilation_handler.on_event(
        event("Update", new, PhysicalResourceId=NAME, OldResourceProperties=props()), None
    )
    assert updated["PhysicalResourceId"] == "vgg16-neo-rasp4b-0123456789"
    assert sorted(fake.compilation_job_names()) == sorted([NAME, "vgg16-neo-rasp4b-0123456789"])
    assert fake.calls["create_compilation_job"] == 2


def test_delete_stops_a_running_job_and_is_safe_twice(fake: SageMakerFake, s3: Any) -> None:
    s3.create_bucket(
        Bucket="artifacts-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    s3.put_object(Bucket="artifacts-bucket", Key="compiled/jetson_nano/old.tar.gz", Body=b"x")
    compilation_handler.on_event(event("Create", props()), None)
    fake.set_compilation_status(NAME, "INPROGRESS")

    delete = event("Delete", props(), PhysicalResourceId=NAME)
    assert compilation_handler.on_event(delete, None) == {"PhysicalResourceId": NAME}
    assert fake.stopped == [NAME]
    compilation_handler.on_event(delete, None)
    assert fake.calls["stop_compilation_job"] == 1
    assert compilation_handler.is_complete(delete, None) == {"IsComplete": True}

    assert fake.compilation_job_names() == [NAME]
    assert s3.head_object(Bucket="artifacts-bucket", Key="compiled/jetson_nano/old.tar.gz")


def test_delete_of_a_starting_job_stops_it(fake: SageMakerFake) -> None:
    compilation_handler.on_event(event("Create", props()), None)
    fake.set_compilation_status(NAME, "STARTING")
    compilation_handler.on_event(event("Delete", props(), PhysicalResourceId=NAME), None)
    assert fake.stopped == [NAME]


def test_delete_of_a_completed_job_stops_nothing(fake: SageMakerFake) -> None:
    compilation_handler.on_event(event("Create", props()), None)
    compilation_handler.on_event(event("Delete", props(), PhysicalResourceId=NAME), None)
    assert fake.calls["stop_compilation_job"] == 0


@pytest.mark.parametrize(
    "physical_id",
    [
        "AWSCDK::CustomResourceProviderFramework::CREATE_FAILED",
        "3c1d7a0e-5f7b-4b8e-9e3a-2d6f1c0b9a88",
    ],
)
def test_delete_with_a_physical_id_that_is_no_job_does_nothing(
    fake: SageMakerFake, physical_id: str
) -> None:
    result = compilation_handler.on_event(
        event("Delete", props(), PhysicalResourceId=physical_id), None
    )
    assert result == {"PhysicalResourceId": physical_id}
    assert fake.calls["stop_compilation_job"] == 0


def test_is_complete_for_a_vanished_job_raises(fake: SageMakerFake) -> None:
    with pytest.raises(compilation_logic.CompilationFailed, match="does not exist"):
        compilation_handler.is_complete(event("Create", props(), PhysicalResourceId=NAME), None)
