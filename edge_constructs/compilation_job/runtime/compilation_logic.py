"""Custom::CompilationJob logic: properties in, CreateCompilationJob request out; job status in,
IsComplete out. Idempotent on JobName. The SageMaker client is passed in, never created here.

The property parsers are ``cr_properties`` (edge_constructs/runtime_common), which
``PythonFunction`` copies into every handler's asset beside this module.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from cr_names import Compilation as P
from cr_properties import (
    PropertyError,
    integer,
    is_job_name,
    job_name,
    json_text,
    s3_uri,
    string,
    tag_list,
)
from job_lifecycle import JobKind

LOGGER = logging.getLogger(__name__)

RUNNING_STATUSES = frozenset({"INPROGRESS", "STARTING"})


class CompilationFailed(RuntimeError):
    """The compilation job ended without a compiled model; CloudFormation shows the message."""


@dataclass(frozen=True)
class CompilationProps:
    job_name: str
    role_arn: str
    model_artifact_uri: str
    framework: str
    framework_version: str
    data_input_config: str
    target_device: str
    target_platform: Optional[dict[str, str]]
    compiler_options: str
    output_s3_uri: str
    max_runtime_seconds: int
    tags: list[dict[str, str]]


def parse_props(props: Mapping[str, Any]) -> CompilationProps:
    name = job_name(props)

    data_input_text, data_input = json_text(props, P.DATA_INPUT_CONFIG, required=True)
    if not isinstance(data_input, (dict, list)) or not data_input:
        raise PropertyError(
            'Property DataInputConfig must be a JSON object such as {"input0": [1,3,224,224]}'
        )

    compiler_text, compiler = json_text(props, P.COMPILER_OPTIONS, required=False)
    if compiler is not None and not isinstance(compiler, dict):
        raise PropertyError("Property CompilerOptions must be a JSON object or empty")

    device = string(props, P.TARGET_DEVICE, required=False)
    os_ = string(props, P.TARGET_PLATFORM_OS, required=False)
    arch = string(props, P.TARGET_PLATFORM_ARCH, required=False)
    accelerator = string(props, P.TARGET_PLATFORM_ACCELERATOR, required=False)
    platform: Optional[dict[str, str]] = None
    if device and (os_ or arch or accelerator):
        raise PropertyError(
            "Give either TargetDevice or TargetPlatformOs/TargetPlatformArch, not both"
        )
    if not device:
        if not (os_ and arch):
            raise PropertyError(
                "Property TargetDevice, or both TargetPlatformOs and TargetPlatformArch, "
                "are required"
            )
        platform = {"Os": os_, "Arch": arch}
        if accelerator:
            platform["Accelerator"] = accelerator

    return CompilationProps(
        job_name=name,
        role_arn=string(props, P.ROLE_ARN),
        model_artifact_uri=s3_uri(props, P.MODEL_ARTIFACT_URI),
        framework=string(props, P.FRAMEWORK).upper(),
        framework_version=string(props, P.FRAMEWORK_VERSION, required=False),
        data_input_config=data_input_text,
        target_device=device,
        target_platform=platform,
        compiler_options=compiler_text,
        output_s3_uri=s3_uri(props, P.OUTPUT_S3_URI),
        max_runtime_seconds=integer(props, P.MAX_RUNTIME_SECONDS),
        tags=tag_list(props),
    )


# ---------------------------------------------------------------- request builder
def build_create_request(p: CompilationProps) -> dict[str, Any]:
    """The CreateCompilationJob request for ``p`` (pure)."""
    input_config: dict[str, Any] = {
        "S3Uri": p.model_artifact_uri,
        "DataInputConfig": p.data_input_config,
        "Framework": p.framework,
    }
    if p.framework_version:
        input_config["FrameworkVersion"] = p.framework_version
    output_config: dict[str, Any] = {"S3OutputLocation": p.output_s3_uri}
    if p.target_device:
        output_config["TargetDevice"] = p.target_device
    else:
        output_config["TargetPlatform"] = dict(p.target_platform or {})
    if p.compiler_options:
        output_config["CompilerOptions"] = p.compiler_options
    request: dict[str, Any] = {
        "CompilationJobName": p.job_name,
        "RoleArn": p.role_arn,
        "InputConfig": input_config,
        "OutputConfig": output_config,
        "StoppingCondition": {"MaxRuntimeInSeconds": p.max_runtime_seconds},
    }
    if p.tags:
        request["Tags"] = p.tags
    return request


# ---------------------------------------------------------------- completion (pure)
def completion(description: Mapping[str, Any]) -> dict[str, Any]:
    """IsComplete from a DescribeCompilationJob answer; raises for a job that will never finish."""
    name = description.get("CompilationJobName", "?")
    status = description.get("CompilationJobStatus", "")
    if status == "COMPLETED":
        uri = (description.get("ModelArtifacts") or {}).get("S3ModelArtifacts", "")
        if not uri:
            raise CompilationFailed(f"Compilation job {name} completed without ModelArtifacts")
        return {"IsComplete": True, "Data": {"JobName": name, "CompiledArtifactUri": uri}}
    if status == "FAILED":
        reason = description.get("FailureReason") or "no FailureReason given"
        raise CompilationFailed(f"Compilation job {name} failed: {reason}")
    if status in ("STOPPED", "STOPPING"):
        raise CompilationFailed(
            f"Compilation job {name} was stopped ({status}) before it produced a model"
        )
    LOGGER.info("Compilation job %s is %s", name, status or "unknown")
    return {"IsComplete": False}


# ---------------------------------------------------------------- lifecycle
JOB = JobKind(noun="Compilation", running=RUNNING_STATUSES)


def describe_or_none(sagemaker: Any, name: str) -> Optional[dict[str, Any]]:
    return JOB.describe(sagemaker, name)


def _response(p: CompilationProps) -> dict[str, Any]:
    return {"PhysicalResourceId": p.job_name, "Data": {"JobName": p.job_name}}


def create(sagemaker: Any, props: Mapping[str, Any]) -> dict[str, Any]:
    p = parse_props(props)
    JOB.ensure(sagemaker, p.job_name, lambda: build_create_request(p))
    return _response(p)


def update(
    sagemaker: Any, props: Mapping[str, Any], old_props: Mapping[str, Any]
) -> dict[str, Any]:
    p = parse_props(props)
    JOB.update(sagemaker, p.job_name, old_props.get(P.JOB_NAME), lambda: build_create_request(p))
    return _response(p)


def delete(sagemaker: Any, physical_id: Optional[str]) -> dict[str, Any]:
    """Stop the job if it runs. Never deletes the job record or its artifacts. Safe twice."""
    return JOB.delete(sagemaker, physical_id)


def on_event(event: Mapping[str, Any], sagemaker: Any) -> dict[str, Any]:
    request_type = event["RequestType"]
    props = event.get("ResourceProperties", {})
    if request_type == "Create":
        return create(sagemaker, props)
    if request_type == "Update":
        return update(sagemaker, props, event.get("OldResourceProperties", {}))
    if request_type == "Delete":
        return delete(sagemaker, event.get("PhysicalResourceId"))
    raise ValueError(f"Unknown RequestType {request_type!r}")


def is_complete(event: Mapping[str, Any], sagemaker: Any) -> dict[str, Any]:
    if event["RequestType"] == "Delete":
        return {"IsComplete": True}
    name = event.get("PhysicalResourceId") or event.get("ResourceProperties", {}).get("JobName")
    if not is_job_name(name):
        raise CompilationFailed(f"No compilation job name to wait for (got {name!r})")
    description = describe_or_none(sagemaker, str(name))
    if description is None:
        raise CompilationFailed(f"Compilation job {name} does not exist")
    return completion(description)
