"""CloudFormation wait-condition handles: presigned URLs that accept signals until they expire.

``Ref`` of an ``AWS::CloudFormation::WaitConditionHandle`` is a presigned URL ("When you
reference the WaitConditionHandle resource by using the Ref function, CloudFormation returns a
presigned URL"; template reference, AWS::CloudFormation::WaitConditionHandle). A presigned URL
works until its expiry and S3 refuses it afterwards with 403 ("Sharing objects with presigned
URLs", S3 User Guide: "If you try to use a presigned URL after it has expired, ... access
denied"). The documentation states no lifetime for a handle's URL: ``HANDLE_LIFETIME_SECONDS``
is this simulator's assumption (one day); the scenarios advance the clock by days, so any
shorter lifetime gives the same result.

``intercept()`` answers the handler code's ``urllib.request.urlopen`` PUTs to these URLs.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import urllib.error
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from typing import Any
from unittest import mock

from device_sim.cloud.env import Env

HANDLE_LIFETIME_SECONDS = 24 * 3600


@dataclass
class Handle:
    url: str
    created: float
    expires: float
    signals: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


class _Response(io.BytesIO):
    status = 200

    def __enter__(self) -> _Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class WaitConditions:
    def __init__(self, env: Env, clock: Any) -> None:
        self.env = env
        self._clock = clock  # a callable: the simulated time, epoch seconds
        self.handles: dict[str, Handle] = {}

    def create_handle(self, stack_id: str, logical_id: str) -> str:
        now = self._clock()
        digest = hashlib.sha256(f"{stack_id}/{logical_id}/{now}".encode()).hexdigest()[:16]
        expires = int(now + HANDLE_LIFETIME_SECONDS)
        url = (
            f"https://cloudformation-waitcondition-{self.env.region}.s3.{self.env.url_suffix}/"
            f"{urllib.parse.quote(stack_id, safe='')}/{digest}/{logical_id}"
            f"?X-Amz-Expires={HANDLE_LIFETIME_SECONDS}&Expires={expires}&Signature=sim"
        )
        self.handles[url] = Handle(url, now, expires)
        return url

    def put(self, url: str, body: bytes) -> int:
        handle = self.handles.get(url)
        if handle is None:
            raise urllib.error.HTTPError(url, 404, "NoSuchKey", Message(), None)
        if self._clock() > handle.expires:
            handle.refused.append("expired")
            # S3's answer to an expired presigned request: 403 with an XML error body whose
            # Code is AccessDenied and Message "Request has expired" (S3 API Reference, "Error
            # responses": the REST error body; the expired-URL message is S3's own).
            body_xml = (
                b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
                b"<Message>Request has expired</Message>"
                + f"<X-Amz-Expires>{HANDLE_LIFETIME_SECONDS}</X-Amz-Expires>".encode()
                + b"</Error>"
            )
            raise urllib.error.HTTPError(url, 403, "Forbidden", Message(), io.BytesIO(body_xml))
        handle.signals.append(json.loads(body))
        return 200

    @contextlib.contextmanager
    def intercept(self) -> Iterator[None]:
        """Route handler code's ``urlopen`` of a wait-condition URL here; refuse any other URL
        (the simulator makes no network call)."""

        def urlopen(request: Any, *args: Any, **kwargs: Any) -> _Response:
            url = request.full_url if hasattr(request, "full_url") else str(request)
            if not url.startswith("https://cloudformation-waitcondition-"):
                raise urllib.error.URLError(f"the simulator makes no network call ({url})")
            self.put(url, request.data or b"")
            return _Response(b"")

        with mock.patch("urllib.request.urlopen", urlopen):
            yield
