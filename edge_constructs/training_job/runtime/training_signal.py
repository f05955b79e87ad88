"""Lambda entry point for the EventBridge rule on "SageMaker Training Job State Change".

The rule's target input is ``{"handleUrl": "<presigned wait-handle URL>", "detail": <$.detail>}``.
A terminal status signals the stack's WaitCondition; any other status does nothing. A failed
PUT raises, so the asynchronous invocation is retried.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Optional

import wait_condition_signal

LOGGER = logging.getLogger()
LOGGER.setLevel(logging.INFO)


def body_from_detail(detail: Mapping[str, Any]) -> Optional[dict[str, str]]:
    """Signal body for a training-job state-change ``detail``; None while the job runs."""
    name = detail.get("TrainingJobName")
    status = detail.get("TrainingJobStatus")
    if not isinstance(name, str) or not name or not isinstance(status, str):
        raise ValueError("Event detail lacks TrainingJobName or TrainingJobStatus")
    artifacts = detail.get("ModelArtifacts") or {}
    return wait_condition_signal.signal_body(
        name,
        status,
        detail.get("FailureReason"),
        artifacts.get("S3ModelArtifacts", "") if isinstance(artifacts, dict) else "",
    )


def handler(event: dict[str, Any], context: Any) -> Optional[dict[str, str]]:
    detail = event.get("detail") or {}
    url = event.get("handleUrl")
    body = body_from_detail(detail)
    if body is None:
        LOGGER.info(
            "Training job %s is %s: not terminal, no signal",
            detail.get("TrainingJobName"),
            detail.get("TrainingJobStatus"),
        )
        return None
    if not isinstance(url, str) or not url:
        raise ValueError("Event lacks handleUrl (check the EventBridge rule's target input)")
    wait_condition_signal.put_signal(url, body)
    return body
