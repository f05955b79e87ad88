"""Lambda entry points for Custom::CompilationJob (CDK Provider framework):
``compilation_handler.on_event`` and ``compilation_handler.is_complete``."""

from __future__ import annotations

import logging
from typing import Any

import boto3
import compilation_logic
from botocore.config import Config

LOGGER = logging.getLogger()
LOGGER.setLevel(logging.INFO)

CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 8})


def sagemaker_client() -> Any:
    return boto3.client("sagemaker", config=CLIENT_CONFIG)


def _log(kind: str, event: dict[str, Any]) -> None:
    LOGGER.info(
        "%s %s %s (%s)",
        kind,
        event.get("RequestType"),
        event.get("LogicalResourceId"),
        event.get("PhysicalResourceId", "new"),
    )


def on_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _log("on_event", event)
    return compilation_logic.on_event(event, sagemaker_client())


def is_complete(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _log("is_complete", event)
    return compilation_logic.is_complete(event, sagemaker_client())
