"""Lambda entry point that signals the training WaitCondition when the job ends.

Path: EventBridge rule on "SageMaker Training Job State Change" (terminal statuses, this job's
name) -> SQS queue -> this function (event source mapping, partial batch responses). The rule's
target input, hence each message body, is ``{"handleUrl": "<presigned wait-handle URL>",
"detail": <$.detail>}``. A terminal status signals SUCCESS or FAILURE; any other does nothing.

Why a queue: invoked asynchronously, Lambda retries a failed invocation only twice (Lambda
Developer Guide, "Error handling for asynchronous invocation"), and an EventBridge retry policy
covers delivery to the target, not the target's own failure (EventBridge User Guide, "How
EventBridge retries delivering events"); a signal lost after that leaves the stack waiting
until the WaitCondition's Timeout, hours later. From a queue, a record this function reports in
``batchItemFailures`` stays on the queue, is received again once the visibility timeout passes,
and moves to the dead-letter queue after ``maxReceiveCount`` receives (Lambda Developer Guide,
"Handling errors for an SQS event source in Lambda", "Implementing partial batch responses";
SQS Developer Guide, "Using dead-letter queues").

Outcome of each record:

* signalled, or the job is not terminal: consumed;
* the handle has expired (:class:`wait_condition_signal.HandleExpired`): consumed with a
  warning; nothing can still wait on it, and retrying would only end in a false alarm;
* any other failure (HTTP error, network, a malformed message): reported failed, so it is
  retried. A failure that persists (a permanent one) ends in the dead-letter queue, where an
  alarm a user sees fires. The FAILURE signal cannot be sent instead: it would go to the same
  handle that refuses. The WaitCondition then fails at its Timeout.

The handle URL is a presigned secret: this code never logs it (errors name the job, not the
URL); see wait_condition_signal for where else it can be read.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Mapping, Optional

import wait_condition_signal

LOGGER = logging.getLogger()
LOGGER.setLevel(logging.INFO)


class MessageError(ValueError):
    """A message that is not ``{"handleUrl": str, "detail": {...}}``."""


def body_from_detail(detail: Mapping[str, Any]) -> Optional[dict[str, str]]:
    """Signal body for a training-job state-change ``detail``; None while the job runs."""
    name = detail.get("TrainingJobName")
    status = detail.get("TrainingJobStatus")
    if not isinstance(name, str) or not name or not isinstance(status, str):
        raise MessageError("Event detail lacks TrainingJobName or TrainingJobStatus")
    artifacts = detail.get("ModelArtifacts") or {}
    return wait_condition_signal.signal_body(
        name,
        status,
        detail.get("FailureReason"),
        artifacts.get("S3ModelArtifacts", "") if isinstance(artifacts, dict) else "",
    )


def signal(message: Mapping[str, Any]) -> Optional[dict[str, str]]:
    """Send the signal one message asks for; return the body sent (None: nothing to send).

    Raises MessageError for a malformed message, SignalError when the handle refuses; an
    expired handle is logged and returns None.
    """
    detail = message.get("detail")
    if not isinstance(detail, Mapping):
        raise MessageError("Message lacks the event detail")
    body = body_from_detail(detail)
    if body is None:
        LOGGER.info(
            "Training job %s is %s: not terminal, no signal",
            detail.get("TrainingJobName"),
            detail.get("TrainingJobStatus"),
        )
        return None
    url = message.get("handleUrl")
    if not isinstance(url, str) or not url:
        raise MessageError("Message lacks handleUrl (check the EventBridge rule's target input)")
    try:
        wait_condition_signal.put_signal(url, body)
    except wait_condition_signal.HandleExpired as expired:
        LOGGER.warning("%s: the handle has expired, nothing waits on it; dropping", expired)
        return None
    return body


def _record_message(record: Mapping[str, Any]) -> Mapping[str, Any]:
    try:
        message = json.loads(record.get("body") or "")
    except ValueError:
        raise MessageError("Message body is not JSON") from None
    if not isinstance(message, dict):
        raise MessageError("Message body is not a JSON object")
    return message


def handler(event: dict[str, Any], context: Any) -> Optional[dict[str, Any]]:
    if "Records" not in event:
        # The previous template's rule invoked this function directly (asynchronously) with
        # one message; such events may still be in flight after an update.
        return signal(event)
    failures = []
    for record in event["Records"]:
        message_id = record.get("messageId", "")
        try:
            signal(_record_message(record))
        except (MessageError, wait_condition_signal.SignalError) as error:
            # Left on the queue: received again after the visibility timeout, and moved to
            # the dead-letter queue after maxReceiveCount receives.
            LOGGER.error(
                "Message %s (receive %s) not signalled, will be retried: %s",
                message_id,
                record.get("attributes", {}).get("ApproximateReceiveCount", "?"),
                error,
            )
            failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}
