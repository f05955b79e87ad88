"""Custom::CompilationJob logic: properties in, CreateCompilationJob request out; job status in,
IsComplete out. Idempotent on JobName. The SageMaker client is passed in, never created here.

(Each runtime folder is its own Lambda asset, so the small property parsers are repeated in the
training runtime rather than shared.)
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from botocore.exceptions import ClientError

LOGGER = logging.getLogger(__name__)

JOB_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
RUNNING_STATUSES = frozenset({"INPROGRESS", "STARTING"})


class PropertyError(ValueError):
    """A ResourceProperty is missing or malformed; the message names it."""


class CompilationFailed(RuntimeError):
    """The compilation job ended without a compiled model; CloudFormation shows the message."""


# ---------------------------------------------------------------- property parsing
def _str(props: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    value = props.get(name)
    if value is None or value == "":
        if required:
            raise PropertyError(f"Property {name} is required")
        return ""
    if not isinstance(value, str):
        raise PropertyError(f"Property {name} must be a string, got {type(value).__name__}")
    return value


def _int(props: Mapping[str, Any], name: str, *, minimum: int = 1) -> int:
    raw = props.get(name)
    if raw is None or raw == "":
        raise PropertyError(f"Property {name} is required")
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise PropertyError(f"Property {name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise PropertyError(f"Property {name} must be at least {minimum}, got {value}")
    return value


def _json_text(props: Mapping[str, Any], name: str, *, required: bool) -> tuple[str, Any]:
    """(the JSON text to pass on, its parsed value); ("", None) when absent and optional."""
    raw = props.get(name)
    if raw is None or raw == "":
        if required:
            raise PropertyError(f"Property {name} is required")
        return "", None
    if not isinstance(raw, str):
        return json.dumps(raw, separators=(",", ":")), raw
    try:
        return raw, json.loads(raw)
    except json.JSONDecodeError as error:
        raise PropertyError(f"Property {name} is not valid JSON: {error}") from None


def _s3_uri(props: Mapping[str, Any], name: str) -> str:
    value = _str(props, name)
    if not value.startswith("s3://"):
        raise PropertyError(f"Property {name} must be an s3:// URI, got {value!r}")
    return value


def is_job_name(value: Optional[str]) -> bool:
    return bool(value) and JOB_NAME_RE.match(value or "") is not None


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
    name = _str(props, "JobName")
    if not JOB_NAME_RE.match(name):
        raise PropertyError(
            f"Property JobName must match {JOB_NAME_RE.pattern} (at most 63 characters), "
            f"got {name!r}"
        )

    data_input_text, data_input = _json_text(props, "DataInputConfig", required=True)
    if not isinstance(data_input, (dict, list)) or not data_input:
        raise PropertyError(
            'Property DataInputConfig must be a JSON object such as {"input0": [1,3,224,224]}'
        )

    compiler_text, compiler = _json_text(props, "CompilerOptions", required=False)
    if compiler is not None and not isinstance(compiler, dict):
        raise PropertyError("Property CompilerOptions must be a JSON object or empty")

    device = _str(props, "TargetDevice", required=False)
    os_ = _str(props, "TargetPlatformOs", required=False)
    arch = _str(props, "TargetPlatformArch", required=False)
    accelerator = _str(props, "TargetPlatformAccelerator", required=False)
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

    _, tags = _json_text(props, "Tags", required=False)
    tags = tags or {}
    if not isinstance(tags, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        raise PropertyError("Property Tags must be a JSON object of string to string")

    return CompilationProps(
        job_name=name,
        role_arn=_str(props, "RoleArn"),
        model_artifact_uri=_s3_uri(props, "ModelArtifactUri"),
        framework=_str(props, "Framework").upper(),
        framework_version=_str(props, "FrameworkVersion", required=False),
        data_input_config=data_input_text,
        target_device=device,
        target_platform=platform,
        compiler_options=compiler_text,
        output_s3_uri=_s3_uri(props, "OutputS3Uri"),
        max_runtime_seconds=_int(props, "MaxRuntimeSeconds"),
        tags=[{"Key": k, "Value": tags[k]} for k in sorted(tags)],
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


# ---------------------------------------------------------------- SageMaker calls
def is_not_found(error: ClientError) -> bool:
    err = error.response.get("Error", {})
    code = err.get("Code", "")
    message = err.get("Message", "").lower()
    if code in ("ResourceNotFound", "ResourceNotFoundException"):
        return True
    return code == "ValidationException" and ("not found" in message or "could not find" in message)


def describe_or_none(sagemaker: Any, name: str) -> Optional[dict[str, Any]]:
    try:
        description: dict[str, Any] = sagemaker.describe_compilation_job(CompilationJobName=name)
    except ClientError as error:
        if is_not_found(error):
            return None
        raise
    return description


def ensure_job(sagemaker: Any, p: CompilationProps) -> bool:
    """Start the job unless one named ``p.job_name`` exists; True when started now."""
    existing = describe_or_none(sagemaker, p.job_name)
    if existing is not None:
        LOGGER.info(
            "Compilation job %s already exists (%s): not starting another",
            p.job_name,
            existing.get("CompilationJobStatus"),
        )
        return False
    try:
        sagemaker.create_compilation_job(**build_create_request(p))
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ResourceInUse":
            raise
        LOGGER.info("Compilation job %s was created concurrently", p.job_name)
        return False
    LOGGER.info("Started compilation job %s", p.job_name)
    return True


def create(sagemaker: Any, props: Mapping[str, Any]) -> dict[str, Any]:
    p = parse_props(props)
    ensure_job(sagemaker, p)
    return {"PhysicalResourceId": p.job_name, "Data": {"JobName": p.job_name}}


def update(
    sagemaker: Any, props: Mapping[str, Any], old_props: Mapping[str, Any]
) -> dict[str, Any]:
    p = parse_props(props)
    if old_props.get("JobName") == p.job_name:
        LOGGER.info("Compilation job %s inputs unchanged: starting nothing", p.job_name)
        if describe_or_none(sagemaker, p.job_name) is None:
            LOGGER.warning("Compilation job %s no longer exists: starting it again", p.job_name)
            ensure_job(sagemaker, p)
        return {"PhysicalResourceId": p.job_name, "Data": {"JobName": p.job_name}}
    LOGGER.info("JobName changed to %s: replacing the job", p.job_name)
    return create(sagemaker, props)


def delete(sagemaker: Any, physical_id: Optional[str]) -> dict[str, Any]:
    """Stop the job if it runs. Never deletes the job record or its artifacts. Safe twice."""
    if not is_job_name(physical_id):
        LOGGER.info("Physical ID is not a compilation job name (failed create?): nothing to do")
        return {"PhysicalResourceId": physical_id}
    name = str(physical_id)
    description = describe_or_none(sagemaker, name)
    if description is None:
        LOGGER.info("Compilation job %s not found: nothing to stop", name)
    elif description.get("CompilationJobStatus") in RUNNING_STATUSES:
        try:
            sagemaker.stop_compilation_job(CompilationJobName=name)
        except ClientError:
            again = describe_or_none(sagemaker, name)
            if again is not None and again.get("CompilationJobStatus") in RUNNING_STATUSES:
                raise
            LOGGER.info("Compilation job %s ended while being stopped", name)
        else:
            LOGGER.info("Stopping compilation job %s", name)
    else:
        LOGGER.info(
            "Compilation job %s is %s: nothing to stop (artifacts and job record are kept)",
            name,
            description.get("CompilationJobStatus"),
        )
    return {"PhysicalResourceId": name}


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
