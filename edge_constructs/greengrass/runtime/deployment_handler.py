"""Lambda entry point for the stack's Greengrass custom resources (CDK Provider framework
on_event): Custom::GreengrassDeployment and Custom::GreengrassComponentVersion, by the
request's ResourceType."""

from __future__ import annotations

import time
from typing import Any

import component_logic
import deployment_logic
from cr_names import GreengrassComponentVersion
from lambda_entry import client, log_request


def greengrass_client() -> Any:
    return client("greengrassv2")


def stack_status(stack_id: str) -> Any:
    """This stack's StackStatus, read when a Delete needs it (CloudFormation DescribeStacks)."""

    def read() -> str:
        stacks = client("cloudformation").describe_stacks(StackName=stack_id)["Stacks"]
        return str(stacks[0]["StackStatus"])

    return read


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    log_request(event)
    if event.get("ResourceType") == GreengrassComponentVersion.TYPE:
        return component_logic.on_event(event, greengrass_client(), time.sleep)
    return deployment_logic.on_event(
        event, greengrass_client(), stack_status(str(event.get("StackId", "")))
    )
