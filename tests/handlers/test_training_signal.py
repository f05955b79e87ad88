"""The EventBridge-triggered wait-condition signaller, against a real HTTP server."""

from __future__ import annotations

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
