"""Lambda entry point for Custom::IotPolicyRelease (CDK Provider framework):
``policy_release_handler.on_event``. Clients are created per call, never at import time."""

from __future__ import annotations

from typing import Any

import policy_release_logic
from lambda_entry import client, log_request


def iot_client() -> Any:
    return client("iot")


def on_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    log_request(event)
    return policy_release_logic.on_event(event, iot_client)
