"""Errors of the simulated account.

``ServiceError`` is what an AWS API answers when it refuses a request: a botocore
``ClientError`` with the error code the service model lists for the operation, so the project's
handler code, which catches ``ClientError`` and reads ``error.response["Error"]["Code"]``,
sees exactly what boto3 would hand it. Each backend cites the botocore model (``botocore/data/
<service>/<version>/service-2.json``: the operation's ``errors`` list and the error shape's
``documentation``) beside the refusal.
"""

from __future__ import annotations

from botocore.exceptions import ClientError


class AssemblyError(ValueError):
    """The assembly cannot be read or deployed; the message names what and where."""


class ServiceError(ClientError):  # type: ignore[misc]  # botocore ships no types
    """An API refusal: ``code`` is the error shape's name in the service model."""

    def __init__(self, operation: str, code: str, message: str, status: int = 400) -> None:
        super().__init__(
            {
                "Error": {"Code": code, "Message": message},
                "ResponseMetadata": {"HTTPStatusCode": status},
            },
            operation,
        )
        self.code = code
        self.reason = message

    def __str__(self) -> str:
        return f"{self.operation_name}: {self.code}: {self.reason}"
