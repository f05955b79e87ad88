"""Custom::IotPolicyRelease against moto's IoT (real API shapes and state) and, for what moto
does not model, a botocore ``Stubber`` (which checks every request against the iot model).

moto refuses DeletePolicy of an attached policy with DeleteConflictException, as IoT does
("A policy cannot be deleted if it has non-default versions or it is attached to any
certificate", botocore ``iot/2015-05-28/service-2.json`` DeletePolicy), so the first test fails
if the handler does not detach. moto's detach takes effect at once; IoT's "can take up to five
minutes after a policy is detached before it's ready to be deleted" (DetachPolicy and
DeletePolicy docs): that delay is Stubber-modelled below.

What a provisioned device holds (nucleus ``easysetup/DeviceProvisioningHelper.java``): a
certificate with the core-device policy and GreengrassTESCertificatePolicy<alias> attached.
"""

from __future__ import annotations

import json
from typing import Any

import policy_release_handler
import policy_release_logic
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from cr_properties import PropertyError

CORE = "edge-ai-dev-GreengrassCoreDevicePolicy"
TES = "GreengrassTESCertificatePolicyedge-ai-dev-GreengrassTokenExchangeRoleAlias"
OTHER = "edge-ai-prod-GreengrassCoreDevicePolicy"  # another stage's: must survive
PROPS = {
    "Policies": json.dumps({"CoreDevice": CORE, "TesCertificate": TES}),
    "ServiceToken": "arn:token",
}
DOCUMENT = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}],
    }
)


@pytest.fixture
def iot(aws: None, boto_session: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    client = boto_session.client("iot")
    monkeypatch.setattr(policy_release_handler, "iot_client", lambda: client)
    # moto's detach takes effect at once: a DeleteConflictException here is never waited out.
    monkeypatch.setattr(policy_release_logic, "WAIT_SECONDS", 0.0)
    for name in (CORE, TES, OTHER):
        client.create_policy(policyName=name, policyDocument=DOCUMENT)
    return client


def provision(iot: Any, *policies: str) -> str:
    cert = iot.create_keys_and_certificate(setAsActive=True)["certificateArn"]
    for policy in policies:
        iot.attach_policy(policyName=policy, target=cert)
    return str(cert)


def event(request: str, **more: Any) -> dict[str, Any]:
    return {
        "RequestType": request,
        "LogicalResourceId": "CoreDevicesPolicyRelease",
        "ResourceProperties": dict(PROPS),
        **more,
    }


def policy_names(iot: Any) -> set[str]:
    return {p["policyName"] for p in iot.list_policies()["policies"]}


def test_without_the_release_an_attached_policy_cannot_be_deleted(iot: Any) -> None:
    """The refusal this resource exists for, as moto (and IoT) give it."""
    provision(iot, CORE, TES)
    with pytest.raises(ClientError, match="DeleteConflictException"):
        iot.delete_policy(policyName=CORE)


def test_delete_detaches_every_device_and_deletes_both_policies(iot: Any) -> None:
    certs = [provision(iot, CORE, TES) for _ in range(3)]
    other = provision(iot, OTHER)
    response = policy_release_handler.on_event(
        event("Delete", PhysicalResourceId="iot-policy-release:CoreDevicesPolicyRelease"), None
    )
    assert response == {"PhysicalResourceId": "iot-policy-release:CoreDevicesPolicyRelease"}
    assert policy_names(iot) == {OTHER}
    for cert in certs:
        assert iot.list_attached_policies(target=cert)["policies"] == []
    assert [p["policyName"] for p in iot.list_attached_policies(target=other)["policies"]] == [
        OTHER
    ]


def test_delete_removes_non_default_versions_first(iot: Any) -> None:
    """DeletePolicy also refuses a policy with non-default versions (same doc string)."""
    iot.create_policy_version(policyName=CORE, policyDocument=DOCUMENT, setAsDefault=True)
    provision(iot, CORE)
    policy_release_handler.on_event(event("Delete", PhysicalResourceId="x"), None)
    assert policy_names(iot) == {OTHER}


def test_delete_is_safe_to_run_twice_and_when_the_policies_are_gone(iot: Any) -> None:
    provision(iot, CORE, TES)
    policy_release_handler.on_event(event("Delete", PhysicalResourceId="x"), None)
    policy_release_handler.on_event(event("Delete", PhysicalResourceId="x"), None)
    assert policy_names(iot) == {OTHER}


def test_create_and_update_touch_nothing_and_keep_one_physical_id(iot: Any) -> None:
    """A rename (new policy names) is an Update with the same physical ID: CloudFormation
    sends no Delete, so the devices keep the policies they hold."""
    cert = provision(iot, CORE, TES)
    created = policy_release_handler.on_event(event("Create"), None)
    renamed = {"Policies": json.dumps({"CoreDevice": "new-core", "TesCertificate": "new-tes"})}
    updated = policy_release_handler.on_event(
        {
            **event("Update", PhysicalResourceId=created["PhysicalResourceId"]),
            "ResourceProperties": renamed,
            "OldResourceProperties": PROPS,
        },
        None,
    )
    assert created["PhysicalResourceId"] == updated["PhysicalResourceId"]
    assert {p["policyName"] for p in iot.list_attached_policies(target=cert)["policies"]} == {
        CORE,
        TES,
    }
    assert policy_names(iot) == {CORE, TES, OTHER}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def stub_round(stub: Stubber, policy: str, target: list[str], deletable: str | None) -> None:
    """One pass over ``policy``: list targets, detach each, list versions, DeletePolicy."""
    stub.add_response(
        "list_targets_for_policy",
        {"targets": target},
        {"policyName": policy, "pageSize": policy_release_logic.PAGE_SIZE},
    )
    for arn in target:
        stub.add_response("detach_policy", {}, {"policyName": policy, "target": arn})
    stub.add_response(
        "list_policy_versions",
        {"policyVersions": [{"versionId": "1", "isDefaultVersion": True}]},
        {"policyName": policy},
    )
    if deletable is None:
        stub.add_response("delete_policy", {}, {"policyName": policy})
    else:
        stub.add_client_error("delete_policy", deletable)


CERT = "arn:aws:iot:eu-west-1:123456789012:cert/" + "a" * 64


def test_a_detach_still_propagating_is_waited_for(boto_session: Any) -> None:
    """DeletePolicy keeps answering DeleteConflictException for a while after the detach;
    the handler retries until it succeeds."""
    iot = boto_session.client("iot")
    clock = Clock()
    with Stubber(iot) as stub:
        stub_round(stub, CORE, [CERT], "DeleteConflictException")
        stub_round(stub, CORE, [], "DeleteConflictException")
        stub_round(stub, CORE, [], None)
        policy_release_logic.release(iot, [CORE], sleep=clock.sleep, clock=clock)
        stub.assert_no_pending_responses()
    assert clock.sleeps == [policy_release_logic.POLL_SECONDS] * 2


def test_the_wait_is_bounded_and_names_the_policies_still_held(boto_session: Any) -> None:
    iot = boto_session.client("iot")
    clock = Clock()
    rounds = int(policy_release_logic.WAIT_SECONDS / policy_release_logic.POLL_SECONDS) + 1
    with Stubber(iot) as stub:
        for _ in range(rounds):
            stub_round(stub, CORE, [], "DeleteConflictException")
        with pytest.raises(RuntimeError, match=f"refuses to delete {CORE}.*Retry the stack"):
            policy_release_logic.release(iot, [CORE], sleep=clock.sleep, clock=clock)
        stub.assert_no_pending_responses()
    assert clock.now >= policy_release_logic.WAIT_SECONDS
    # Within the handler's Lambda timeout (10 min), itself within CloudFormation's one hour.
    assert policy_release_logic.WAIT_SECONDS + policy_release_logic.POLL_SECONDS < 600


def test_every_page_of_targets_is_detached(boto_session: Any) -> None:
    iot = boto_session.client("iot")
    second = CERT[:-1] + "b"
    with Stubber(iot) as stub:
        stub.add_response(
            "list_targets_for_policy",
            {"targets": [CERT], "nextMarker": "page2"},
            {"policyName": CORE, "pageSize": policy_release_logic.PAGE_SIZE},
        )
        stub.add_response(
            "list_targets_for_policy",
            {"targets": [second]},
            {"policyName": CORE, "pageSize": policy_release_logic.PAGE_SIZE, "marker": "page2"},
        )
        stub.add_response("detach_policy", {}, {"policyName": CORE, "target": CERT})
        stub.add_response("detach_policy", {}, {"policyName": CORE, "target": second})
        assert policy_release_logic.detach_all(iot, CORE) == 2
        stub.assert_no_pending_responses()


def test_access_denied_is_not_mistaken_for_gone(boto_session: Any) -> None:
    iot = boto_session.client("iot")
    with Stubber(iot) as stub:
        stub.add_client_error("list_targets_for_policy", "UnauthorizedException")
        with pytest.raises(ClientError, match="Unauthorized"):
            policy_release_logic.release(iot, [CORE])


@pytest.mark.parametrize(
    ("policies", "message"),
    [
        (None, "Policies is required"),
        ("not json", "must be a JSON object"),
        ("{}", "non-empty JSON object"),
        ('["a"]', "non-empty JSON object"),
        ('{"CoreDevice": "bad name with spaces"}', "CoreDevice must be an IoT policy name"),
        ('{"CoreDevice": 3}', "CoreDevice must be an IoT policy name"),
    ],
)
def test_bad_properties_are_refused_by_name(policies: str | None, message: str) -> None:
    props = {} if policies is None else {"Policies": policies}
    with pytest.raises(PropertyError, match=message):
        policy_release_logic.on_event(
            {"RequestType": "Delete", "ResourceProperties": props}, lambda: None
        )
