"""Lambda entry point for Custom::GreengrassLogGroup (CDK Provider framework):
``log_group_handler.on_event``. Clients are created per call, never at import time."""

from __future__ import annotations

import logging
from typing import Any

import boto3
import log_group_logic
from botocore.config import Config

LOGGER = logging.getLogger()
LOGGER.setLevel(logging.INFO)

CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 8})


def logs_client() -> Any:
    return boto3.client("logs", config=CLIENT_CONFIG)


def on_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    LOGGER.info(
        "on_event %s %s (%s)",
        event.get("RequestType"),
        event.get("LogicalResourceId"),
        event.get("PhysicalResourceId", "new"),
    )
    return log_group_logic.on_event(event, logs_client)
