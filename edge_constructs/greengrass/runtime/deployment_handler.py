"""Lambda entry point for the stack's Greengrass custom resources (CDK Provider framework
on_event): Custom::GreengrassDeployment and Custom::GreengrassComponentVersion, by the
request's ResourceType."""

from __future__ import annotations

import logging
import time
from typing import Any

import boto3
import component_logic
import deployment_logic
from botocore.config import Config
from cr_names import GreengrassComponentVersion

LOGGER = logging.getLogger()
LOGGER.setLevel(logging.INFO)

CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 8})


def greengrass_client() -> Any:
    return boto3.client("greengrassv2", config=CLIENT_CONFIG)


def stack_status(stack_id: str) -> Any:
    """This stack's StackStatus, read when a Delete needs it (CloudFormation DescribeStacks)."""

    def read() -> str:
        client = boto3.client("cloudformation", config=CLIENT_CONFIG)
        stacks = client.describe_stacks(StackName=stack_id)["Stacks"]
        return str(stacks[0]["StackStatus"])

    return read


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    LOGGER.info(
        "%s %s %s (%s)",
        event.get("RequestType"),
        event.get("ResourceType"),
        event.get("LogicalResourceId"),
        event.get("PhysicalResourceId", "new"),
    )
    if event.get("ResourceType") == GreengrassComponentVersion.TYPE:
        return component_logic.on_event(event, greengrass_client(), time.sleep)
    return deployment_logic.on_event(
        event, greengrass_client(), stack_status(str(event.get("StackId", "")))
    )
