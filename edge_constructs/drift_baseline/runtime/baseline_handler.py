"""Lambda entry point for Custom::DriftBaseline (CDK Provider framework on_event)."""

from __future__ import annotations

from typing import Any

import baseline_logic
from lambda_entry import client, log_request


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    log_request(event)
    return baseline_logic.on_event(event, client("s3"))
