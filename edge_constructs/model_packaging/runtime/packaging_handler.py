"""Lambda entry point for Custom::ModelPackage and Custom::PublishedArtifact (one function,
dispatching on ResourceType; CDK Provider framework on_event)."""

from __future__ import annotations

from typing import Any

import packaging_logic
from lambda_entry import client, log_request


def s3_client() -> Any:
    return client("s3")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    log_request(event)
    return packaging_logic.on_event(event, s3_client())
