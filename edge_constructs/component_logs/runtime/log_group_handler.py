"""Lambda entry point for Custom::GreengrassLogGroup (CDK Provider framework):
``log_group_handler.on_event``. Clients are created per call, never at import time."""

from __future__ import annotations

from typing import Any

import log_group_logic
from lambda_entry import client, log_request


def logs_client() -> Any:
    return client("logs")


def on_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    log_request(event)
    return log_group_logic.on_event(event, logs_client)
