"""Lambda entry point for the Custom::TrainingJob on_event handler (CDK Provider framework)."""

from __future__ import annotations

from typing import Any

import training_logic
from lambda_entry import client, log_request


def sagemaker_client() -> Any:
    return client("sagemaker")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    log_request(event)  # identifiers only: the properties carry the presigned wait-handle URL
    return training_logic.on_event(event, sagemaker_client())
