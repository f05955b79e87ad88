"""Custom::GreengrassDeployment logic: the stack's deployment to one thing group, re-issued on
every Create and Update. The greengrassv2 client is passed in, never created here.

Why not ``AWS::GreengrassV2::Deployment``: its registry schema marks every property
create-only, so a release change replaces it, and a rollback only deletes (cancels) the new
deployment; nothing re-issues the old one, so the devices keep the release the stack says it
rolled back from. Here the physical ID is the target ARN, so a release change is an Update, and
a rollback is an Update whose properties are the old release: CreateDeployment to a target
replaces that target's previous deployment (botocore greengrassv2 CreateDeployment: "When you
create a new deployment for a target that has an existing deployment, you replace the previous
deployment"), so the old release goes back to the devices.

The properties have the native resource's names and nesting (PascalCase); CloudFormation sends
every leaf as a string, so each is converted to the API's type by the table below, and a key the
API does not know is an error naming its path.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from botocore.exceptions import ClientError
from cr_names import GreengrassDeployment as Names

LOGGER = logging.getLogger(__name__)

# arn:<partition>:iot:<region>:<account>:thing/<name> or thinggroup/<name> (CreateDeployment
# targetArn: "The ARN of the target IoT thing or thing group"; botocore shape TargetARN).
TARGET_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iot:[a-z0-9-]+:[0-9]{12}:(thing|thinggroup)/.+$")
# ListDeployments deploymentStatus values; only an ACTIVE deployment can be cancelled, and
# "To delete an active deployment, you must first cancel it" (botocore DeleteDeployment).
ACTIVE = "ACTIVE"
# Which resource created a deployment: CreateDeployment ``tags`` (TagMap; a TagValue is at most
# 256 characters) carry a digest of the stack's ID and the resource's logical ID, and Delete
# reads them back with GetDeployment (its response has ``tags``). Two resources of one stack
# may target the same thing group with the same deployment name (a class gaining or losing a
# canary ring moves its group from one resource to another): the old one's Delete, which
# CloudFormation sends after the new one's Create, must not cancel the new one's deployment.
OWNER_TAG = "edge-ai:deployment-owner"
# The stack a deployment's resource belongs to (a digest of its StackId), so a rollback can tell
# another resource of the same stack from a stranger (see ``delete``).
STACK_TAG = "edge-ai:deployment-stack"
# "Ongoing removal of new resources for one or more stacks after a failed stack update"
# (CloudFormation User Guide, "Stack status codes"; botocore cloudformation StackStatus).
ROLLBACK_CLEANUP = "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"


class DeploymentError(ValueError):
    """The deployment cannot be made or removed; CloudFormation shows the message."""


# ---------------------------------------------------------------- properties -> request
# A field's converter takes (value, path) and returns the API value. The table mirrors the
# botocore greengrassv2 model's shapes (ComponentDeploymentSpecification, DeploymentPolicies,
# DeploymentIoTJobConfiguration, ...); a test walks it against the model.
Converter = Callable[[Any, str], Any]


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str) or value == "":
        raise DeploymentError(f"{path} must be a non-empty string, got {value!r}")
    return value


def _integer(value: Any, path: str) -> int:
    # bool is an int in Python; "true" is never a count.
    if isinstance(value, bool):
        raise DeploymentError(f"{path} must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise DeploymentError(f"{path} must be an integer, got {value!r}") from None


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool):
        raise DeploymentError(f"{path} must be a number, got {value!r}")
    try:
        return float(str(value).strip())
    except ValueError:
        raise DeploymentError(f"{path} must be a number, got {value!r}") from None


def _json_object_text(value: Any, path: str) -> str:
    """ComponentConfigurationUpdate.merge: "A serialized JSON string that contains the
    configuration object to merge" (botocore): refuse what is not one before the API does."""
    text = _string(value, path)
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as error:
        raise DeploymentError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(parsed, dict):
        raise DeploymentError(f"{path} must be a JSON object, got {type(parsed).__name__}")
    return text


# A spec is a Converter, a list of one spec (a list field), or a mapping of key to spec.
Spec = Mapping[str, Any]


def _convert(value: Any, spec: Any, path: str) -> Any:
    if callable(spec):
        return spec(value, path)
    if isinstance(spec, list):
        if not isinstance(value, list):
            raise DeploymentError(f"{path} must be a list, got {type(value).__name__}")
        return [_convert(item, spec[0], f"{path}[{i}]") for i, item in enumerate(value)]
    if not isinstance(value, Mapping):
        raise DeploymentError(f"{path} must be an object, got {type(value).__name__}")
    unknown = sorted(set(value) - set(spec))
    if unknown:
        raise DeploymentError(
            f"{path}: unknown {', '.join(unknown)} (known: {', '.join(sorted(spec))})"
        )
    return {_api_name(key): _convert(value[key], spec[key], f"{path}.{key}") for key in value}


def _api_name(key: str) -> str:
    """CloudFormation's PascalCase name -> the API's camelCase one (TimeoutInSeconds ->
    timeoutInSeconds): the schema and the API name each field the same otherwise."""
    return key[0].lower() + key[1:]


COMPONENT: Spec = {
    "ComponentVersion": _string,
    "ConfigurationUpdate": {"Merge": _json_object_text, "Reset": [_string]},
    "RunWith": {
        "PosixUser": _string,
        "WindowsUser": _string,
        "SystemResourceLimits": {"Memory": _integer, "Cpus": _number},
    },
}
DEPLOYMENT_POLICIES: Spec = {
    "FailureHandlingPolicy": _string,
    "ComponentUpdatePolicy": {"Action": _string, "TimeoutInSeconds": _integer},
    "ConfigurationValidationPolicy": {"TimeoutInSeconds": _integer},
}
IOT_JOB_CONFIGURATION: Spec = {
    "JobExecutionsRolloutConfig": {
        "MaximumPerMinute": _integer,
        "ExponentialRate": {
            "BaseRatePerMinute": _integer,
            "IncrementFactor": _number,
            "RateIncreaseCriteria": {
                "NumberOfNotifiedThings": _integer,
                "NumberOfSucceededThings": _integer,
            },
        },
    },
    "AbortConfig": {
        "CriteriaList": [
            {
                "FailureType": _string,
                "Action": _string,
                "ThresholdPercentage": _number,
                "MinNumberOfExecutedThings": _integer,
            }
        ]
    },
    "TimeoutConfig": {"InProgressTimeoutInMinutes": _integer},
}
# Keys CloudFormation or the CDK Provider framework add that are not deployment properties.
NOT_PROPERTIES = frozenset({"ServiceToken", "ServiceTimeout"})
PROPERTIES = frozenset(
    {
        Names.TARGET_ARN,
        Names.DEPLOYMENT_NAME,
        Names.COMPONENTS,
        Names.DEPLOYMENT_POLICIES,
        Names.IOT_JOB_CONFIGURATION,
    }
)


def target_arn(props: Mapping[str, Any]) -> str:
    value = props.get(Names.TARGET_ARN)
    if not isinstance(value, str) or not TARGET_ARN_RE.match(value):
        raise DeploymentError(
            f"{Names.TARGET_ARN} must be an IoT thing or thing-group ARN "
            f"(arn:aws:iot:<region>:<account>:thinggroup/<name>), got {value!r}"
        )
    return value


def deployment_request(props: Mapping[str, Any], client_token: str) -> dict[str, Any]:
    """The CreateDeployment parameters for these ResourceProperties."""
    unknown = sorted(set(props) - PROPERTIES - NOT_PROPERTIES)
    if unknown:
        raise DeploymentError(
            f"unknown properties {', '.join(unknown)} (known: {', '.join(sorted(PROPERTIES))})"
        )
    components = props.get(Names.COMPONENTS)
    if not isinstance(components, Mapping) or not components:
        raise DeploymentError(f"{Names.COMPONENTS} must name at least one component")
    request: dict[str, Any] = {
        "targetArn": target_arn(props),
        "deploymentName": _string(props.get(Names.DEPLOYMENT_NAME), Names.DEPLOYMENT_NAME),
        "components": {
            _string(name, f"{Names.COMPONENTS} key"): _convert(
                spec, COMPONENT, f"{Names.COMPONENTS}.{name}"
            )
            for name, spec in components.items()
        },
        "clientToken": client_token,
    }
    for name, spec in (
        (Names.DEPLOYMENT_POLICIES, DEPLOYMENT_POLICIES),
        (Names.IOT_JOB_CONFIGURATION, IOT_JOB_CONFIGURATION),
    ):
        if props.get(name) not in (None, ""):
            request[_api_name(name)] = _convert(props[name], spec, name)
    return request


def owner(event: Mapping[str, Any]) -> str:
    """This resource's ownership tag value: the same for every request of one resource of one
    stack (StackId and LogicalResourceId are in every request), another for any other."""
    identity = f"{event.get('StackId', '')}\n{event.get('LogicalResourceId', '')}"
    return hashlib.sha256(identity.encode()).hexdigest()


def stack_of(event: Mapping[str, Any]) -> str:
    return hashlib.sha256(str(event.get("StackId", "")).encode()).hexdigest()


def client_token(event: Mapping[str, Any]) -> str:
    """One token per CloudFormation request: a retried invocation of the same request creates
    no second deployment (CreateDeployment clientToken: "the IoT Greengrass V2 service returns
    the successful response that it caches from the previous request", botocore), while a
    rollback, a new request, creates one. ClientTokenString: 1-64 of [a-zA-Z0-9-]."""
    parts = (event.get("StackId"), event.get("LogicalResourceId"), event.get("RequestId"))
    if not all(isinstance(part, str) and part for part in parts):
        raise DeploymentError("the request has no StackId, LogicalResourceId or RequestId")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()  # type: ignore[arg-type]


# ---------------------------------------------------------------- refusals
def _refusal(action: str, target: str, error: ClientError) -> DeploymentError:
    """A clear message for the errors the model documents for these operations."""
    response = error.response
    code = response.get("Error", {}).get("Code", "")
    message = response.get("Error", {}).get("Message", "") or response.get("message", "")
    resource = response.get("resourceType"), response.get("resourceId")
    about = f" ({resource[0]} {resource[1]})" if all(resource) else ""
    if code == "ResourceNotFoundException":
        hint = (
            "the target or a component version does not exist in this account and region "
            "(a component version must be created before the deployment that names it)"
        )
    elif code == "ConflictException":
        hint = "another operation on this deployment or target is in progress; retry the stack"
    elif code == "ValidationException":
        fields = response.get("fields") or []
        named = ", ".join(f"{f.get('name')}: {f.get('message')}" for f in fields)
        hint = "the request is not valid" + (f" ({named})" if named else "")
    elif code == "AccessDeniedException":
        hint = "the handler's role lacks a permission it needs"
    else:
        hint = "refused"
    return DeploymentError(f"{action} for {target}: {code}{about}: {hint}: {message}")


# ---------------------------------------------------------------- request types
def create_or_update(event: Mapping[str, Any], greengrass: Any) -> dict[str, Any]:
    """Create, Update and rollback Update alike: deploy these properties to the target.

    The physical ID is the target ARN: an Update that keeps the target keeps it (an update,
    not a replacement); a changed target gives a new one, and CloudFormation then sends Delete
    for the old (CloudFormation User Guide, custom resource "Update" request type: a new
    physical ID makes it a replacement,
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-requesttypes-update.html),
    which cancels the deployment on the old target.
    """
    props = event.get("ResourceProperties") or {}
    request = deployment_request(props, client_token(event))
    request["tags"] = {OWNER_TAG: owner(event), STACK_TAG: stack_of(event)}
    target = request["targetArn"]
    try:
        response = greengrass.create_deployment(**request)
    except ClientError as error:
        raise _refusal("CreateDeployment", target, error) from None
    LOGGER.info(
        "%s: deployment %s (%s) to %s with %s",
        event.get("RequestType"),
        response["deploymentId"],
        request["deploymentName"],
        target,
        ", ".join(f"{n}={c['componentVersion']}" for n, c in sorted(request["components"].items())),
    )
    return {
        "PhysicalResourceId": target,
        "Data": {
            Names.DEPLOYMENT_ID: response["deploymentId"],
            Names.IOT_JOB_ID: response.get("iotJobId", ""),
        },
    }


def latest_of_ours(greengrass: Any, target: str, owner_value: str) -> dict[str, Any] | None:
    """The target's latest deployment if this resource created it; None otherwise.

    A Delete request carries no Data, so the deployment this resource last created is found
    from its target: ListDeployments ``targetArn`` with ``historyFilter`` LATEST_ONLY, and the
    entry whose ``isLatestForTarget`` is true (botocore ListDeployments, Deployment); then
    GetDeployment's ``tags`` say whether it is ours (``OWNER_TAG``). One that another resource,
    or someone by hand, created later replaced ours; it is theirs to keep.
    """
    for deployment in deployments_of(greengrass, target, "LATEST_ONLY"):
        if not deployment.get("isLatestForTarget"):
            continue
        deployment_id = deployment.get("deploymentId")
        try:
            tags = greengrass.get_deployment(deploymentId=deployment_id).get("tags") or {}
        except ClientError as error:
            if _gone(error):
                return None
            raise _refusal("GetDeployment", target, error) from None
        if tags.get(OWNER_TAG) == owner_value:
            return dict(deployment)
        LOGGER.info(
            "latest deployment on %s is %s (%s), created by another resource: left alone",
            target,
            deployment_id,
            deployment.get("deploymentName"),
        )
        return None
    return None


def deployments_of(greengrass: Any, target: str, history: str) -> Iterator[Mapping[str, Any]]:
    """ListDeployments of ``target`` with ``historyFilter`` ``history``, every page (botocore
    ListDeployments ``nextToken``); only entries for that target."""
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"targetArn": target, "historyFilter": history}
        if token:
            kwargs["nextToken"] = token
        try:
            page = greengrass.list_deployments(**kwargs)
        except ClientError as error:
            raise _refusal("ListDeployments", target, error) from None
        yield from (d for d in page.get("deployments", []) if d.get("targetArn") == target)
        token = page.get("nextToken")
        if not token:
            return


def _gone(error: ClientError) -> bool:
    return bool(error.response.get("Error", {}).get("Code") == "ResourceNotFoundException")


def previous_of_stack(
    greengrass: Any, target: str, ours: str, stack: str
) -> Mapping[str, Any] | None:
    """The newest deployment on ``target`` that another resource of this stack made, if no
    stranger deployed there since; None otherwise. ListDeployments ``historyFilter`` ALL
    (every revision, with ``creationTimestamp``), GetDeployment for each one's tags, newest
    first."""
    entries = list(deployments_of(greengrass, target, "ALL"))
    for entry in sorted(entries, key=lambda d: str(d.get("creationTimestamp", "")), reverse=True):
        try:
            found = greengrass.get_deployment(deploymentId=entry["deploymentId"])
        except ClientError as error:
            if _gone(error):
                continue
            raise _refusal("GetDeployment", target, error) from None
        tags = found.get("tags") or {}
        if tags.get(OWNER_TAG) == ours:
            continue
        return dict(found) if tags.get(STACK_TAG) == stack else None
    return None


def reissue(event: Mapping[str, Any], greengrass: Any, previous: Mapping[str, Any]) -> str:
    """CreateDeployment of ``previous`` again, under its own resource's tags."""
    request: dict[str, Any] = {
        key: previous[key]
        for key in (
            "targetArn",
            "deploymentName",
            "components",
            "deploymentPolicies",
            "iotJobConfiguration",
            "tags",
        )
        if previous.get(key) is not None
    }
    request["clientToken"] = client_token(event)
    try:
        response = greengrass.create_deployment(**request)
    except ClientError as error:
        raise _refusal("CreateDeployment", str(previous.get("targetArn")), error) from None
    return str(response["deploymentId"])


def delete(
    event: Mapping[str, Any],
    greengrass: Any,
    stack_status: Callable[[], str] | None = None,
) -> dict[str, Any]:
    """Cancel and delete the deployment this resource last created, as the native resource's
    delete handler does (registry schema: greengrass:CancelDeployment, DeleteDeployment).

    Except in a rollback's cleanup (``stack_status``: DescribeStacks of this stack says
    ``ROLLBACK_CLEANUP``), when this resource was created by the failed update and its target
    was, before it, deployed by another resource of this stack that the rollback keeps (a
    class that gained or lost a canary ring, a renamed class): that resource gets no rollback
    request, so its release is deployed again here, and the devices end on the release the
    stack says.

    Safe to run twice: no deployment of ours, or one already cancelled or deleted, is done.
    Deleting a deployment uninstalls nothing (botocore DeleteDeployment: core devices keep
    running the deployment's configuration).
    """
    physical = str(event.get("PhysicalResourceId") or "")
    if not TARGET_ARN_RE.match(physical):
        # A Create that failed before it deployed leaves a placeholder physical ID.
        LOGGER.info("physical ID %r is no target ARN: nothing was deployed", physical)
        return {"PhysicalResourceId": physical}
    deployment = latest_of_ours(greengrass, physical, owner(event))
    if deployment is None:
        return {"PhysicalResourceId": physical}
    if stack_status is not None and stack_status() == ROLLBACK_CLEANUP:
        previous = previous_of_stack(greengrass, physical, owner(event), stack_of(event))
        if previous is not None:
            deployment_id = reissue(event, greengrass, previous)
            LOGGER.info(
                "rollback: %s deployed again to %s (deployment %s)",
                previous.get("deploymentName"),
                physical,
                deployment_id,
            )
            return {"PhysicalResourceId": physical}
    deployment_id = deployment["deploymentId"]
    if deployment.get("deploymentStatus") == ACTIVE:
        try:
            greengrass.cancel_deployment(deploymentId=deployment_id)
        except ClientError as error:
            if _gone(error):
                return {"PhysicalResourceId": physical}
            raise _refusal("CancelDeployment", physical, error) from None
    try:
        greengrass.delete_deployment(deploymentId=deployment_id)
    except ClientError as error:
        if not _gone(error):
            raise _refusal("DeleteDeployment", physical, error) from None
    LOGGER.info("cancelled and deleted deployment %s on %s", deployment_id, physical)
    return {"PhysicalResourceId": physical}


def on_event(
    event: Mapping[str, Any], greengrass: Any, stack_status: Callable[[], str] | None = None
) -> dict[str, Any]:
    """CDK Provider framework on_event. ``stack_status``: this stack's StackStatus
    (CloudFormation DescribeStacks), read only by a Delete."""
    request_type = event.get("RequestType")
    if request_type in ("Create", "Update"):
        return create_or_update(event, greengrass)
    if request_type == "Delete":
        return delete(event, greengrass, stack_status)
    raise DeploymentError(f"unknown RequestType {request_type!r}")
