"""Custom::DemoDeviceCleanup against moto IoT (real API shapes and state) and a botocore
``Stubber`` for Greengrass V2, which moto does not cover (the Stubber checks every request
against the greengrassv2 service model).

What the installer (``--provision true``) leaves behind, per the nucleus's
``easysetup/DeviceProvisioningHelper.java``: a thing, an active certificate attached to it, the
core-device IoT policy and ``GreengrassTESCertificatePolicy<alias>`` attached to the
certificate, and the thing in the thing group; Greengrass then lists it as a core device.
"""

from __future__ import annotations

from typing import Any, Iterator

import boto3
import cleanup_handler
import cleanup_logic
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from cr_properties import PropertyError

from .conftest import REGION

PREFIX = "edge-ai-dev-demo-i-"
GROUP = "EdgeAiDevCoreDevices"
DEMO = f"{PREFIX}0123456789abcdef0"
REPLACED = f"{PREFIX}0fedcba9876543210"  # an instance replaced by an earlier deploy
OTHER = "edge-ai-dev-sensor-1"  # a real device of the same stage: must survive
PROD_DEMO = "edge-ai-prod-demo-i-0123456789abcdef0"  # another stage's demo: must survive
POLICIES = ("edge-ai-dev-GreengrassCoreDevicePolicy", "GreengrassTESCertificatePolicyAlias")
PROPS = {"ThingNamePrefix": PREFIX, "ThingGroupName": GROUP, "ServiceToken": "arn:token"}
DOCUMENT = (
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:*", '
    '"Resource": "*"}]}'
)


def provision(iot: Any, thing: str, *, in_group: bool = True) -> str:
    """What the installer does for one device; returns the certificate ARN."""
    iot.create_thing(thingName=thing)
    cert = iot.create_keys_and_certificate(setAsActive=True)
    for policy in POLICIES:
        iot.attach_policy(policyName=policy, target=cert["certificateArn"])
    iot.attach_thing_principal(thingName=thing, principal=cert["certificateArn"])
    if in_group:
        iot.add_thing_to_thing_group(thingGroupName=GROUP, thingName=thing)
    return str(cert["certificateArn"])


@pytest.fixture
def iot(aws: None, boto_session: boto3.Session) -> Any:
    client = boto_session.client("iot")
    client.create_thing_group(thingGroupName=GROUP)
    for policy in POLICIES:
        client.create_policy(policyName=policy, policyDocument=DOCUMENT)
    return client


@pytest.fixture
def greengrass(boto_session: boto3.Session) -> Iterator[tuple[Any, Stubber]]:
    client = boto_session.client("greengrassv2")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def core_devices(*names: str) -> dict[str, Any]:
    return {"coreDevices": [{"coreDeviceThingName": n, "status": "HEALTHY"} for n in names]}


def delete_event(props: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "RequestType": "Delete",
        "PhysicalResourceId": f"demo-device-cleanup:{PREFIX}",
        "LogicalResourceId": "Cleanup",
        "ResourceProperties": props if props is not None else dict(PROPS),
    }


def cert_ids(iot: Any) -> set[str]:
    return {c["certificateId"] for c in iot.list_certificates()["certificates"]}


def run_delete(iot: Any, greengrass: Any, sleeps: list[float] | None = None) -> dict[str, Any]:
    recorded = sleeps if sleeps is not None else []
    return cleanup_logic.on_event(
        delete_event(), lambda: iot, lambda: greengrass, sleep=recorded.append
    )


def test_delete_removes_the_demo_things_certificates_and_core_devices_only(
    iot: Any, greengrass: tuple[Any, Stubber]
) -> None:
    client, stubber = greengrass
    demo_cert = provision(iot, DEMO)
    replaced_cert = provision(iot, REPLACED, in_group=False)  # installer died before the group
    other_cert = provision(iot, OTHER)
    prod_cert = provision(iot, PROD_DEMO, in_group=False)
    for name in (DEMO, REPLACED):  # sorted order
        stubber.add_response("delete_core_device", {}, {"coreDeviceThingName": name})
    stubber.add_response("list_core_devices", core_devices(DEMO, OTHER, f"{PREFIX}0orphan"))
    stubber.add_response("delete_core_device", {}, {"coreDeviceThingName": f"{PREFIX}0orphan"})

    result = run_delete(iot, client)

    assert result == {"PhysicalResourceId": f"demo-device-cleanup:{PREFIX}"}
    things = {t["thingName"] for t in iot.list_things()["things"]}
    assert things == {OTHER, PROD_DEMO}
    remaining = cert_ids(iot)
    assert demo_cert.rsplit("/", 1)[1] not in remaining
    assert replaced_cert.rsplit("/", 1)[1] not in remaining
    assert {other_cert.rsplit("/", 1)[1], prod_cert.rsplit("/", 1)[1]} <= remaining
    group = iot.list_things_in_thing_group(thingGroupName=GROUP)["things"]
    assert group == [OTHER]
    # The IoT policies themselves belong to the devices stack: only detached, never deleted.
    assert {p["policyName"] for p in iot.list_policies()["policies"]} == set(POLICIES)
    assert len(iot.list_attached_policies(target=other_cert)["policies"]) == 2


def test_delete_twice_is_safe(iot: Any, greengrass: tuple[Any, Stubber]) -> None:
    client, stubber = greengrass
    provision(iot, DEMO)
    stubber.add_response("delete_core_device", {}, {"coreDeviceThingName": DEMO})
    stubber.add_response("list_core_devices", core_devices(DEMO))
    stubber.add_response("list_core_devices", core_devices())

    run_delete(iot, client)
    again = run_delete(iot, client)

    assert again["PhysicalResourceId"] == f"demo-device-cleanup:{PREFIX}"
    assert iot.list_things()["things"] == []
    assert cert_ids(iot) == set()


def test_a_core_device_record_already_gone_is_tolerated(
    iot: Any, greengrass: tuple[Any, Stubber]
) -> None:
    """DeleteCoreDevice declares ResourceNotFoundException (greengrassv2 service model)."""
    client, stubber = greengrass
    provision(iot, DEMO)
    stubber.add_client_error(
        "delete_core_device",
        service_error_code="ResourceNotFoundException",
        http_status_code=404,
        expected_params={"coreDeviceThingName": DEMO},
    )
    stubber.add_response("list_core_devices", core_devices())

    run_delete(iot, client)

    assert iot.list_things()["things"] == []


def test_other_greengrass_errors_fail_the_delete(iot: Any, greengrass: tuple[Any, Stubber]) -> None:
    """A denied DeleteCoreDevice must fail the stack deletion, not leave records silently."""
    client, stubber = greengrass
    provision(iot, DEMO)
    stubber.add_client_error(
        "delete_core_device", service_error_code="AccessDeniedException", http_status_code=403
    )

    with pytest.raises(ClientError, match="AccessDenied"):
        run_delete(iot, client)


class SlowDetachIot:
    """moto IoT whose DeleteCertificate sees the asynchronous detach late: the first calls
    raise DeleteConflictException, as AWS does while DetachThingPrincipal propagates."""

    def __init__(self, client: Any, conflicts: int) -> None:
        self._client = client
        self.conflicts = conflicts

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def delete_certificate(self, **kwargs: Any) -> Any:
        if self.conflicts:
            self.conflicts -= 1
            raise ClientError(
                {"Error": {"Code": "DeleteConflictException", "Message": "attached"}},
                "DeleteCertificate",
            )
        return self._client.delete_certificate(**kwargs)


def test_certificate_deletion_waits_for_the_detach_to_propagate(
    iot: Any, greengrass: tuple[Any, Stubber]
) -> None:
    client, stubber = greengrass
    provision(iot, DEMO)
    stubber.add_response("delete_core_device", {}, {"coreDeviceThingName": DEMO})
    stubber.add_response("list_core_devices", core_devices())
    slow = SlowDetachIot(iot, conflicts=2)
    sleeps: list[float] = []

    run_delete(slow, client, sleeps)

    assert cert_ids(iot) == set()
    assert sleeps == [cleanup_logic.DETACH_WAIT_SECONDS] * 2


def test_a_certificate_that_never_frees_up_fails_the_delete(
    iot: Any, greengrass: tuple[Any, Stubber]
) -> None:
    client, _ = greengrass
    provision(iot, DEMO)
    slow = SlowDetachIot(iot, conflicts=1000)

    with pytest.raises(ClientError, match="DeleteConflict"):
        run_delete(slow, client)


def test_a_certificate_shared_with_another_thing_is_detached_but_kept(
    iot: Any, greengrass: tuple[Any, Stubber]
) -> None:
    client, stubber = greengrass
    cert = provision(iot, DEMO)
    iot.create_thing(thingName=OTHER)
    iot.attach_thing_principal(thingName=OTHER, principal=cert)
    stubber.add_response("delete_core_device", {}, {"coreDeviceThingName": DEMO})
    stubber.add_response("list_core_devices", core_devices())

    run_delete(iot, client)

    assert cert.rsplit("/", 1)[1] in cert_ids(iot)
    assert iot.list_principal_things(principal=cert)["things"] == [OTHER]


@pytest.mark.parametrize("prefix", ["", "*", "edge-", "edge-ai-dev-demo-i", "a b c d e f-"])
def test_a_prefix_that_could_match_too_much_is_refused(prefix: str) -> None:
    with pytest.raises(PropertyError, match="ThingNamePrefix"):
        cleanup_logic.parse_props({"ThingNamePrefix": prefix, "ThingGroupName": GROUP})


def test_create_and_update_touch_nothing(aws_env: None) -> None:
    def refuse() -> Any:
        raise AssertionError("no AWS call on Create/Update")

    for request in ("Create", "Update"):
        result = cleanup_logic.on_event(
            {"RequestType": request, "ResourceProperties": PROPS}, refuse, refuse
        )
        assert result == {"PhysicalResourceId": f"demo-device-cleanup:{PREFIX}"}
    with pytest.raises(PropertyError):
        cleanup_logic.on_event(
            {"RequestType": "Create", "ResourceProperties": {"ThingGroupName": GROUP}},
            refuse,
            refuse,
        )


def test_delete_of_a_resource_whose_create_failed_touches_nothing(aws_env: None) -> None:
    def refuse() -> Any:
        raise AssertionError("no AWS call")

    result = cleanup_logic.on_event(
        delete_event({"ThingNamePrefix": "", "ThingGroupName": GROUP}), refuse, refuse
    )
    assert result["PhysicalResourceId"] == f"demo-device-cleanup:{PREFIX}"


def test_the_lambda_entry_point_runs_against_moto(
    iot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    provision(iot, DEMO)
    greengrass = boto3.client("greengrassv2", region_name=REGION)
    stubber = Stubber(greengrass)
    stubber.add_response("delete_core_device", {}, {"coreDeviceThingName": DEMO})
    stubber.add_response("list_core_devices", core_devices())
    monkeypatch.setattr(cleanup_handler, "greengrass_client", lambda: greengrass)
    with stubber:
        cleanup_handler.on_event(delete_event(), None)
    assert boto3.client("iot", region_name=REGION).list_things()["things"] == []
