"""Lambda entry point for Custom::IotPolicyRelease (CDK Provider framework):
``policy_release_handler.on_event``. Clients are created per call, never at import time."""

from __future__ import annotations

import logging
from typing import Any

import boto3
import policy_release_logic
from botocore.config import Config

LOGGER = logging.getLogger()
LOGGER.setLevel(logging.INFO)

CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 8})


def iot_client() -> Any:
    return boto3.client("iot", config=CLIENT_CONFIG)


def on_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    LOGGER.info(
        "on_event %s %s (%s)",
        event.get("RequestType"),
        event.get("LogicalResourceId"),
        event.get("PhysicalResourceId", "new"),
    )
    return policy_release_logic.on_event(event, iot_client)
