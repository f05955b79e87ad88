"""Custom::IotPolicyRelease logic: on Delete, detach the devices stack's IoT policies from every
target (the certificates the Greengrass installer attached them to) and delete them, waiting,
within a bound, until IoT lets them go. Create and Update change nothing.

Why: ``AWS::IoT::Policy``'s delete handler does not detach (its registry schema, as cfn-lint
ships it, lists iot:DeletePolicy, iot:GetPolicy, iot:ListPolicyVersions, iot:DeletePolicyVersion
and kms:Decrypt for delete: no iot:DetachPolicy, no iot:ListTargetsForPolicy), and DeletePolicy
refuses a policy that is attached: "A policy cannot be deleted if it has non-default versions or
it is attached to any certificate" (DeleteConflictException). Every device the installer
provisions holds both policies (``--thing-policy-name`` and GreengrassTESCertificatePolicy<alias>,
nucleus ``easysetup/DeviceProvisioningHelper.java``), so a stack with devices could not be
deleted. And "it can take up to five minutes after a policy is detached before it's ready to be
deleted" (botocore ``iot/2015-05-28/service-2.json``, DetachPolicy and DeletePolicy).

Delete, for each policy in ``Policies`` (a JSON object, key -> policy name):

1. ``ListTargetsForPolicy`` (every page) and ``DetachPolicy`` from each target;
2. ``DeletePolicyVersion`` of each non-default version (``ListPolicyVersions``);
3. ``DeletePolicy``, retried on DeleteConflictException every ``POLL_SECONDS`` until
   ``WAIT_SECONDS`` have passed since the first detach (five minutes, documented, plus a
   margin); a target attached meanwhile is detached again. Past the bound it fails, naming the
   policies still held: retrying the stack delete runs it again.

ResourceNotFoundException at any step means the policy is already gone: Delete is safe to run
twice. The policies' own ``DeletionPolicy`` is ``RetainExceptOnCreate`` (see the construct), so
CloudFormation does not try to delete them again on stack delete.

What this means for running devices: deleting the devices stack disconnects every device it
provisioned (its certificate no longer allows ``iot:Connect``); they could not get AWS
credentials anyway once the stack's role alias and token-exchange role are deleted. Renaming the
stack's policies (a new ``prefix``) does not reach this: the resource's physical ID does not
change with the names, the old policies are kept (``UpdateReplacePolicy: Retain``) and stay
attached, and the devices keep running until re-provisioned.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from botocore.exceptions import ClientError
from cr_properties import PropertyError, string

LOGGER = logging.getLogger(__name__)

# IoT policy names: [\w+=,.@-]+, 1-128 characters (botocore iot PolicyName).
POLICY_NAME_RE = re.compile(r"^[\w+=,.@-]{1,128}$")
NOT_FOUND = "ResourceNotFoundException"
ATTACHED = "DeleteConflictException"
WAIT_SECONDS = 420.0  # "up to five minutes", plus a margin; the handler's timeout is longer
POLL_SECONDS = 15.0
PAGE_SIZE = 250

Sleep = Callable[[float], None]
Clock = Callable[[], float]


@dataclass(frozen=True)
class ReleaseProps:
    policies: dict[str, str]  # key -> policy name


def parse_props(props: Mapping[str, Any]) -> ReleaseProps:
    raw = string(props, "Policies")
    try:
        policies = json.loads(raw)
    except json.JSONDecodeError as error:
        raise PropertyError(f"Property Policies must be a JSON object: {error}") from None
    if not isinstance(policies, dict) or not policies:
        raise PropertyError("Property Policies must be a non-empty JSON object of policy names")
    for key, name in policies.items():
        if not isinstance(name, str) or not POLICY_NAME_RE.match(name):
            raise PropertyError(
                f"Property Policies: {key} must be an IoT policy name ([\\w+=,.@-], 1-128 "
                f"characters), got {name!r}"
            )
    return ReleaseProps(policies={str(k): str(v) for k, v in policies.items()})


def physical_id(event: Mapping[str, Any]) -> str:
    """One per stack, whatever the policy names: a rename is an Update, never a Delete."""
    return f"iot-policy-release:{event.get('LogicalResourceId', 'PolicyRelease')}"


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def targets(iot: Any, policy: str) -> list[str]:
    """Every target of ``policy`` (all pages); [] if the policy does not exist."""
    found: list[str] = []
    marker: str | None = None
    while True:
        kwargs: dict[str, Any] = {"policyName": policy, "pageSize": PAGE_SIZE}
        if marker:
            kwargs["marker"] = marker
        try:
            page = iot.list_targets_for_policy(**kwargs)
        except ClientError as error:
            if _code(error) == NOT_FOUND:
                return []
            raise
        found.extend(page.get("targets", []))
        marker = page.get("nextMarker")
        if not marker:
            return found


def detach_all(iot: Any, policy: str) -> int:
    """Detach ``policy`` from every target; how many were detached."""
    detached = 0
    for target in targets(iot, policy):
        try:
            iot.detach_policy(policyName=policy, target=target)
            detached += 1
            LOGGER.info("detached %s from %s", policy, target)
        except ClientError as error:
            if _code(error) != NOT_FOUND:
                raise
    return detached


def delete_versions(iot: Any, policy: str) -> None:
    try:
        versions = iot.list_policy_versions(policyName=policy)["policyVersions"]
    except ClientError as error:
        if _code(error) == NOT_FOUND:
            return
        raise
    for version in versions:
        if not version.get("isDefaultVersion"):
            try:
                iot.delete_policy_version(policyName=policy, policyVersionId=version["versionId"])
            except ClientError as error:
                if _code(error) != NOT_FOUND:
                    raise


def try_delete(iot: Any, policy: str) -> bool:
    """True once the policy is gone; False while IoT still holds it as attached."""
    try:
        iot.delete_policy(policyName=policy)
    except ClientError as error:
        if _code(error) == NOT_FOUND:
            return True
        if _code(error) == ATTACHED:
            return False
        raise
    LOGGER.info("deleted %s", policy)
    return True


def release(
    iot: Any,
    policies: list[str],
    *,
    sleep: Sleep | None = None,
    clock: Clock | None = None,
    wait_seconds: float | None = None,
) -> None:
    """Detach and delete every policy in ``policies`` (see the module docstring). ``sleep``,
    ``clock`` and ``wait_seconds`` default to ``time.sleep``, ``time.monotonic`` and
    ``WAIT_SECONDS``, read at call time."""
    sleep = sleep or time.sleep
    clock = clock or time.monotonic
    wait_seconds = WAIT_SECONDS if wait_seconds is None else wait_seconds
    deadline = clock() + wait_seconds
    pending = list(policies)
    while True:
        for policy in pending:
            detach_all(iot, policy)
            delete_versions(iot, policy)
        pending = [policy for policy in pending if not try_delete(iot, policy)]
        if not pending:
            return
        if clock() >= deadline:
            raise RuntimeError(
                f"IoT still refuses to delete {', '.join(pending)} (DeleteConflictException) "
                f"{wait_seconds:.0f} s after detaching them from every target; a detach can "
                "take up to five minutes to take effect. Retry the stack delete."
            )
        LOGGER.info("still attached, retrying in %.0f s: %s", POLL_SECONDS, pending)
        sleep(POLL_SECONDS)


def on_event(
    event: Mapping[str, Any],
    iot_client: Callable[[], Any],
    sleep: Sleep | None = None,
    clock: Clock | None = None,
) -> dict[str, Any]:
    request = event["RequestType"]
    props = parse_props(event["ResourceProperties"])
    if request in ("Create", "Update"):
        return {"PhysicalResourceId": physical_id(event)}
    if request != "Delete":
        raise ValueError(f"unknown RequestType {request!r}")
    release(iot_client(), sorted(set(props.policies.values())), sleep=sleep, clock=clock)
    return {"PhysicalResourceId": str(event.get("PhysicalResourceId") or physical_id(event))}
