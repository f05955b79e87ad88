"""Lambda entry point for Custom::ModelPackage and Custom::PublishedArtifact (one function,
dispatching on ResourceType; CDK Provider framework on_event)."""

from __future__ import annotations

import logging
from typing import Any

import boto3
import packaging_logic
from botocore.config import Config

LOGGER = logging.getLogger()
LOGGER.setLevel(logging.INFO)

CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 8})


def s3_client() -> Any:
    return boto3.client("s3", config=CLIENT_CONFIG)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    LOGGER.info(
        "%s %s %s (%s)",
        event.get("RequestType"),
        event.get("ResourceType"),
        event.get("LogicalResourceId"),
        event.get("PhysicalResourceId", "new"),
    )
    return packaging_logic.on_event(event, s3_client())
