"""Lambda entry point for Custom::GreengrassDeployment (CDK Provider framework on_event)."""

from __future__ import annotations

import logging
from typing import Any

import boto3
import deployment_logic
from botocore.config import Config

LOGGER = logging.getLogger()
LOGGER.setLevel(logging.INFO)

CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 8})


def greengrass_client() -> Any:
    return boto3.client("greengrassv2", config=CLIENT_CONFIG)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    LOGGER.info(
        "%s %s %s (%s)",
        event.get("RequestType"),
        event.get("ResourceType"),
        event.get("LogicalResourceId"),
        event.get("PhysicalResourceId", "new"),
    )
    return deployment_logic.on_event(event, greengrass_client())
