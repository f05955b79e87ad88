"""Lambda entry point for Custom::DemoDeviceCleanup (CDK Provider framework):
``cleanup_handler.on_event``. Clients are created per call, never at import time."""

from __future__ import annotations

from typing import Any

import cleanup_logic
from lambda_entry import client, log_request


def iot_client() -> Any:
    return client("iot")


def greengrass_client() -> Any:
    return client("greengrassv2")


def on_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    log_request(event)
    return cleanup_logic.on_event(event, iot_client, greengrass_client)
