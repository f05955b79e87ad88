"""Fixtures for the custom-resource handler tests.

Each runtime folder is deployed as its own Lambda asset root, where modules import each other
as top-level modules (``import training_logic``); put those folders on sys.path the same way.
"""

from __future__ import annotations

import http.server
import json
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest
from moto import mock_aws

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_DIRS = [
    ROOT / "edge_constructs" / name / "runtime"
    for name in (
        "training_job",
        "compilation_job",
        "model_packaging",
        "demo_device",
        "greengrass",
        "component_logs",
        "core_device",
        "fleet_metrics",
        "drift_baseline",
    )
]
# PythonFunction copies runtime_common's modules into every runtime folder's asset.
RUNTIME_DIRS.append(ROOT / "edge_constructs" / "runtime_common")
for runtime_dir in RUNTIME_DIRS:
    if str(runtime_dir) not in sys.path:
        sys.path.insert(0, str(runtime_dir))

REGION = "eu-west-1"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and a region, so nothing can reach a real account."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@pytest.fixture
def aws(aws_env: None) -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture(scope="session")
def boto_session() -> boto3.Session:
    """One session for all tests: it loads each service model once (client creation is slow)."""
    return boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )


@pytest.fixture
def sagemaker(aws: None, boto_session: boto3.Session) -> Any:
    return boto_session.client("sagemaker")


@pytest.fixture
def s3(aws: None, boto_session: boto3.Session) -> Any:
    return boto_session.client("s3")


EXPIRED_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message>"
    b"<X-Amz-Expires>86399</X-Amz-Expires><Expires>2026-01-02T00:00:00Z</Expires>"
    b"<ServerTime>2026-01-09T00:00:00Z</ServerTime><RequestId>0A1B2C3D4E5F6A7B</RequestId>"
    b"<HostId>aG9zdGlk</HostId></Error>"
)


class WaitHandle:
    """A real HTTP server on 127.0.0.1 standing in for a presigned wait-condition handle URL."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.error_body = b""
        handle = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                handle.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers.items()),
                        "body": self.rfile.read(length),
                    }
                )
                body = handle.error_body if handle.status >= 300 else b""
                self.send_response(handle.status)
                if body:
                    self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        port = self.server.server_address[1]
        # Shaped like a presigned URL: the query string is the secret that must not be logged.
        self.url = f"http://127.0.0.1:{port}/cfn-wait/handle?X-Amz-Signature=s3cr3tsig"

    def expire(self) -> None:
        """Answer every PUT as S3 answers a presigned URL past its X-Amz-Expires.

        S3 refuses an expired presigned request with 403 and an ``AccessDenied`` error whose
        Message is "Request has expired" (the XML error body below, as S3 sends it; the expired
        presigned PUT answering 403 is also what ceph/s3-tests
        ``test_object_raw_put_authenticated_expired`` checks against S3).
        """
        self.status = 403
        self.error_body = EXPIRED_BODY

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def wait_handle() -> Iterator[WaitHandle]:
    handle = WaitHandle()
    yield handle
    handle.close()


@pytest.fixture
def expired_handle() -> Iterator[WaitHandle]:
    """A second handle, past its expiry: the handle of a wait condition that ended long ago."""
    handle = WaitHandle()
    handle.expire()
    yield handle
    handle.close()
