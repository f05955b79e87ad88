"""What every custom-resource Lambda entry module shares: AWS clients made per call (never at
import time), with the SDK's standard retry mode, and one log line per request that names the
request, never its properties (the training resource's carry a presigned wait-handle URL)."""

from __future__ import annotations

import logging
from typing import Any, Mapping

import boto3
from botocore.config import Config

LOGGER = logging.getLogger()
LOGGER.setLevel(logging.INFO)

# botocore "standard" retry mode: exponential backoff with jitter on throttling and transient
# errors (botocore retries documentation), up to 8 attempts in all.
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 8})


def client(service: str) -> Any:
    """A boto3 client for ``service``, made now."""
    return boto3.client(service, config=CLIENT_CONFIG)


def log_request(event: Mapping[str, Any]) -> None:
    """RequestType, ResourceType, LogicalResourceId and PhysicalResourceId ("new" on Create)."""
    LOGGER.info(
        "%s %s %s (%s)",
        event.get("RequestType"),
        event.get("ResourceType"),
        event.get("LogicalResourceId"),
        event.get("PhysicalResourceId", "new"),
    )
