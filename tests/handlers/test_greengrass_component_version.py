"""Custom::GreengrassComponentVersion against botocore's ``Stubber`` on a real greengrassv2
client, which checks every request and response against the API model (moto has no
Greengrass V2).

What it must get right (issue 17, part 2, item 2): Create and Update create the version, or,
when CreateComponentVersion answers ConflictException (botocore greengrassv2: the version
exists), read the existing recipe back (GetComponent) and adopt it when it is the same recipe
(the digests the service adds to artifacts aside), refusing a different one by name; a version
not yet DEPLOYABLE is polled with DescribeComponent, a FAILED one is an error with the
service's message (CloudComponentStatus); Delete leaves the version.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any, Iterator

import boto3
import component_logic
import deployment_handler
import pytest
from botocore.stub import Stubber

STACK = "arn:aws:cloudformation:eu-west-1:123456789012:stack/edge-ai-dev-Pipeline/guid"
NAME = "com.example.edgeai.dev.Model"
VERSION = "1.0.81043640"
ARN = f"arn:aws:greengrass:eu-west-1:123456789012:components:{NAME}:versions:{VERSION}"
URI = "s3://edge-ai-dev-artifacts/packages/model-0a1b2c.zip"
TYPE = "Custom::GreengrassComponentVersion"


def recipe(**overrides: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "RecipeFormatVersion": "2020-01-25",
        "ComponentName": NAME,
        "ComponentVersion": VERSION,
        "ComponentDescription": "resnet18 compiled by Neo",
        "ComponentPublisher": "edge-ai",
        "Manifests": [
            {
                "Platform": {"os": "linux", "architecture": "x86_64"},
                "Artifacts": [{"Uri": URI, "Unarchive": "ZIP", "Permission": {"Read": "ALL"}}],
                "Lifecycle": {},
            }
        ],
    }
    value.update(overrides)
    return value


def props(value: dict[str, Any] | None = None) -> dict[str, Any]:
    """ResourceProperties as CloudFormation sends them (the recipe is one JSON string)."""
    return {
        "ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:provider",
        "InlineRecipe": json.dumps(value if value is not None else recipe()),
    }


def event(request_type: str, properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "RequestId": "req-1",
        "StackId": STACK,
        "LogicalResourceId": "ModelComponentVersion1A2B3C4D",
        "ResourceType": TYPE,
        "ResourceProperties": properties,
        **extra,
    }


def status(state: str, message: str = "NONE", errors: dict[str, str] | None = None) -> Any:
    return {"componentState": state, "message": message, "errors": errors or {}}


def created(state: str = "DEPLOYABLE") -> dict[str, Any]:
    return {
        "arn": ARN,
        "componentName": NAME,
        "componentVersion": VERSION,
        "creationTimestamp": "2026-01-01T00:00:00Z",
        "status": status(state),
    }


def described(state: str, message: str = "NONE", errors: dict[str, str] | None = None) -> Any:
    return {
        "arn": ARN,
        "componentName": NAME,
        "componentVersion": VERSION,
        "status": status(state, message, errors),
    }


def conflict(stubber: Stubber) -> None:
    stubber.add_client_error(
        "create_component_version",
        service_error_code="ConflictException",
        service_message=f"Component {NAME} version {VERSION} already exists",
        http_status_code=409,
        expected_params=create_params(),
    )


def create_params() -> dict[str, Any]:
    """CreateComponentVersion's parameters: the recipe, tagged with its digest."""
    text = props()["InlineRecipe"]
    return {
        "inlineRecipe": text.encode(),
        "tags": {component_logic.RECIPE_TAG: hashlib.sha256(text.encode()).hexdigest()},
    }


def stored(value: dict[str, Any], tags: dict[str, str] | None = None) -> dict[str, Any]:
    """What GetComponent returns: the recipe with the digest the service added (untagged: a
    version made by the native resource of an earlier release, or by hand)."""
    value = copy.deepcopy(value)
    for manifest in value["Manifests"]:
        for artifact in manifest["Artifacts"]:
            artifact["Digest"] = "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="
            artifact["Algorithm"] = "SHA-256"
    answer: dict[str, Any] = {"recipeOutputFormat": "JSON", "recipe": json.dumps(value).encode()}
    if tags is not None:
        answer["tags"] = tags
    return answer


@pytest.fixture
def greengrass(boto_session: boto3.Session) -> Iterator[tuple[Any, Stubber]]:
    client = boto_session.client("greengrassv2")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def test_create_creates_the_version_and_answers_the_native_attributes(greengrass) -> None:
    client, stubber = greengrass
    stubber.add_response("create_component_version", created(), create_params())
    sleeps = Sleeps()
    response = component_logic.on_event(event("Create", props()), client, sleeps)
    assert response == {
        "PhysicalResourceId": ARN,
        "Data": {"Arn": ARN, "ComponentName": NAME, "ComponentVersion": VERSION},
    }
    assert sleeps == []  # DEPLOYABLE at once: no poll


def test_an_existing_version_with_the_same_recipe_is_adopted(greengrass) -> None:
    """A -> B -> A, or the retry after a rollback: ConflictException, the existing recipe is
    ours (the service added the artifact digests), so the version is adopted."""
    client, stubber = greengrass
    conflict(stubber)
    stubber.add_response(
        "get_component", stored(recipe()), {"arn": ARN, "recipeOutputFormat": "JSON"}
    )
    stubber.add_response("describe_component", described("DEPLOYABLE"), {"arn": ARN})
    response = component_logic.on_event(event("Update", props()), client, Sleeps())
    assert response["PhysicalResourceId"] == ARN
    assert response["Data"]["ComponentVersion"] == VERSION


def test_an_existing_version_with_another_recipe_is_refused_by_name(greengrass) -> None:
    client, stubber = greengrass
    conflict(stubber)
    other = recipe(ComponentDescription="made by hand")
    stubber.add_response("get_component", stored(other), {"arn": ARN, "recipeOutputFormat": "JSON"})
    with pytest.raises(component_logic.ComponentVersionError) as caught:
        component_logic.on_event(event("Create", props()), client, Sleeps())
    message = str(caught.value)
    assert f"{NAME}@{VERSION}" in message and "ComponentDescription" in message, message
    assert f"delete-component --arn {ARN}" in message, message


def test_a_different_artifact_is_a_different_recipe(greengrass) -> None:
    """Only the service's Digest/Algorithm are ignored: another artifact URI is not ours."""
    client, stubber = greengrass
    conflict(stubber)
    other = copy.deepcopy(recipe())
    other["Manifests"][0]["Artifacts"][0]["Uri"] = URI.replace("0a1b2c", "ffffff")
    stubber.add_response("get_component", stored(other), {"arn": ARN, "recipeOutputFormat": "JSON"})
    with pytest.raises(component_logic.ComponentVersionError, match=r"Manifests\[0\]"):
        component_logic.on_event(event("Create", props()), client, Sleeps())


def test_a_conflict_with_no_such_version_is_an_operation_in_progress(greengrass) -> None:
    client, stubber = greengrass
    conflict(stubber)
    stubber.add_client_error(
        "get_component",
        service_error_code="ResourceNotFoundException",
        http_status_code=404,
        expected_params={"arn": ARN, "recipeOutputFormat": "JSON"},
    )
    with pytest.raises(component_logic.ComponentVersionError, match="in progress; retry"):
        component_logic.on_event(event("Create", props()), client, Sleeps())


def test_a_pending_version_is_polled_until_deployable(greengrass) -> None:
    client, stubber = greengrass
    stubber.add_response("create_component_version", created("REQUESTED"))
    stubber.add_response("describe_component", described("INITIATED"), {"arn": ARN})
    stubber.add_response("describe_component", described("DEPLOYABLE"), {"arn": ARN})
    sleeps = Sleeps()
    component_logic.on_event(event("Create", props()), client, sleeps)
    assert sleeps == [component_logic.POLL_SECONDS] * 2


def test_a_failed_version_is_an_error_with_the_services_message(greengrass) -> None:
    """FAILED: "if IoT Greengrass can't access an artifact for the component version, then
    errors contains the artifact's URI as a key" (botocore CloudComponentStatus.errors)."""
    client, stubber = greengrass
    stubber.add_response("create_component_version", created("INITIATED"))
    stubber.add_response(
        "describe_component",
        described("FAILED", "Failed to process artifacts", {URI: "Access Denied"}),
        {"arn": ARN},
    )
    with pytest.raises(component_logic.ComponentVersionError) as caught:
        component_logic.on_event(event("Create", props()), client, Sleeps())
    message = str(caught.value)
    assert "FAILED" in message and "Failed to process artifacts" in message, message
    assert f"{URI}: Access Denied" in message, message


def test_a_version_never_deployable_times_out_inside_the_lambda_timeout(greengrass) -> None:
    client, stubber = greengrass
    stubber.add_response("create_component_version", created("REQUESTED"))
    for _ in range(component_logic.POLLS):
        stubber.add_response("describe_component", described("INITIATED"), {"arn": ARN})
    sleeps = Sleeps()
    with pytest.raises(component_logic.ComponentVersionError, match="still INITIATED"):
        component_logic.on_event(event("Create", props()), client, sleeps)
    assert sum(sleeps) < 120  # the handler Lambda's timeout (construct.py: two minutes)


def test_other_refusals_name_the_version(greengrass) -> None:
    client, stubber = greengrass
    stubber.add_client_error(
        "create_component_version",
        service_error_code="AccessDeniedException",
        service_message="not authorized to perform s3:GetObject",
        http_status_code=403,
    )
    with pytest.raises(component_logic.ComponentVersionError) as caught:
        component_logic.on_event(event("Create", props()), client, Sleeps())
    assert f"{NAME}@{VERSION}" in str(caught.value) and "lacks a permission" in str(caught.value)


def test_delete_leaves_the_version_and_is_safe_twice(greengrass) -> None:
    """No call at all: the stubber has no responses queued, so any call would fail."""
    client, _ = greengrass
    request = event("Delete", props(), PhysicalResourceId=ARN)
    for _ in range(2):
        assert component_logic.on_event(request, client, Sleeps()) == {"PhysicalResourceId": ARN}


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        ({"InlineRecipe": ""}, "must be a JSON recipe"),
        ({"InlineRecipe": "{not json"}, "not valid JSON"),
        ({"InlineRecipe": "[1]"}, "must be a JSON object"),
        ({"InlineRecipe": json.dumps({"ComponentName": NAME})}, "has no ComponentVersion"),
        ({**props(), "Tags": {"a": "b"}}, "unknown properties Tags"),
    ],
)
def test_bad_properties_are_refused_by_name(greengrass, properties, expected) -> None:
    client, _ = greengrass
    with pytest.raises(component_logic.ComponentVersionError, match=expected):
        component_logic.on_event(event("Create", properties), client, Sleeps())


def test_an_unknown_request_type_is_refused(greengrass) -> None:
    client, _ = greengrass
    with pytest.raises(component_logic.ComponentVersionError, match="RequestType"):
        component_logic.on_event(event("Replace", props()), client, Sleeps())


def test_the_handler_dispatches_on_the_resource_type(monkeypatch) -> None:
    seen: list[str] = []
    monkeypatch.setattr(deployment_handler, "greengrass_client", lambda: "client")
    monkeypatch.setattr(
        deployment_handler.component_logic,
        "on_event",
        lambda event, greengrass, sleep: seen.append("component") or {"c": greengrass},
    )
    monkeypatch.setattr(
        deployment_handler.deployment_logic,
        "on_event",
        lambda event, greengrass, stack_status: seen.append("deployment") or {"d": greengrass},
    )
    assert deployment_handler.handler(event("Create", props()), None) == {"c": "client"}
    deployment = {**event("Create", props()), "ResourceType": "Custom::GreengrassDeployment"}
    assert deployment_handler.handler(deployment, None) == {"d": "client"}
    assert seen == ["component", "deployment"]


def test_a_version_this_handler_made_from_the_recipe_is_adopted_by_its_tag(greengrass) -> None:
    """The read-back recipe is not compared when the version carries this recipe's digest
    tag: whatever the service normalises in a stored recipe cannot block a retry."""
    client, stubber = greengrass
    conflict(stubber)
    tag = create_params()["tags"]
    rewritten = {"recipeOutputFormat": "JSON", "recipe": b'{"componentname": "normalised"}'}
    stubber.add_response(
        "get_component", {**rewritten, "tags": tag}, {"arn": ARN, "recipeOutputFormat": "JSON"}
    )
    stubber.add_response("describe_component", described("DEPLOYABLE"), {"arn": ARN})
    assert (
        component_logic.on_event(event("Update", props()), client, Sleeps())["PhysicalResourceId"]
        == ARN
    )


def test_a_version_tagged_with_another_recipe_is_refused(greengrass) -> None:
    client, stubber = greengrass
    conflict(stubber)
    stubber.add_response(
        "get_component",
        stored(recipe(), tags={component_logic.RECIPE_TAG: "0" * 64}),
        {"arn": ARN, "recipeOutputFormat": "JSON"},
    )
    with pytest.raises(component_logic.ComponentVersionError, match="made from another recipe"):
        component_logic.on_event(event("Create", props()), client, Sleeps())


def test_keys_are_compared_exactly_and_service_added_keys_are_allowed(greengrass) -> None:
    """Configuration keys and Setenv names are case-sensitive: ``topk`` is not ``TopK`` (found
    by the hostile review: keys were lower-cased at every depth). Keys only the stored recipe
    has (defaults the service fills in) do not block adoption."""
    ours = recipe(ComponentConfiguration={"DefaultConfiguration": {"TopK": 5}})
    theirs = recipe(ComponentConfiguration={"DefaultConfiguration": {"topk": 5}})
    assert component_logic.missing(ours, theirs) == [
        "ComponentConfiguration.DefaultConfiguration.TopK"
    ]
    filled = copy.deepcopy(ours)
    filled["Manifests"][0]["Artifacts"][0]["Permission"]["Execute"] = "NONE"
    assert component_logic.missing(ours, filled) == []


def test_an_adopted_version_that_failed_says_to_delete_it(greengrass) -> None:
    """A content-addressed version that is FAILED stays FAILED: every retry would adopt it
    again. The error says so and names the command (found by the hostile review)."""
    client, stubber = greengrass
    conflict(stubber)
    stubber.add_response(
        "get_component", stored(recipe()), {"arn": ARN, "recipeOutputFormat": "JSON"}
    )
    stubber.add_response(
        "describe_component", described("FAILED", "artifact unreadable"), {"arn": ARN}
    )
    with pytest.raises(component_logic.ComponentVersionError) as caught:
        component_logic.on_event(event("Update", props()), client, Sleeps())
    message = str(caught.value)
    assert "is FAILED: artifact unreadable" in message, message
    assert f"cannot recover: delete it (aws greengrassv2 delete-component --arn {ARN})" in message
