"""The EventBridge-triggered wait-condition signaller, against a real HTTP server."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import training_signal
import wait_condition_signal

from .conftest import WaitHandle

NAME = "vgg16-train-0123456789ab"
ARTIFACT = f"s3://artifacts-bucket/training/{NAME}/output/model.tar.gz"


def detail(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "TrainingJobName": NAME,
        "TrainingJobArn": f"arn:aws:sagemaker:eu-west-1:123456789012:training-job/{NAME}",
        "TrainingJobStatus": status,
        "SecondaryStatus": status,
        "ModelArtifacts": {"S3ModelArtifacts": ARTIFACT},
        **extra,
    }


@pytest.mark.parametrize(
    ("status", "extra", "expected_status", "reason_part", "data"),
    [
        ("Completed", {}, "SUCCESS", "completed", ARTIFACT),
        ("Failed", {"FailureReason": "ClientError: OOM"}, "FAILURE", "ClientError: OOM", ""),
        ("Stopped", {}, "FAILURE", "stopped", ""),
    ],
)
def test_terminal_detail_maps_to_a_signal_body(
    status: str, extra: dict[str, str], expected_status: str, reason_part: str, data: str
) -> None:
    body = training_signal.body_from_detail(detail(status, **extra))
    assert body is not None
    assert body["Status"] == expected_status
    assert reason_part in body["Reason"]
    assert body["UniqueId"] == NAME
    assert body["Data"] == data


@pytest.mark.parametrize("status", ["InProgress", "Stopping"])
def test_running_detail_gives_no_signal(status: str, wait_handle: WaitHandle) -> None:
    assert training_signal.body_from_detail(detail(status)) is None
    event = {"handleUrl": wait_handle.url, "detail": detail(status)}
    assert training_signal.handler(event, None) is None
    assert wait_handle.requests == []


def test_detail_without_name_or_status_is_an_error() -> None:
    with pytest.raises(ValueError, match="TrainingJobName"):
        training_signal.body_from_detail({"TrainingJobStatus": "Completed"})


def test_handler_puts_the_signal_with_an_empty_content_type(wait_handle: WaitHandle) -> None:
    event = {"handleUrl": wait_handle.url, "detail": detail("Completed")}
    sent = training_signal.handler(event, None)

    [request] = wait_handle.requests
    assert request["method"] == "PUT"
    assert request["path"] == "/cfn-wait/handle?X-Amz-Signature=s3cr3tsig"
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert "content-type" in headers
    assert headers["content-type"] == ""
    assert wait_handle.bodies() == [
        {
            "Status": "SUCCESS",
            "Reason": f"Training job {NAME} completed",
            "UniqueId": NAME,
            "Data": ARTIFACT,
        }
    ]
    assert sent == wait_handle.bodies()[0]


def test_failed_job_puts_failure_with_the_reason(wait_handle: WaitHandle) -> None:
    reason = "AlgorithmError: ExecuteUserScriptError: No pth file found"
    training_signal.handler(
        {"handleUrl": wait_handle.url, "detail": detail("Failed", FailureReason=reason)}, None
    )
    [body] = wait_handle.bodies()
    assert body["Status"] == "FAILURE"
    assert body["Reason"] == f"Training job {NAME} failed: {reason}"


@pytest.mark.parametrize("status_code", [403, 500])
def test_non_2xx_raises_so_lambda_retries(wait_handle: WaitHandle, status_code: int) -> None:
    wait_handle.status = status_code
    with pytest.raises(wait_condition_signal.SignalError, match=f"HTTP {status_code}") as info:
        training_signal.handler({"handleUrl": wait_handle.url, "detail": detail("Completed")}, None)
    assert "s3cr3tsig" not in str(info.value)
    assert len(wait_handle.requests) == 1


def test_unreachable_handle_raises() -> None:
    body = wait_condition_signal.signal_body(NAME, "Completed", None, ARTIFACT)
    assert body is not None
    with pytest.raises(wait_condition_signal.SignalError, match="Could not send"):
        # Port 9 on loopback: nothing listens there.
        wait_condition_signal.put_signal("http://127.0.0.1:9/x?sig=1", body, timeout=2)


def test_non_http_url_is_refused() -> None:
    body = wait_condition_signal.signal_body(NAME, "Completed", None, ARTIFACT)
    assert body is not None
    with pytest.raises(wait_condition_signal.SignalError, match="scheme 'file'"):
        wait_condition_signal.put_signal("file:///etc/passwd", body)


# ---------------------------------------------------------------- through the SQS queue
def sqs_event(*bodies: Any, receive_count: int = 1) -> dict[str, Any]:
    """An SQS event source mapping's event: one record per message (Lambda Developer Guide,
    "Using Lambda with Amazon SQS", example SQS message event)."""
    return {
        "Records": [
            {
                "messageId": f"msg-{i}",
                "receiptHandle": f"receipt-{i}",
                "body": body if isinstance(body, str) else json.dumps(body),
                "attributes": {"ApproximateReceiveCount": str(receive_count)},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:signals",
                "awsRegion": "eu-west-1",
            }
            for i, body in enumerate(bodies)
        ]
    }


def test_a_queued_end_event_signals_and_is_consumed(wait_handle: WaitHandle) -> None:
    answer = training_signal.handler(
        sqs_event({"handleUrl": wait_handle.url, "detail": detail("Completed")}), None
    )
    assert answer == {"batchItemFailures": []}
    assert [b["Status"] for b in wait_handle.bodies()] == ["SUCCESS"]


def test_a_transient_failure_is_left_on_the_queue_and_the_redelivery_signals(
    wait_handle: WaitHandle,
) -> None:
    """Issue 17 part 2, item 7: a failed PUT was retried only twice (Lambda asynchronous
    invocation). Through SQS, a record reported in batchItemFailures stays on the queue and is
    received again after the visibility timeout, until maxReceiveCount moves it to the DLQ
    (Lambda Developer Guide, "Using Lambda with Amazon SQS": partial batch responses, and
    "Handling errors for an SQS event source")."""
    message = {"handleUrl": wait_handle.url, "detail": detail("Completed")}
    wait_handle.status = 503
    first = training_signal.handler(sqs_event(message), None)
    assert first == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}

    wait_handle.status = 200
    second = training_signal.handler(sqs_event(message, receive_count=2), None)
    assert second == {"batchItemFailures": []}
    assert [b["Status"] for b in wait_handle.bodies()] == ["SUCCESS", "SUCCESS"]


def test_only_the_failed_record_of_a_batch_is_retried(
    wait_handle: WaitHandle, expired_handle: WaitHandle
) -> None:
    wait_handle.status = 500
    answer = training_signal.handler(
        sqs_event(
            {"handleUrl": expired_handle.url, "detail": detail("Completed")},
            {"handleUrl": wait_handle.url, "detail": detail("Failed", FailureReason="OOM")},
        ),
        None,
    )
    assert answer == {"batchItemFailures": [{"itemIdentifier": "msg-1"}]}


def test_an_expired_handle_is_consumed_not_retried(
    expired_handle: WaitHandle, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing waits on an expired handle (see wait_condition_signal.HandleExpired): retrying
    until the DLQ would only raise a false alarm."""
    answer = training_signal.handler(
        sqs_event({"handleUrl": expired_handle.url, "detail": detail("Completed")}), None
    )
    assert answer == {"batchItemFailures": []}
    assert len(expired_handle.requests) == 1
    assert "expired" in caplog.text
    assert "s3cr3tsig" not in caplog.text


@pytest.mark.parametrize(
    "body",
    ["not json", {"detail": detail("Completed")}, {"handleUrl": "x", "detail": {}}, ["a list"]],
)
def test_a_malformed_message_is_reported_failed_so_it_reaches_the_dlq(body: Any) -> None:
    """Retrying cannot mend it, but dropping it would hide it: it fails every receive, and
    maxReceiveCount moves it to the dead-letter queue, whose alarm a user sees."""
    answer = training_signal.handler(sqs_event(body), None)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}


def test_failures_never_log_the_handle_url(
    wait_handle: WaitHandle, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wait_handle.status = 500
    training_signal.handler(
        sqs_event({"handleUrl": wait_handle.url, "detail": detail("Completed")}), None
    )
    assert "HTTP 500" in caplog.text
    assert "s3cr3tsig" not in caplog.text
    assert "127.0.0.1" not in caplog.text


def test_a_direct_invocation_from_the_old_rule_target_still_works(
    wait_handle: WaitHandle,
) -> None:
    """Events the previous template's rule (Lambda target) had in flight when the stack was
    updated still arrive in that shape."""
    sent = training_signal.handler(
        {"handleUrl": wait_handle.url, "detail": detail("Stopped")}, None
    )
    assert sent is not None and sent["Status"] == "FAILURE"
    assert [b["Status"] for b in wait_handle.bodies()] == ["FAILURE"]


def test_an_expired_handle_raises_handle_expired_naming_no_secret(
    expired_handle: WaitHandle,
) -> None:
    body = wait_condition_signal.signal_body(NAME, "Completed", None, ARTIFACT)
    assert body is not None
    with pytest.raises(wait_condition_signal.HandleExpired) as info:
        wait_condition_signal.put_signal(expired_handle.url, body)
    assert "HTTP 403 AccessDenied: Request has expired" in str(info.value)
    assert "s3cr3tsig" not in str(info.value) and "127.0.0.1" not in str(info.value)


@pytest.mark.parametrize(
    ("status", "error_body"),
    [
        # Same code, another reason: not expiry.
        (403, b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"),
        # The expiry message with another status is not S3's expiry answer either.
        (400, b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"),
        (403, b""),
    ],
)
def test_only_s3s_expiry_answer_counts_as_expired(
    wait_handle: WaitHandle, status: int, error_body: bytes
) -> None:
    wait_handle.status, wait_handle.error_body = status, error_body
    body = wait_condition_signal.signal_body(NAME, "Completed", None, ARTIFACT)
    assert body is not None
    with pytest.raises(wait_condition_signal.SignalError) as info:
        wait_condition_signal.put_signal(wait_handle.url, body)
    assert not isinstance(info.value, wait_condition_signal.HandleExpired)
