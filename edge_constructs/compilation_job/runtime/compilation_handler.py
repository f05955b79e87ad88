"""Lambda entry points for Custom::CompilationJob (CDK Provider framework):
``compilation_handler.on_event`` and ``compilation_handler.is_complete``."""

from __future__ import annotations

from typing import Any

import compilation_logic
from lambda_entry import LOGGER, client, log_request


def sagemaker_client() -> Any:
    return client("sagemaker")


def on_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    log_request(event)
    return compilation_logic.on_event(event, sagemaker_client())


def is_complete(event: dict[str, Any], context: Any) -> dict[str, Any]:
    LOGGER.info("is_complete:")
    log_request(event)
    return compilation_logic.is_complete(event, sagemaker_client())
