"""Signal an AWS::CloudFormation::WaitConditionHandle: the body and the HTTP PUT.

One module for both paths that signal a training job's end: the create path of the custom
resource (the job already ended, e.g. on a retried create) and the EventBridge-triggered
signaller (the job ends later). The handle URL is a presigned secret that this code never
logs. It is not secret from everyone, though: it is the handle's physical ID (CloudFormation
DescribeStackResources shows it), and the CDK Provider framework that forwards the custom
resource's requests logs each request with its ResourceProperties (aws-cdk-lib
custom-resources/lib/provider-framework/runtime/framework.js: only ResponseURL is masked) in the
training resource's provider log group. Whoever may read those may signal the wait condition:
grant them as you grant stack updates.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Optional

LOGGER = logging.getLogger(__name__)

TERMINAL_STATUSES = frozenset({"Completed", "Failed", "Stopped"})
PUT_TIMEOUT_SECONDS = 20.0
# CloudFormation shows the Reason in the stack events; keep it readable.
MAX_REASON_CHARS = 2000
# An S3 error body is a few hundred bytes; read no more than this of it.
MAX_ERROR_BODY_BYTES = 4096
_ERROR_CODE_RE = re.compile(r"<Code>([^<]{1,100})</Code>")
_ERROR_MESSAGE_RE = re.compile(r"<Message>([^<]{1,300})</Message>")


class SignalError(RuntimeError):
    """The wait-condition handle did not accept the signal."""


class HandleExpired(SignalError):
    """The handle's presigned URL is past its expiry: no wait condition can still wait on it.

    A handle is a presigned S3 URL with a fixed expiry (``X-Amz-Date`` + ``X-Amz-Expires`` in
    the URL; the handle URLs CloudFormation returns carry ``X-Amz-Expires=86399``). A presigned
    URL is usable "up to the expiration date and time" (Amazon S3 User Guide, "Download and
    upload objects with presigned URLs"); past it S3 answers 403 ``AccessDenied`` "Request has
    expired". A WaitCondition waits at most 43200 s (CloudFormation Template Reference,
    AWS::CloudFormation::WaitCondition, ``Timeout``), so by then the condition that used the
    handle has completed or timed out. A rollback Update back to an old job meets this.
    """


def _s3_error(error: urllib.error.HTTPError) -> tuple[str, str]:
    """(Code, Message) of an S3 XML error body; empty strings when there is none."""
    try:
        raw = error.read(MAX_ERROR_BODY_BYTES)
    except OSError:
        return "", ""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else ""
    code = _ERROR_CODE_RE.search(text)
    message = _ERROR_MESSAGE_RE.search(text)
    return (code.group(1) if code else ""), (message.group(1) if message else "")


def is_expiry(status: int, code: str, message: str) -> bool:
    """Whether S3 refused a presigned request because the URL expired (and for nothing else)."""
    return status == 403 and code == "AccessDenied" and message == "Request has expired"


def signal_body(
    job_name: str,
    status: str,
    failure_reason: Optional[str],
    model_artifact_uri: Optional[str],
) -> Optional[dict[str, str]]:
    """The wait-condition signal for a training job in ``status``; None while it still runs.

    Completed -> SUCCESS with the model artifact URI as Data; Failed -> FAILURE carrying
    SageMaker's FailureReason; Stopped -> FAILURE (nobody stops a job the stack waits for
    on purpose, so the stack must not go on as if a model existed).
    """
    if status not in TERMINAL_STATUSES:
        return None
    if status == "Completed":
        return {
            "Status": "SUCCESS",
            "Reason": f"Training job {job_name} completed",
            "UniqueId": job_name,
            "Data": model_artifact_uri or "",
        }
    if status == "Failed":
        reason = f"Training job {job_name} failed: {failure_reason or 'no FailureReason given'}"
    else:
        reason = f"Training job {job_name} stopped"
        if failure_reason:
            reason += f": {failure_reason}"
    return {
        "Status": "FAILURE",
        "Reason": reason[:MAX_REASON_CHARS],
        "UniqueId": job_name,
        "Data": "",
    }


def put_signal(url: str, body: dict[str, str], *, timeout: float = PUT_TIMEOUT_SECONDS) -> int:
    """PUT ``body`` as JSON to the presigned handle ``url``; return the HTTP status.

    The Content-Type header is sent empty: the URL is presigned without one, and S3 rejects
    a request whose signed headers differ. Raises HandleExpired when S3 says the URL expired,
    SignalError on any other non-2xx answer or network error.
    """
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("https", "http"):
        raise SignalError(f"Wait handle URL must be http(s), got scheme {scheme!r}")
    data = json.dumps(body).encode("utf-8")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url, data=data, method="PUT", headers={"Content-Type": ""}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status = int(response.status)
    except urllib.error.HTTPError as error:
        # The error body may echo the request: keep only S3's error Code and Message from it.
        code, message = _s3_error(error)
        refused = (
            f"Wait handle rejected the {body['Status']} signal for {body['UniqueId']}: "
            f"HTTP {error.code}"
        )
        if code:
            refused += f" {code}: {message}"
        if is_expiry(error.code, code, message):
            raise HandleExpired(refused) from None
        raise SignalError(refused) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise SignalError(
            f"Could not send the {body['Status']} signal for {body['UniqueId']}: {reason}"
        ) from None
    if not 200 <= status < 300:
        raise SignalError(
            f"Wait handle answered HTTP {status} to the {body['Status']} signal "
            f"for {body['UniqueId']}"
        )
    LOGGER.info("Sent %s signal for %s (HTTP %d)", body["Status"], body["UniqueId"], status)
    return status


def signal_if_terminal(
    url: str,
    job_name: str,
    status: str,
    failure_reason: Optional[str],
    model_artifact_uri: Optional[str],
) -> Optional[dict[str, Any]]:
    """Send the signal for a terminal job; do nothing for a running one. Returns the body sent."""
    body = signal_body(job_name, status, failure_reason, model_artifact_uri)
    if body is None:
        LOGGER.info("Training job %s is %s: no signal yet", job_name, status)
        return None
    put_signal(url, body)
    return body
