"""SageMaker calls shared by the training and compilation handlers."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

from botocore.exceptions import ClientError


def is_not_found(error: ClientError) -> bool:
    """Describe* answers a missing job with ValidationException, not a 404-style code."""
    err = error.response.get("Error", {})
    code = err.get("Code", "")
    message = err.get("Message", "").lower()
    if code in ("ResourceNotFound", "ResourceNotFoundException"):
        return True
    return code == "ValidationException" and ("not found" in message or "could not find" in message)


def describe_or_none(describe: Callable[[], Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """``describe()``'s answer, or None when the job does not exist."""
    try:
        return describe()
    except ClientError as error:
        if is_not_found(error):
            return None
        raise
