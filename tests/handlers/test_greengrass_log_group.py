"""Custom::GreengrassLogGroup against moto's CloudWatch Logs (real API shapes and state).

The lifecycle it must survive: the stack creates the group; devices write to it; the stack is
deleted while the devices keep running, and their log manager recreates the group without
retention (aws-greengrass-logmanager ``CloudWatchLogsUploader.createNewLogGroup``); the stack
is created again. moto refuses a second CreateLogGroup of a name with
ResourceAlreadyExistsException, as CloudWatch Logs does (botocore ``logs`` CreateLogGroup
errors), so the re-create below fails if the handler does not adopt.
"""

from __future__ import annotations

from typing import Any

import log_group_handler
import log_group_logic
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from cr_properties import PropertyError

NAME = "/aws/greengrass/UserComponent/eu-west-1/com.example.edgeai.dev.DlrInference"
PROPS = {"LogGroupName": NAME, "RetentionInDays": "14", "ServiceToken": "arn:token"}


@pytest.fixture
def logs(aws: None, boto_session: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    client = boto_session.client("logs")
    monkeypatch.setattr(log_group_handler, "logs_client", lambda: client)
    return client


def event(request: str, props: dict[str, str] = PROPS, **more: Any) -> dict[str, Any]:
    return {"RequestType": request, "ResourceProperties": dict(props), **more}


def group(logs: Any, name: str = NAME) -> dict[str, Any] | None:
    found = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    return next((g for g in found if g["logGroupName"] == name), None)


def log_manager_writes(logs: Any, name: str = NAME) -> None:
    """What the log manager does when its group is missing: create it (no retention)."""
    try:
        logs.create_log_group(logGroupName=name)
    except ClientError as error:
        assert error.response["Error"]["Code"] == "ResourceAlreadyExistsException"
    logs.create_log_stream(logGroupName=name, logStreamName="thing/2026/12/03")


def test_create_makes_the_group_with_retention(logs: Any) -> None:
    response = log_group_handler.on_event(event("Create"), None)
    assert response["PhysicalResourceId"] == NAME
    assert response["Data"] == {"LogGroupName": NAME, "Adopted": "false"}
    assert group(logs)["retentionInDays"] == 14


def test_delete_leaves_the_group_and_a_recreated_stack_adopts_it(logs: Any) -> None:
    log_group_handler.on_event(event("Create"), None)
    log_manager_writes(logs)
    deleted = log_group_handler.on_event(event("Delete", PhysicalResourceId=NAME), None)
    assert deleted == {"PhysicalResourceId": NAME}
    assert group(logs) is not None  # kept, so its events still expire
    # The devices kept running; the stack is created again.
    created = log_group_handler.on_event(event("Create"), None)
    assert created["Data"]["Adopted"] == "true"
    assert group(logs)["retentionInDays"] == 14
    streams = logs.describe_log_streams(logGroupName=NAME)["logStreams"]
    assert [s["logStreamName"] for s in streams] == ["thing/2026/12/03"]


def test_a_group_the_log_manager_made_first_gets_the_retention(logs: Any) -> None:
    """A device deployed before the stack's create (or after a delete) made the group."""
    log_manager_writes(logs)
    assert "retentionInDays" not in group(logs)
    response = log_group_handler.on_event(event("Create"), None)
    assert response["Data"]["Adopted"] == "true"
    assert group(logs)["retentionInDays"] == 14


def test_update_changes_the_retention_and_a_new_name_is_a_new_group(logs: Any) -> None:
    log_group_handler.on_event(event("Create"), None)
    longer = {**PROPS, "RetentionInDays": "365"}
    response = log_group_handler.on_event(
        event("Update", longer, PhysicalResourceId=NAME, OldResourceProperties=PROPS), None
    )
    assert response["PhysicalResourceId"] == NAME
    assert group(logs)["retentionInDays"] == 365
    renamed = {**PROPS, "LogGroupName": NAME + "X"}
    response = log_group_handler.on_event(
        event("Update", renamed, PhysicalResourceId=NAME, OldResourceProperties=PROPS), None
    )
    assert response["PhysicalResourceId"] == NAME + "X"  # CloudFormation then deletes NAME
    assert group(logs, NAME + "X")["retentionInDays"] == 14


def test_a_rolled_back_create_leaves_a_group_the_retry_adopts(logs: Any) -> None:
    """Rollback of the create sends Delete; the retry's Create must not fail."""
    log_group_handler.on_event(event("Create"), None)
    log_group_handler.on_event(event("Delete", PhysicalResourceId=NAME), None)
    assert log_group_handler.on_event(event("Create"), None)["Data"]["Adopted"] == "true"


def test_delete_twice_and_delete_of_a_failed_create_call_nothing(aws_env: None) -> None:
    def no_client() -> Any:
        raise AssertionError("Delete must not call CloudWatch Logs")

    for physical in (NAME, "", "some-failed-create-id"):
        response = log_group_logic.on_event(event("Delete", PhysicalResourceId=physical), no_client)
        assert response == {"PhysicalResourceId": physical}


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"RetentionInDays": "14"}, "LogGroupName is required"),
        ({"LogGroupName": "/aws/lambda/someone-elses", "RetentionInDays": "14"}, "under"),
        ({"LogGroupName": NAME + " bad", "RetentionInDays": "14"}, "LogGroupName"),
        ({"LogGroupName": NAME, "RetentionInDays": "13"}, "RetentionInDays must be one of"),
        ({"LogGroupName": NAME, "RetentionInDays": "two weeks"}, "must be an integer"),
        ({"LogGroupName": NAME}, "RetentionInDays is required"),
    ],
)
def test_bad_properties_are_refused_by_name(logs: Any, props: dict[str, str], message: str) -> None:
    with pytest.raises(PropertyError, match=message):
        log_group_handler.on_event(event("Create", props), None)
    assert logs.describe_log_groups()["logGroups"] == []


def test_a_concurrent_create_by_the_log_manager_is_retried(boto_session: Any) -> None:
    """CreateLogGroup's OperationAbortedException ("Multiple concurrent requests to update the
    same resource were in conflict", botocore logs) is retried; other errors are not."""
    client = boto_session.client("logs")
    sleeps: list[float] = []
    with Stubber(client) as stub:
        stub.add_client_error("create_log_group", "OperationAbortedException")
        stub.add_client_error("create_log_group", "ResourceAlreadyExistsException")
        stub.add_response("put_retention_policy", {}, {"logGroupName": NAME, "retentionInDays": 14})
        response = log_group_logic.on_event(event("Create"), lambda: client, sleeps.append)
        stub.assert_no_pending_responses()
    assert response["Data"]["Adopted"] == "true"
    assert len(sleeps) == 1
    with Stubber(client) as stub:
        stub.add_client_error("create_log_group", "AccessDeniedException")
        with pytest.raises(ClientError, match="AccessDenied"):
            log_group_logic.on_event(event("Create"), lambda: client, sleeps.append)
