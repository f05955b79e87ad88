"""S3 ``PutObject`` with the token-exchange service's credentials, signed with awscrt's SigV4.

No new dependency on the device: ``awscrt`` is already there (awsiotsdk's), and its signer is the
one the AWS SDKs for C, C++ and the IoT device SDKs use. The HTTP request is the standard
library's (``urllib``), which honours the proxy variables the nucleus sets for components
(aws-greengrass-nucleus ``lifecyclemanager/ShellRunner.java``: ``HTTP_PROXY``, ``HTTPS_PROXY``,
``NO_PROXY``).

Credentials (aws-greengrass-nucleus ``tes/``): the nucleus's token-exchange service listens on
``http://localhost:<port>/2016-11-01/credentialprovider/`` and puts that URL in
``AWS_CONTAINER_CREDENTIALS_FULL_URI`` for every service (``TokenExchangeService.java``,
``setEnvVariablesForDependencies``); each component gets its own token in
``AWS_CONTAINER_AUTHORIZATION_TOKEN`` (``ShellRunner.java``, ``TES_AUTH_HEADER``), sent as the
``Authorization`` header (``CredentialRequestHandler.java``, ``AUTH_HEADER``, ``doAuth``). The
answer is JSON with ``AccessKeyId``, ``SecretAccessKey``, ``Token`` and ``Expiration``
(the same file's ``*_DOWNSTREAM_STR``). The service runs only when a deployed component depends
on ``aws.greengrass.TokenExchangeService`` (its README: "by default disabled"), so the inference
recipe declares that dependency.

Request (S3 API Reference, ``PutObject``; botocore ``s3/2006-03-01/service-2.json``): ``PUT``
to ``https://<bucket>.s3.<region>.amazonaws.com/<key>`` (virtual-hosted style, S3 User Guide
"Virtual hosting of buckets"), the payload's SHA-256 in ``x-amz-content-sha256`` and signed, the
session token in ``x-amz-security-token``. S3 signs the path as is: no double URI encoding, no
path normalization (awscrt ``AwsSigningConfig``: "All services except S3 use double encoding").
``AWS_ENDPOINT_URL_S3`` (the SDKs' service-specific endpoint variable, AWS SDKs and Tools
Reference Guide, "Service-specific endpoints") replaces the endpoint, path style; the device
simulator points it at its own S3.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import os
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Dict, Optional, Tuple

CREDENTIALS_URI_ENV = "AWS_CONTAINER_CREDENTIALS_FULL_URI"
CREDENTIALS_TOKEN_ENV = "AWS_CONTAINER_AUTHORIZATION_TOKEN"  # noqa: S105 (a variable name)
ENDPOINT_ENV = "AWS_ENDPOINT_URL_S3"
REGION_ENVS = ("AWS_REGION", "AWS_DEFAULT_REGION")  # the nucleus sets both (DeviceConfiguration)
#: Credentials are fetched again this long before they expire (the role alias gives 1 hour).
REFRESH_MARGIN = datetime.timedelta(minutes=5)
TIMEOUT_SECONDS = 30.0


class UploadError(RuntimeError):
    """A request that failed; the message names the call and S3's answer."""


class NoCredentials(UploadError):
    """The token-exchange service cannot be asked (not deployed, not reachable)."""


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


class TesCredentials:
    """Credentials from the token-exchange service, cached until :data:`REFRESH_MARGIN` before
    they expire. Thread-safe."""

    def __init__(
        self,
        environ: Optional[Dict[str, str]] = None,
        *,
        clock: Callable[[], datetime.datetime] = _utc_now,
    ) -> None:
        env = os.environ if environ is None else environ
        self.uri = env.get(CREDENTIALS_URI_ENV, "")
        self.token = env.get(CREDENTIALS_TOKEN_ENV, "")
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: Optional[Tuple[str, str, str, datetime.datetime]] = None

    def get(self) -> Tuple[str, str, str]:
        """(access key id, secret, session token)."""
        with self._lock:
            now = self._clock()
            if self._cached is not None and self._cached[3] - REFRESH_MARGIN > now:
                return self._cached[:3]
            if not self.uri:
                raise NoCredentials(
                    f"{CREDENTIALS_URI_ENV} is not set: the component needs a dependency on "
                    "aws.greengrass.TokenExchangeService for AWS credentials"
                )
            _http_only(self.uri, CREDENTIALS_URI_ENV)
            # S310: the scheme is checked just above (http or https only).
            request = urllib.request.Request(  # noqa: S310
                self.uri, headers={"Authorization": self.token}
            )
            try:
                with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
                    body = json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as err:
                raise NoCredentials(
                    f"token-exchange service answered {err.code}: {_text(err)}"
                ) from err
            except (OSError, ValueError) as err:
                raise NoCredentials(f"token-exchange service unreachable: {err}") from err
            try:
                expires = _parse_time(str(body["Expiration"]))
                cached = (
                    str(body["AccessKeyId"]),
                    str(body["SecretAccessKey"]),
                    str(body["Token"]),
                    expires,
                )
            except (KeyError, TypeError, ValueError) as err:
                raise NoCredentials(f"token-exchange service answer lacks {err}") from err
            self._cached = cached
            return cached[:3]

    def forget(self) -> None:
        """Drop the cache (S3 refused them as expired)."""
        with self._lock:
            self._cached = None


def _http_only(url: str, source: str) -> None:
    """Refuse any scheme but http and https (``urllib`` would also open ``file:``)."""
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise NoCredentials(f"{source}: {url!r} is not an http(s) URL")


def _parse_time(text: str) -> datetime.datetime:
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment


def _text(err: urllib.error.HTTPError) -> str:
    try:
        return err.read().decode("utf-8", "replace")[:300]
    except OSError:
        return str(err.reason)


def s3_error_code(body: str) -> str:
    """The ``<Code>`` of an S3 error document (S3 API Reference, "Error responses")."""
    start, end = body.find("<Code>"), body.find("</Code>")
    return body[start + 6 : end] if 0 <= start < end else ""


class S3Uploader:
    """``PutObject`` into one bucket with :class:`TesCredentials`."""

    def __init__(
        self,
        bucket: str,
        *,
        credentials: Optional[TesCredentials] = None,
        region: Optional[str] = None,
        endpoint: Optional[str] = None,
        environ: Optional[Dict[str, str]] = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.bucket = bucket
        self.credentials = credentials or TesCredentials(dict(env))
        self.region = region or next((env[n] for n in REGION_ENVS if env.get(n)), "")
        self.endpoint = (endpoint or env.get(ENDPOINT_ENV) or "").rstrip("/")
        if not self.region:
            raise UploadError(f"no region: none of {', '.join(REGION_ENVS)} is set")

    def url(self, key: str) -> str:
        path = urllib.parse.quote(key, safe="/~")
        if self.endpoint:
            return f"{self.endpoint}/{self.bucket}/{path}"
        return f"https://{self.bucket}.s3.{self.region}.amazonaws.com/{path}"

    def put(self, key: str, body: bytes, content_type: str) -> None:
        try:
            self._put(key, body, content_type)
        except UploadError as err:
            if "ExpiredToken" not in str(err):
                raise
            self.credentials.forget()  # refused as expired: fetch new ones, try once more
            self._put(key, body, content_type)

    def _put(self, key: str, body: bytes, content_type: str) -> None:
        url = self.url(key)
        headers = self.signed_headers("PUT", url, body, content_type)
        _http_only(url, ENDPOINT_ENV)
        # S310: the scheme is checked just above (http or https only).
        request = urllib.request.Request(  # noqa: S310
            url, data=body, method="PUT", headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
                response.read()
        except urllib.error.HTTPError as err:
            text = _text(err)
            code = s3_error_code(text) or str(err.reason)
            raise UploadError(f"PutObject {key}: {err.code} {code}") from err
        except OSError as err:
            raise UploadError(f"PutObject {key}: {err}") from err

    def signed_headers(
        self,
        method: str,
        url: str,
        body: bytes,
        content_type: str,
        *,
        now: Optional[datetime.datetime] = None,
    ) -> Dict[str, str]:
        """The request's headers with SigV4's ``Authorization``, ``x-amz-date``,
        ``x-amz-content-sha256`` and ``x-amz-security-token``."""
        from awscrt import auth, http

        key_id, secret, token = self.credentials.get()
        parsed = urllib.parse.urlsplit(url)
        digest = hashlib.sha256(body).hexdigest()
        headers = http.HttpHeaders(
            [
                ("host", parsed.netloc),
                ("content-type", content_type),
                ("content-length", str(len(body))),
            ]
        )
        request = http.HttpRequest(method, parsed.path, headers, io.BytesIO(body))
        config = auth.AwsSigningConfig(
            algorithm=auth.AwsSigningAlgorithm.V4,
            signature_type=auth.AwsSignatureType.HTTP_REQUEST_HEADERS,
            credentials_provider=auth.AwsCredentialsProvider.new_static(key_id, secret, token),
            region=self.region,
            service="s3",
            date=now,
            use_double_uri_encode=False,
            should_normalize_uri_path=False,
            signed_body_value=digest,
            signed_body_header_type=auth.AwsSignedBodyHeaderType.X_AMZ_CONTENT_SHA_256,
        )
        signed: Any = auth.aws_sign_request(request, config).result(TIMEOUT_SECONDS)
        return {name: value for name, value in signed.headers}
