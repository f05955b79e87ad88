"""Custom::GreengrassDeployment against botocore's ``Stubber`` on a real greengrassv2 client,
which checks every request against the API model (moto has no Greengrass V2).

The lifecycle it must get right (issue 17, part 2, item 6): Create deploys; an Update deploys
the new release; the rollback Update that CloudFormation sends with the *old* properties
re-issues the old release (CreateDeployment to a target replaces that target's deployment,
botocore greengrassv2 CreateDeployment); Delete cancels and deletes the deployment it made,
and is safe twice. Refusals use the errors the model documents for each operation.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Iterator

import boto3
import deployment_handler
import deployment_logic
import pytest
from botocore.stub import ANY, Stubber

GROUP = "arn:aws:iot:eu-west-1:123456789012:thinggroup/EdgeAiDevDevices"
OTHER_GROUP = "arn:aws:iot:eu-west-1:123456789012:thinggroup/EdgeAiDevOthers"
NAME = "edge-ai-dev-default-edge-inference"
LOGICAL = "DeploymentRelease1A2B3C4D"
STACK = "arn:aws:cloudformation:eu-west-1:123456789012:stack/edge-ai-dev-Pipeline/guid"
INFERENCE = "com.example.edgeai.dev.DlrInference"
MERGE = json.dumps({"TopK": 5, "Runtime": "dlr"}, separators=(",", ":"))


def release(model_version: str, *, target: str = GROUP) -> dict[str, Any]:
    """ResourceProperties as CloudFormation sends them: every leaf a string."""
    return {
        "ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:provider",
        "TargetArn": target,
        "DeploymentName": NAME,
        "Components": {
            "com.example.edgeai.dev.Model": {"ComponentVersion": model_version},
            INFERENCE: {
                "ComponentVersion": "1.0.4",
                "ConfigurationUpdate": {"Merge": MERGE, "Reset": ["/accessControl"]},
            },
        },
        "DeploymentPolicies": {
            "FailureHandlingPolicy": "ROLLBACK",
            "ComponentUpdatePolicy": {"Action": "NOTIFY_COMPONENTS", "TimeoutInSeconds": "60"},
            "ConfigurationValidationPolicy": {"TimeoutInSeconds": "60"},
        },
        "IotJobConfiguration": {
            "JobExecutionsRolloutConfig": {"MaximumPerMinute": "50"},
            "AbortConfig": {
                "CriteriaList": [
                    {
                        "Action": "CANCEL",
                        "FailureType": "ALL",
                        "MinNumberOfExecutedThings": "5",
                        "ThresholdPercentage": "10.5",
                    }
                ]
            },
            "TimeoutConfig": {"InProgressTimeoutInMinutes": "60"},
        },
    }


def request(model_version: str, *, target: str = GROUP) -> dict[str, Any]:
    """The CreateDeployment parameters ``release(model_version)`` must become: the API's
    camelCase names and types (integers, a double), client token aside."""
    return {
        "targetArn": target,
        "deploymentName": NAME,
        "tags": {deployment_logic.OWNER_TAG: ours(), deployment_logic.STACK_TAG: our_stack()},
        "components": {
            "com.example.edgeai.dev.Model": {"componentVersion": model_version},
            INFERENCE: {
                "componentVersion": "1.0.4",
                "configurationUpdate": {"merge": MERGE, "reset": ["/accessControl"]},
            },
        },
        "deploymentPolicies": {
            "failureHandlingPolicy": "ROLLBACK",
            "componentUpdatePolicy": {"action": "NOTIFY_COMPONENTS", "timeoutInSeconds": 60},
            "configurationValidationPolicy": {"timeoutInSeconds": 60},
        },
        "iotJobConfiguration": {
            "jobExecutionsRolloutConfig": {"maximumPerMinute": 50},
            "abortConfig": {
                "criteriaList": [
                    {
                        "action": "CANCEL",
                        "failureType": "ALL",
                        "minNumberOfExecutedThings": 5,
                        "thresholdPercentage": 10.5,
                    }
                ]
            },
            "timeoutConfig": {"inProgressTimeoutInMinutes": 60},
        },
        "clientToken": ANY,
    }


def event(
    request_type: str,
    props: dict[str, Any],
    *,
    old: dict[str, Any] | None = None,
    physical: str | None = None,
    request_id: str = "req-1",
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "RequestType": request_type,
        "RequestId": request_id,
        "StackId": STACK,
        "LogicalResourceId": LOGICAL,
        "ResourceType": "Custom::GreengrassDeployment",
        "ResourceProperties": props,
    }
    if old is not None:
        result["OldResourceProperties"] = old
    if physical is not None:
        result["PhysicalResourceId"] = physical
    return result


@pytest.fixture
def greengrass(boto_session: boto3.Session) -> Iterator[tuple[Any, Stubber]]:
    client = boto_session.client("greengrassv2")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def created(deployment_id: str) -> dict[str, Any]:
    return {
        "deploymentId": deployment_id,
        "iotJobId": f"job-{deployment_id}",
        "iotJobArn": f"arn:aws:iot:eu-west-1:123456789012:job/job-{deployment_id}",
    }


def listed(deployment_id: str, status: str, *, name: str = NAME) -> dict[str, Any]:
    return {
        "deployments": [
            {
                "targetArn": GROUP,
                "revisionId": "3",
                "deploymentId": deployment_id,
                "deploymentName": name,
                "deploymentStatus": status,
                "isLatestForTarget": True,
            }
        ]
    }


LIST_PARAMS = {"targetArn": GROUP, "historyFilter": "LATEST_ONLY"}


def ours(logical: str = LOGICAL) -> str:
    """The ownership tag value the handler gives the deployments of resource ``logical``."""
    return str(deployment_logic.owner({"StackId": STACK, "LogicalResourceId": logical}))


def our_stack() -> str:
    return str(deployment_logic.stack_of({"StackId": STACK}))


def got(deployment_id: str, owner: str | None = None) -> dict[str, Any]:
    """GetDeployment's answer: the deployment with its tags (ours unless ``owner`` says)."""
    return {
        "deploymentId": deployment_id,
        "targetArn": GROUP,
        "tags": {deployment_logic.OWNER_TAG: ours() if owner is None else owner},
    }


# ---------------------------------------------------------------- create and update
def test_create_deploys_the_release_with_the_apis_types(greengrass) -> None:
    client, stubber = greengrass
    stubber.add_response("create_deployment", created("d-1"), request("1.0.1"))

    result = deployment_logic.on_event(event("Create", release("1.0.1")), client)

    assert result == {
        "PhysicalResourceId": GROUP,
        "Data": {"DeploymentId": "d-1", "IotJobId": "job-d-1"},
    }


def test_update_rollback_reissues_the_old_release_to_the_same_target(greengrass) -> None:
    """Create release 1, update to release 2, then the stack fails and CloudFormation rolls
    the resource back: an Update whose ResourceProperties are release 1 again. Each is a
    CreateDeployment to the target, so the rollback puts release 1 back on the devices; the
    physical ID stays the target (no replacement, no Delete of the live deployment)."""
    client, stubber = greengrass
    tokens: list[str] = []
    for deployment_id, version in (("d-1", "1.0.1"), ("d-2", "1.0.2"), ("d-3", "1.0.1")):
        stubber.add_response("create_deployment", created(deployment_id), request(version))

    steps = [
        event("Create", release("1.0.1"), request_id="create"),
        event("Update", release("1.0.2"), old=release("1.0.1"), physical=GROUP, request_id="up"),
        event("Update", release("1.0.1"), old=release("1.0.2"), physical=GROUP, request_id="rb"),
    ]
    results = []
    for step in steps:
        tokens.append(deployment_logic.client_token(step))
        results.append(deployment_logic.on_event(step, client))

    assert [r["PhysicalResourceId"] for r in results] == [GROUP, GROUP, GROUP]
    assert [r["Data"]["DeploymentId"] for r in results] == ["d-1", "d-2", "d-3"]
    assert len(set(tokens)) == 3, "a rollback is a new request: it must create a deployment"


def test_the_rollback_request_carries_the_old_components(greengrass) -> None:
    client, stubber = greengrass
    old = request("1.0.1")
    stubber.add_response("create_deployment", created("d-3"), old)
    rollback = event("Update", release("1.0.1"), old=release("1.0.2"), physical=GROUP)
    deployment_logic.on_event(rollback, client)  # Stubber fails on any other components


def test_a_retried_request_reuses_its_client_token() -> None:
    """CreateDeployment's clientToken makes a retried invocation of one request idempotent."""
    first = event("Update", release("1.0.2"), old=release("1.0.1"), physical=GROUP)
    token = deployment_logic.client_token(first)
    assert token == deployment_logic.client_token(copy.deepcopy(first))
    assert token != deployment_logic.client_token({**first, "RequestId": "another"})
    assert 1 <= len(token) <= 64 and token.isalnum()


def test_a_new_target_is_a_new_physical_id(greengrass) -> None:
    """A changed TargetArn returns a new physical ID: CloudFormation treats it as a
    replacement and sends Delete for the old target's deployment."""
    client, stubber = greengrass
    stubber.add_response("create_deployment", created("d-9"), request("1.0.1", target=OTHER_GROUP))
    moved = event(
        "Update", release("1.0.1", target=OTHER_GROUP), old=release("1.0.1"), physical=GROUP
    )
    assert deployment_logic.on_event(moved, client)["PhysicalResourceId"] == OTHER_GROUP


# ---------------------------------------------------------------- delete
def test_delete_cancels_and_deletes_an_active_deployment(greengrass) -> None:
    client, stubber = greengrass
    stubber.add_response("list_deployments", listed("d-2", "ACTIVE"), LIST_PARAMS)
    stubber.add_response("get_deployment", got("d-2"), {"deploymentId": "d-2"})
    stubber.add_response("cancel_deployment", {"message": "ok"}, {"deploymentId": "d-2"})
    stubber.add_response("delete_deployment", {}, {"deploymentId": "d-2"})

    result = deployment_logic.on_event(event("Delete", release("1.0.2"), physical=GROUP), client)

    assert result == {"PhysicalResourceId": GROUP}


def test_delete_twice_is_safe(greengrass) -> None:
    client, stubber = greengrass
    delete = event("Delete", release("1.0.2"), physical=GROUP)
    stubber.add_response("list_deployments", listed("d-2", "ACTIVE"), LIST_PARAMS)
    stubber.add_response("get_deployment", got("d-2"), {"deploymentId": "d-2"})
    stubber.add_response("cancel_deployment", {"message": "ok"}, {"deploymentId": "d-2"})
    stubber.add_response("delete_deployment", {}, {"deploymentId": "d-2"})
    # The second time: the deployment is gone from the list.
    stubber.add_response("list_deployments", {"deployments": []}, LIST_PARAMS)

    assert deployment_logic.on_event(delete, client) == {"PhysicalResourceId": GROUP}
    assert deployment_logic.on_event(delete, client) == {"PhysicalResourceId": GROUP}


def test_delete_of_a_cancelled_one_only_deletes_and_tolerates_it_gone(greengrass) -> None:
    client, stubber = greengrass
    stubber.add_response("list_deployments", listed("d-2", "CANCELED"), LIST_PARAMS)
    stubber.add_response("get_deployment", got("d-2"), {"deploymentId": "d-2"})
    stubber.add_client_error(
        "delete_deployment",
        "ResourceNotFoundException",
        "Deployment d-2 not found",
        404,
        expected_params={"deploymentId": "d-2"},
        modeled_fields={"message": "refused", "resourceId": "d-2", "resourceType": "deployment"},
    )
    assert deployment_logic.on_event(event("Delete", release("1.0.2"), physical=GROUP), client)


def test_delete_when_cancel_finds_it_gone(greengrass) -> None:
    client, stubber = greengrass
    stubber.add_response("list_deployments", listed("d-2", "ACTIVE"), LIST_PARAMS)
    stubber.add_response("get_deployment", got("d-2"), {"deploymentId": "d-2"})
    stubber.add_client_error(
        "cancel_deployment",
        "ResourceNotFoundException",
        "Deployment d-2 not found",
        404,
        expected_params={"deploymentId": "d-2"},
        modeled_fields={"message": "refused", "resourceId": "d-2", "resourceType": "deployment"},
    )
    assert deployment_logic.on_event(event("Delete", release("1.0.2"), physical=GROUP), client)


def test_delete_leaves_a_later_deployment_of_someone_else_alone(greengrass) -> None:
    client, stubber = greengrass
    stubber.add_response(
        "list_deployments", listed("d-7", "ACTIVE", name="hand-made-hotfix"), LIST_PARAMS
    )
    stubber.add_response(
        "get_deployment", got("d-7", owner="someone-else"), {"deploymentId": "d-7"}
    )
    # No cancel, no delete: the Stubber fails on any call not queued.
    assert deployment_logic.on_event(event("Delete", release("1.0.2"), physical=GROUP), client)


def test_delete_leaves_the_deployment_of_another_resource_on_the_same_target_alone(
    greengrass,
) -> None:
    """A class that gains a canary ring moves its thing group from one deployment resource to
    another (same target, same deployment name); CloudFormation deletes the old resource after
    creating the new one. The old one's Delete finds the new deployment latest on the target,
    and GetDeployment's tags say it is another resource's: left alone (found by the hostile
    review: it was cancelled and deleted, leaving the fleet with no deployment)."""
    client, stubber = greengrass
    stubber.add_response("list_deployments", listed("d-8", "ACTIVE"), LIST_PARAMS)
    stubber.add_response(
        "get_deployment",
        got("d-8", owner=ours("FleetDeploymentRelease9F8E7D6C")),
        {"deploymentId": "d-8"},
    )
    assert deployment_logic.on_event(event("Delete", release("1.0.1"), physical=GROUP), client) == {
        "PhysicalResourceId": GROUP
    }


def test_delete_follows_list_pages(greengrass) -> None:
    client, stubber = greengrass
    stubber.add_response("list_deployments", {"deployments": [], "nextToken": "p2"}, LIST_PARAMS)
    stubber.add_response(
        "list_deployments", listed("d-2", "ACTIVE"), {**LIST_PARAMS, "nextToken": "p2"}
    )
    stubber.add_response("get_deployment", got("d-2"), {"deploymentId": "d-2"})
    stubber.add_response("cancel_deployment", {"message": "ok"}, {"deploymentId": "d-2"})
    stubber.add_response("delete_deployment", {}, {"deploymentId": "d-2"})
    deployment_logic.on_event(event("Delete", release("1.0.2"), physical=GROUP), client)


def test_delete_after_a_failed_create_calls_nothing(greengrass) -> None:
    """A Create that failed before deploying leaves a physical ID that is no target ARN."""
    client, _ = greengrass
    placeholder = event("Delete", release("1.0.1"), physical="req-1")
    assert deployment_logic.on_event(placeholder, client) == {"PhysicalResourceId": "req-1"}


# ---------------------------------------------------------------- refusals
@pytest.mark.parametrize(
    ("code", "status", "fields", "expected"),
    [
        (
            "ResourceNotFoundException",
            404,
            {"resourceId": "com.example.edgeai.dev.Model:1.0.1", "resourceType": "component"},
            r"CreateDeployment for .*EdgeAiDevDevices: ResourceNotFoundException \(component "
            r"com\.example\.edgeai\.dev\.Model:1\.0\.1\): .*component version must be created",
        ),
        (
            "ConflictException",
            409,
            {"resourceId": GROUP, "resourceType": "deployment"},
            r"ConflictException .*in progress",
        ),
        (
            "ValidationException",
            400,
            {
                "reason": "FIELD_VALIDATION_FAILED",
                "fields": [{"name": "components", "message": "unknown component"}],
            },
            r"ValidationException: the request is not valid \(components: unknown component\)",
        ),
    ],
)
def test_create_refusals_say_what_is_wrong(greengrass, code, status, fields, expected) -> None:
    client, stubber = greengrass
    stubber.add_client_error(
        "create_deployment",
        code,
        "refused",
        status,
        modeled_fields={"message": "refused", **fields},
    )
    with pytest.raises(deployment_logic.DeploymentError, match=expected):
        deployment_logic.on_event(event("Create", release("1.0.1")), client)


def test_a_delete_conflict_fails_the_delete_with_its_reason(greengrass) -> None:
    client, stubber = greengrass
    stubber.add_response("list_deployments", listed("d-2", "ACTIVE"), LIST_PARAMS)
    stubber.add_response("get_deployment", got("d-2"), {"deploymentId": "d-2"})
    stubber.add_response("cancel_deployment", {"message": "ok"}, {"deploymentId": "d-2"})
    stubber.add_client_error(
        "delete_deployment",
        "ConflictException",
        "Deployment d-2 is being cancelled",
        409,
        modeled_fields={"message": "refused", "resourceId": "d-2", "resourceType": "deployment"},
    )
    with pytest.raises(deployment_logic.DeploymentError, match=r"DeleteDeployment .*Conflict"):
        deployment_logic.on_event(event("Delete", release("1.0.2"), physical=GROUP), client)


def _set(props: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(props)
    node = changed
    for key in path[:-1]:
        node = node[key]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return changed


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            ("DeploymentPolicies", "ComponentUpdatePolicy", "TimeoutInSeconds"),
            "sixty",
            r"DeploymentPolicies\.ComponentUpdatePolicy\.TimeoutInSeconds must be an integer",
        ),
        (
            ("IotJobConfiguration", "AbortConfig", "CriteriaList", 0, "ThresholdPercentage"),
            "ten",
            r"CriteriaList\[0\]\.ThresholdPercentage must be a number",
        ),
        (
            ("Components", INFERENCE, "ConfigurationUpdate", "Merge"),
            "{not json",
            rf"Components\.{INFERENCE.replace('.', '[.]')}\.ConfigurationUpdate\.Merge is not "
            "valid JSON",
        ),
        (
            ("Components", INFERENCE, "Version"),
            "1.0.4",
            r"Components\..*DlrInference: unknown Version \(known: ComponentVersion, ",
        ),
        (("TargetArn",), "EdgeAiDevDevices", r"TargetArn must be an IoT thing or thing-group ARN"),
        (("Components",), {}, r"Components must name at least one component"),
        (("DeploymentName",), None, r"DeploymentName must be a non-empty string"),
        (("Tags",), {"a": "b"}, r"unknown properties Tags"),
    ],
)
def test_malformed_properties_name_the_property(greengrass, path, value, expected) -> None:
    client, _ = greengrass  # no call is queued: nothing may reach the API
    props = _set(release("1.0.1"), path, value)
    with pytest.raises(deployment_logic.DeploymentError, match=expected):
        deployment_logic.on_event(event("Create", props), client)


def test_unknown_request_type_is_refused(greengrass) -> None:
    client, _ = greengrass
    with pytest.raises(deployment_logic.DeploymentError, match="unknown RequestType"):
        deployment_logic.on_event(event("Replace", release("1.0.1")), client)


# ---------------------------------------------------------------- the table is the model's
def _model_type(shape: Any) -> str:
    return {"integer": "int", "long": "int", "double": "float", "float": "float"}.get(
        shape.type_name, shape.type_name
    )


def _walk(spec: Any, shape: Any, path: str) -> list[str]:
    """Mismatches between the conversion table and the botocore shape."""
    converters = {
        deployment_logic._string: "string",
        deployment_logic._json_object_text: "string",
        deployment_logic._integer: "int",
        deployment_logic._number: "float",
    }
    if callable(spec):
        wanted = converters[spec]
        return [] if _model_type(shape) == wanted else [f"{path}: {wanted} vs {shape.type_name}"]
    if isinstance(spec, list):
        if shape.type_name != "list":
            return [f"{path}: list vs {shape.type_name}"]
        return _walk(spec[0], shape.member, f"{path}[]")
    problems = []
    for key, sub in spec.items():
        member = deployment_logic._api_name(key)
        if member not in shape.members:
            problems.append(f"{path}.{key}: no member {member} in {shape.name}")
            continue
        problems += _walk(sub, shape.members[member], f"{path}.{key}")
    return problems


def test_the_conversion_table_follows_the_api_model(boto_session) -> None:
    model = boto_session.client("greengrassv2").meta.service_model
    create = model.operation_model("CreateDeployment").input_shape
    problems = _walk(deployment_logic.COMPONENT, create.members["components"].value, "Components.*")
    problems += _walk(
        deployment_logic.DEPLOYMENT_POLICIES,
        create.members["deploymentPolicies"],
        "DeploymentPolicies",
    )
    problems += _walk(
        deployment_logic.IOT_JOB_CONFIGURATION,
        create.members["iotJobConfiguration"],
        "IotJobConfiguration",
    )
    assert problems == []
    assert "clientToken" in create.members
    assert create.members["clientToken"].metadata.get("idempotencyToken") is True


def test_the_handler_uses_a_greengrassv2_client(monkeypatch) -> None:
    seen: list[str] = []

    def client(service: str, **kwargs: Any) -> str:
        seen.append(service)
        return "client"

    monkeypatch.setattr(deployment_handler, "client", client)
    monkeypatch.setattr(
        deployment_handler.deployment_logic,
        "on_event",
        lambda event, greengrass, stack_status: {"c": greengrass},
    )
    assert deployment_handler.handler(event("Create", release("1.0.1")), None) == {"c": "client"}
    assert seen == ["greengrassv2"]


def test_a_rollback_deletes_ours_and_deploys_again_what_another_resource_of_the_stack_had(
    greengrass,
) -> None:
    """A failed update moved the group from resource A (ring "all") to this new resource
    (ring "fleet"). In the rollback's cleanup (UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS)
    CloudFormation deletes this one and sends A nothing: A's release is deployed again, under
    A's tags, instead of leaving the group with a cancelled deployment (found by the second
    hostile review). Outside a rollback, the same Delete cancels and deletes, as before."""
    client, stubber = greengrass
    theirs = ours("ClassjetsonDeploymentRelease0A1B2C3D")
    previous = {
        **got("d-1", owner=theirs),
        "deploymentName": NAME,
        "components": request("1.0.1")["components"],
        "deploymentPolicies": request("1.0.1")["deploymentPolicies"],
        "tags": {deployment_logic.OWNER_TAG: theirs, deployment_logic.STACK_TAG: our_stack()},
    }
    stubber.add_response("list_deployments", listed("d-2", "ACTIVE"), LIST_PARAMS)
    stubber.add_response("get_deployment", got("d-2"), {"deploymentId": "d-2"})
    history = {
        "deployments": [
            {**listed("d-1", "INACTIVE")["deployments"][0], "creationTimestamp": 1},
            {**listed("d-2", "ACTIVE")["deployments"][0], "creationTimestamp": 2},
        ]
    }
    stubber.add_response("list_deployments", history, {"targetArn": GROUP, "historyFilter": "ALL"})
    stubber.add_response("get_deployment", got("d-2"), {"deploymentId": "d-2"})
    stubber.add_response("get_deployment", previous, {"deploymentId": "d-1"})
    stubber.add_response(
        "create_deployment",
        created("d-3"),
        {
            "targetArn": GROUP,
            "deploymentName": NAME,
            "components": previous["components"],
            "deploymentPolicies": previous["deploymentPolicies"],
            "tags": previous["tags"],
            "clientToken": ANY,
        },
    )
    deleted = deployment_logic.on_event(
        event("Delete", release("1.0.2"), physical=GROUP),
        client,
        lambda: deployment_logic.ROLLBACK_CLEANUP,
    )
    assert deleted == {"PhysicalResourceId": GROUP}


def test_a_rollback_with_no_other_resource_before_cancels_ours(greengrass) -> None:
    """The group had no earlier deployment of this stack (a new class rolled back): nothing to
    deploy again, so ours is cancelled and deleted."""
    client, stubber = greengrass
    stubber.add_response("list_deployments", listed("d-2", "ACTIVE"), LIST_PARAMS)
    stubber.add_response("get_deployment", got("d-2"), {"deploymentId": "d-2"})
    stubber.add_response(
        "list_deployments", listed("d-2", "ACTIVE"), {"targetArn": GROUP, "historyFilter": "ALL"}
    )
    stubber.add_response("get_deployment", got("d-2"), {"deploymentId": "d-2"})
    stubber.add_response("cancel_deployment", {"message": "ok"}, {"deploymentId": "d-2"})
    stubber.add_response("delete_deployment", {}, {"deploymentId": "d-2"})
    deployment_logic.on_event(
        event("Delete", release("1.0.2"), physical=GROUP),
        client,
        lambda: deployment_logic.ROLLBACK_CLEANUP,
    )


def test_a_rollback_never_deploys_again_what_a_stranger_deployed(greengrass) -> None:
    """The deployment before ours on the group is another stack's (or a hand-made one): the
    rollback does not resurrect it; ours is cancelled and deleted."""
    client, stubber = greengrass
    stranger = {
        **got("d-1", owner="someone-else"),
        "tags": {deployment_logic.OWNER_TAG: "someone-else", deployment_logic.STACK_TAG: "x"},
    }
    stubber.add_response("list_deployments", listed("d-2", "ACTIVE"), LIST_PARAMS)
    stubber.add_response("get_deployment", got("d-2"), {"deploymentId": "d-2"})
    history = {
        "deployments": [
            {**listed("d-1", "INACTIVE")["deployments"][0], "creationTimestamp": 1},
            {**listed("d-2", "ACTIVE")["deployments"][0], "creationTimestamp": 2},
        ]
    }
    stubber.add_response("list_deployments", history, {"targetArn": GROUP, "historyFilter": "ALL"})
    stubber.add_response("get_deployment", got("d-2"), {"deploymentId": "d-2"})
    stubber.add_response("get_deployment", stranger, {"deploymentId": "d-1"})
    stubber.add_response("cancel_deployment", {"message": "ok"}, {"deploymentId": "d-2"})
    stubber.add_response("delete_deployment", {}, {"deploymentId": "d-2"})
    deployment_logic.on_event(
        event("Delete", release("1.0.2"), physical=GROUP),
        client,
        lambda: deployment_logic.ROLLBACK_CLEANUP,
    )
