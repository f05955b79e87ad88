"""Lambda entry point for the Custom::TrainingJob on_event handler (CDK Provider framework)."""

from __future__ import annotations

import logging
from typing import Any

import boto3
import training_logic
from botocore.config import Config

LOGGER = logging.getLogger()
LOGGER.setLevel(logging.INFO)

CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 8})


def sagemaker_client() -> Any:
    return boto3.client("sagemaker", config=CLIENT_CONFIG)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # Log identifiers only: the properties carry the presigned wait-handle URL.
    LOGGER.info(
        "%s %s (%s)",
        event.get("RequestType"),
        event.get("LogicalResourceId"),
        event.get("PhysicalResourceId", "new"),
    )
    return training_logic.on_event(event, sagemaker_client())
