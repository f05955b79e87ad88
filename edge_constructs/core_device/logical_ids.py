"""Keep the logical IDs the core-device resources had before they moved into small constructs.

CDK derives a logical ID from the construct path (aws-cdk-lib core/lib/private/uniqueid.ts,
``makeUniqueId``), so a new construct level renames every resource under it, and CloudFormation
replaces a resource whose logical ID changes (thing groups and policies have fixed names: the
replacement would fail on the name). Why this and not new IDs: docs/CORE_DEVICE.md#logical-ids.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from aws_cdk import CfnElement, Stack
from constructs import Construct

# uniqueid.ts: HIDDEN_ID, HIDDEN_FROM_HUMAN_ID, HASH_LEN, MAX_HUMAN_LEN, MAX_ID_LEN.
_HIDDEN = "Default"
_HIDDEN_FROM_HUMAN = "Resource"
_HASH_LEN = 8
_MAX_HUMAN_LEN = 240
_MAX_ID_LEN = 255


def _alphanumeric(component: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", component)


def unique_id(components: Sequence[str]) -> str:
    """CDK's ``makeUniqueId``: the logical ID of a resource at this stack-relative path."""
    parts = [c for c in components if c != _HIDDEN]
    if not parts:
        raise ValueError("a logical ID needs at least one path component")
    if len(parts) == 1 and len(_alphanumeric(parts[0])) <= _MAX_ID_LEN:
        return _alphanumeric(parts[0])
    digest = hashlib.md5("/".join(parts).encode(), usedforsecurity=False).hexdigest()
    human: list[str] = []
    for part in parts:  # removeDupes: "Bucket/Bucket" reads "Bucket"
        if not human or not human[-1].endswith(part):
            human.append(part)
    readable = "".join(_alphanumeric(p) for p in human if p != _HIDDEN_FROM_HUMAN)
    return readable[:_MAX_HUMAN_LEN] + digest[:_HASH_LEN].upper()


def keep_flat_logical_ids(part: Construct) -> None:
    """Give every resource under ``part`` the logical ID it would have without ``part``'s own
    path level: the ID it had when it was created directly in ``part``'s scope.

    Call it once ``part`` holds all its resources (a role's DefaultPolicy included). Two
    resources given the same ID fail the synth (CDK refuses a template section's duplicate
    key), so a clash cannot pass silently."""
    stack = Stack.of(part)
    for child in part.node.find_all():
        if CfnElement.is_cfn_element(child):
            assert isinstance(child, CfnElement)
            scopes = child.node.scopes
            path = [s.node.id for s in scopes[scopes.index(stack) + 1 :] if s is not part]
            child.override_logical_id(unique_id(path))
