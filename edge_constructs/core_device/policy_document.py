"""An AWS IoT policy document built one statement at a time, as ``iam.PolicyDocument`` is with
``add_statements`` (and ``s3.BucketPolicy.document``): the construct adds statements, the
document checks each one and renders them in the order they were added."""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any, Literal

# IAM User Guide, "IAM JSON policy elements: Version": without it, policy variables such as
# ${iot:Connection.Thing.ThingName} are literal text.
POLICY_VERSION = "2012-10-17"
# AWS IoT policies "follow the same conventions as IAM policies" and each statement holds Effect,
# Action and Resource (AWS IoT Core developer guide, "AWS IoT Core policies"); a Sid is ASCII
# letters and digits, unique within the policy (IAM User Guide, "IAM JSON policy elements: Sid").
_SID = re.compile(r"[A-Za-z0-9]+")


class IotPolicyDocument:
    """Statements of an ``AWS::IoT::Policy`` document.

    A statement with one action or one resource renders it as a string, with more as a list,
    as hand-written policies do (so a document built here equals the JSON it replaced)."""

    def __init__(self) -> None:
        self._statements: list[dict[str, Any]] = []

    def add_statement(
        self,
        *,
        actions: Sequence[str],
        resources: Sequence[str],
        sid: str | None = None,
        effect: Literal["Allow", "Deny"] = "Allow",
    ) -> None:
        """Append a statement. Refuses a statement without actions or resources, an action
        without a service prefix, a malformed Sid, and a Sid already used in this document."""
        where = f"statement {sid}" if sid else f"statement {len(self._statements) + 1}"
        if isinstance(actions, str) or isinstance(resources, str):
            raise TypeError(f"{where}: actions and resources are sequences of strings")
        if not actions:
            raise ValueError(f"{where}: no actions")
        if not resources:
            raise ValueError(f"{where}: no resources")
        for action in actions:
            if ":" not in action:
                raise ValueError(f"{where}: action {action!r} has no service prefix (iot:...)")
        if effect not in ("Allow", "Deny"):
            raise ValueError(f"{where}: effect must be Allow or Deny, not {effect!r}")
        statement: dict[str, Any] = {}
        if sid is not None:
            if not _SID.fullmatch(sid):
                raise ValueError(f"Sid {sid!r}: only ASCII letters and digits are allowed")
            if any(s.get("Sid") == sid for s in self._statements):
                raise ValueError(f"Sid {sid!r} is already used in this policy")
            statement["Sid"] = sid
        statement["Effect"] = effect
        statement["Action"] = actions[0] if len(actions) == 1 else list(actions)
        statement["Resource"] = resources[0] if len(resources) == 1 else list(resources)
        self._statements.append(statement)

    @property
    def statement_count(self) -> int:
        return len(self._statements)

    def render(self) -> dict[str, Any]:
        """The policy document, statements in the order they were added."""
        if not self._statements:
            raise ValueError("an IoT policy needs at least one statement")
        return {
            "Version": POLICY_VERSION,
            "Statement": copy.deepcopy(self._statements),
        }
