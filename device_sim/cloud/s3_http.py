"""The simulated account's credentials and S3 over HTTP, for what a component sends itself.

Two loopback servers, started for a boot whose network is up (an offline boot's components
cannot reach them, as a device without network cannot reach S3):

* :class:`TokenExchangeEndpoint`, the nucleus's token-exchange service
  (aws-greengrass-nucleus ``tes/HttpServerImpl.java``: ``/2016-11-01/credentialprovider/``;
  ``CredentialRequestHandler.java``: the component's token in ``Authorization``, 403 without a
  valid one, else JSON ``AccessKeyId``, ``SecretAccessKey``, ``Token``, ``Expiration``). It
  runs only when a deployed component depends on ``aws.greengrass.TokenExchangeService``
  (``tes/README.md``: "by default disabled"); the nucleus then sets
  ``AWS_CONTAINER_CREDENTIALS_FULL_URI`` for every service (``TokenExchangeService.java``,
  ``setEnvVariablesForDependencies``). The credentials are the role alias's role, with the
  thing name the nucleus sends (``iot/IotCloudHelper.java``, ``x-amzn-iot-thingname``), so
  the role's policies may use ``${credentials-iot:ThingName}`` (AWS IoT developer guide,
  "Authorizing direct calls to AWS services": "Passing the thing name in the request allows
  you to use thingName ... as policy variables in the role's access policy").
* :class:`S3Endpoint`, S3's REST ``PutObject`` (S3 API Reference), path style, the way S3
  refuses: ``InvalidAccessKeyId`` (403) for keys it never issued, ``ExpiredToken`` (400) after
  ``Expiration``, ``SignatureDoesNotMatch`` (403) unless the SigV4 signature recomputed here
  with botocore's own signer matches, ``XAmzContentSHA256Mismatch`` (400) when the body is not
  the one signed, ``AccessDenied`` (403) unless the role's policies allow ``s3:PutObject`` on
  the object ARN and the bucket policy does not deny it, ``NoSuchBucket`` (404). Throttling is
  injected with :attr:`S3Endpoint.refuse_next` (``SlowDown``, 503). Objects land in the
  simulated account's S3 and under ``<root>/cloud/s3/<bucket>/<key>``, where a user can look.

The component uses HTTPS against real S3; this loopback endpoint stands in for it, so requests
are evaluated with ``aws:SecureTransport`` true (as :mod:`device_sim.download` does).
"""

from __future__ import annotations

import datetime
import hashlib
import http.server
import json
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from device_sim.iam import Policy, Request, evaluate

CREDENTIALS_PATH = "/2016-11-01/credentialprovider/"
THING_NAME_KEY = "credentials-iot:ThingName"


@dataclass
class Session:
    access_key_id: str
    secret: str
    token: str
    expiration: datetime.datetime
    role: str
    thing_name: str
    policies: list[Policy]


@dataclass
class Sessions:
    """Credentials issued by the token-exchange endpoint. ``clock`` is the simulated time."""

    lifetime: datetime.timedelta = datetime.timedelta(hours=1)
    clock: Callable[[], datetime.datetime] = field(
        default=lambda: datetime.datetime.now(datetime.timezone.utc)
    )
    by_key: dict[str, Session] = field(default_factory=dict)

    def issue(self, role: str, thing_name: str, policies: Sequence[Policy]) -> Session:
        session = Session(
            access_key_id="ASIA" + secrets.token_hex(8).upper(),
            secret=secrets.token_urlsafe(30),
            token=secrets.token_urlsafe(60),
            expiration=self.clock() + self.lifetime,
            role=role,
            thing_name=thing_name,
            policies=list(policies),
        )
        self.by_key[session.access_key_id] = session
        return session


class _Server:
    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler]) -> None:
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> str:
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Quiet(http.server.BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return

    def reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class TokenExchangeEndpoint(_Server):
    """The nucleus's credential endpoint for one boot: ``tokens`` are the components' IPC
    tokens (``AWS_CONTAINER_AUTHORIZATION_TOKEN``)."""

    def __init__(
        self,
        sessions: Sessions,
        *,
        tokens: Callable[[], set[str]],
        role: str,
        thing_name: str,
        policies: Sequence[Policy],
    ) -> None:
        super().__init__(_TesHandler)
        self.sessions = sessions
        self.tokens = tokens
        self.role = role
        self.thing_name = thing_name
        self.policies = list(policies)
        self.requests = 0

    @property
    def full_uri(self) -> str:
        """What the nucleus puts in ``AWS_CONTAINER_CREDENTIALS_FULL_URI``."""
        return self.url.replace("127.0.0.1", "localhost") + CREDENTIALS_PATH


class _TesHandler(_Quiet):
    def do_GET(self) -> None:
        owner: TokenExchangeEndpoint = self.server.owner  # type: ignore[attr-defined]
        owner.requests += 1
        if urlsplit(self.path).path != CREDENTIALS_PATH:
            self.reply(404, b"", "text/plain")
            return
        token = self.headers.get("Authorization", "")
        if not token or token not in owner.tokens():
            # CredentialRequestHandler: UnauthenticatedException -> 403
            self.reply(403, b"Request is not authenticated", "text/plain")
            return
        session = owner.sessions.issue(owner.role, owner.thing_name, owner.policies)
        body = {
            "AccessKeyId": session.access_key_id,
            "SecretAccessKey": session.secret,
            "Token": session.token,
            "Expiration": session.expiration.isoformat().replace("+00:00", "Z"),
        }
        self.reply(200, json.dumps(body).encode(), "application/json")


@dataclass
class Put:
    """One PutObject the endpoint answered (for reports and tests)."""

    key: str
    bucket: str
    status: int
    code: str
    thing_name: str = ""


class S3Endpoint(_Server):
    """``PutObject`` into the simulated account's S3 (see the module's docstring)."""

    def __init__(
        self,
        *,
        sessions: Sessions,
        region: str,
        partition: str,
        objects: dict[str, dict[str, bytes]],
        bucket_policies: dict[str, Policy],
        folder: Path | None,
    ) -> None:
        super().__init__(_S3Handler)
        self.sessions = sessions
        self.region = region
        self.partition = partition
        self.objects = objects
        self.bucket_policies = bucket_policies
        self.folder = folder
        self.puts: list[Put] = []
        #: S3 error codes to answer the next requests with (``SlowDown``: 503 throttling).
        self.refuse_next: list[str] = []
        self._lock = threading.Lock()

    def authorize(self, session: Session, bucket: str, key: str) -> str | None:
        """Why S3 refuses ``s3:PutObject`` on ``bucket/key`` for ``session``, or None."""
        arn = f"arn:{self.partition}:s3:::{bucket}/{key}"
        context: dict[str, str | bool] = {
            "aws:SecureTransport": True,
            THING_NAME_KEY: session.thing_name,
        }
        request = Request("s3:PutObject", arn, context)
        decision = evaluate(session.policies, request)
        if not decision.allowed:
            return f"{session.role}: {decision.reason}"
        policy = self.bucket_policies.get(bucket)
        if policy is not None:
            raw = policy.document.get("Statement", [])
            statements = raw if isinstance(raw, list) else [raw]
            denies = [s for s in statements if s.get("Effect") == "Deny"]
            deny = evaluate([Policy(policy.name, {"Statement": denies})], request)
            if deny.reason.startswith("explicitly denied"):
                return f"bucket policy: {deny.reason}"
        return None

    def store(self, bucket: str, key: str, body: bytes) -> None:
        with self._lock:
            self.objects.setdefault(bucket, {})[key] = body
            if self.folder is not None:
                # S3 keeps the key as it is; the copy on disk never leaves the folder (a key
                # with ".." levels would): such an object stays in the account only.
                target = (self.folder / bucket / key).resolve()
                if not target.is_relative_to(self.folder.resolve()):
                    return
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(body)


_ERRORS = {
    "InvalidAccessKeyId": (
        403,
        "The AWS Access Key Id you provided does not exist in our records.",
    ),
    "ExpiredToken": (400, "The provided token has expired."),
    "SignatureDoesNotMatch": (
        403,
        "The request signature we calculated does not match the signature you provided.",
    ),
    "XAmzContentSHA256Mismatch": (
        400,
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
    ),
    "AccessDenied": (403, "Access Denied"),
    "NoSuchBucket": (404, "The specified bucket does not exist"),
    "SlowDown": (503, "Please reduce your request rate."),
    "MissingSecurityHeader": (400, "Your request was missing a required header"),
}


def _error_document(code: str, message: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    ).encode()


class _S3Handler(_Quiet):
    def do_PUT(self) -> None:
        owner: S3Endpoint = self.server.owner  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        raw_path = urlsplit(self.path).path
        bucket, _, quoted_key = raw_path.lstrip("/").partition("/")
        key = unquote(quoted_key)
        code, detail, session = self._check(owner, raw_path, body, bucket)
        if code is None and session is not None:
            owner.store(bucket, key, body)
            owner.puts.append(Put(key, bucket, 200, "", session.thing_name))
            self.send_response(200)
            self.send_header("ETag", '"' + hashlib.md5(body).hexdigest() + '"')  # noqa: S324
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        assert code is not None
        status, message = _ERRORS[code]
        thing = session.thing_name if session is not None else ""
        owner.puts.append(Put(key, bucket, status, code, thing))
        self.reply(status, _error_document(code, f"{message} {detail}".strip()), "application/xml")

    def _check(
        self, owner: S3Endpoint, raw_path: str, body: bytes, bucket: str
    ) -> tuple[str | None, str, Session | None]:
        if owner.refuse_next:
            return owner.refuse_next.pop(0), "(injected)", None
        auth = self.headers.get("Authorization", "")
        fields = _authorization_fields(auth)
        if fields is None:
            return "AccessDenied", "(no SigV4 Authorization header)", None
        access_key, signed_headers, signature = fields
        session = owner.sessions.by_key.get(access_key)
        if session is None:
            return "InvalidAccessKeyId", "", None
        if self.headers.get("x-amz-security-token") != session.token:
            return "InvalidAccessKeyId", "(session token missing or wrong)", session
        if owner.sessions.clock() >= session.expiration:
            return "ExpiredToken", "", session
        if not _signature_matches(self, owner, session, raw_path, body, signed_headers, signature):
            return "SignatureDoesNotMatch", "", session
        if self.headers.get("x-amz-content-sha256") != hashlib.sha256(body).hexdigest():
            return "XAmzContentSHA256Mismatch", "", session
        if bucket not in owner.objects:
            return "NoSuchBucket", bucket, session
        key = unquote(raw_path.lstrip("/").partition("/")[2])
        why = owner.authorize(session, bucket, key)
        if why is not None:
            return "AccessDenied", f"(s3:PutObject on {bucket}/{key}: {why})", session
        return None, "", session


def _authorization_fields(header: str) -> tuple[str, list[str], str] | None:
    """(access key id, signed header names, signature) of a SigV4 ``Authorization`` header."""
    if not header.startswith("AWS4-HMAC-SHA256 "):
        return None
    parts = {}
    for item in header[len("AWS4-HMAC-SHA256 ") :].split(","):
        name, _, value = item.strip().partition("=")
        parts[name] = value
    try:
        access_key = parts["Credential"].split("/")[0]
        return access_key, parts["SignedHeaders"].split(";"), parts["Signature"]
    except KeyError:
        return None


def _signature_matches(
    handler: http.server.BaseHTTPRequestHandler,
    owner: S3Endpoint,
    session: Session,
    raw_path: str,
    body: bytes,
    signed_headers: list[str],
    signature: str,
) -> bool:
    """Recompute the SigV4 signature with botocore's ``S3SigV4Auth`` (an implementation
    independent of the awscrt signer the component uses)."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    headers = {name: handler.headers.get(name, "") for name in signed_headers}
    amz_date = handler.headers.get("x-amz-date", "")
    request = AWSRequest(
        method="PUT", url=f"http://{headers.get('host', '')}{raw_path}", data=body, headers=headers
    )
    request.context["timestamp"] = amz_date
    signer = S3SigV4Auth(
        Credentials(session.access_key_id, session.secret, session.token), "s3", owner.region
    )
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    return secrets.compare_digest(expected, signature)
