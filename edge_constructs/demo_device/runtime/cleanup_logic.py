"""Custom::DemoDeviceCleanup logic: on Delete, remove every IoT thing, certificate and Greengrass
core-device record that the demo device's installer created. Create and Update do nothing.

The demo instance's installer (``--provision true``) creates a thing named
``<ThingNamePrefix><instance id>``, a certificate attached to it, attaches the core-device and
token-exchange IoT policies to the certificate and adds the thing to the thing group. On stack
deletion the instance is terminated first (it depends on this resource), then this removes, for
every thing whose name starts with the prefix:

1. each certificate principal: detach its IoT policies (``ListAttachedPolicies``,
   ``DetachPolicy``), detach it from the thing (``DetachThingPrincipal``, asynchronous: wait
   until ``ListPrincipalThings`` no longer shows the thing), set it INACTIVE
   (``UpdateCertificate``) and delete it (``DeleteCertificate``) unless another thing still
   uses it;
2. the thing from the thing group (``RemoveThingFromThingGroup``);
3. the Greengrass core-device record (``greengrassv2:DeleteCoreDevice``; it does not delete the
   thing) and then the thing (``DeleteThing``).

Core-device records whose thing is already gone are found with ``ListCoreDevices`` and deleted
too. Every "not found" is tolerated, so Delete is safe to run twice. Operations, parameters and
error codes: botocore's ``iot/2015-05-28/service-2.json`` (DeleteCertificate: "A certificate
cannot be deleted if it has a policy or IoT thing attached to it or if its status is set to
ACTIVE"; DetachThingPrincipal: "This call is asynchronous") and
``greengrassv2/2020-11-30/service-2.json`` (DeleteCoreDevice, ListCoreDevices).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from botocore.exceptions import ClientError
from cr_properties import PropertyError, string

LOGGER = logging.getLogger(__name__)

# A prefix such as "edge-ai-dev-demo-i-": never empty or short, so a bad property can never
# select every thing in the account.
PREFIX_RE = re.compile(r"^[A-Za-z0-9_:-]{6,100}-$")
NOT_FOUND = "ResourceNotFoundException"
# DeleteCertificate while the asynchronous detach is still propagating.
CERT_BUSY = frozenset({"DeleteConflictException", "CertificateStateException"})
DETACH_WAIT_ATTEMPTS = 12
DETACH_WAIT_SECONDS = 5.0

Sleep = Callable[[float], None]


@dataclass(frozen=True)
class CleanupProps:
    thing_name_prefix: str
    thing_group_name: str


def parse_props(props: Mapping[str, Any]) -> CleanupProps:
    prefix = string(props, "ThingNamePrefix")
    if not PREFIX_RE.match(prefix):
        raise PropertyError(
            f"Property ThingNamePrefix must match {PREFIX_RE.pattern} (6-100 characters ending "
            f"in '-'), got {prefix!r}"
        )
    return CleanupProps(thing_name_prefix=prefix, thing_group_name=string(props, "ThingGroupName"))


def physical_id(props: CleanupProps) -> str:
    """Stable while the prefix is: a new prefix replaces the resource, so CloudFormation sends
    Delete (and the cleanup runs) for the old one."""
    return f"demo-device-cleanup:{props.thing_name_prefix}"


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _tolerating_not_found(call: Callable[..., Any], **kwargs: Any) -> bool:
    """Run ``call``; False if the service said the resource does not exist."""
    try:
        call(**kwargs)
    except ClientError as error:
        if error_code(error) == NOT_FOUND:
            return False
        raise
    return True


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> Iterable[Any]:
    for page in client.get_paginator(operation).paginate(**kwargs):
        yield from page.get(key, [])


def find_things(iot: Any, prefix: str) -> list[str]:
    """Names of the things whose name starts with ``prefix`` (ListThings cannot filter names)."""
    return sorted(
        thing["thingName"]
        for thing in _pages(iot, "list_things", "things")
        if thing["thingName"].startswith(prefix)
    )


def find_core_devices(greengrass: Any, prefix: str) -> list[str]:
    return sorted(
        device["coreDeviceThingName"]
        for device in _pages(greengrass, "list_core_devices", "coreDevices")
        if device["coreDeviceThingName"].startswith(prefix)
    )


def _principal_things(iot: Any, principal: str) -> list[str]:
    try:
        return list(_pages(iot, "list_principal_things", "things", principal=principal))
    except ClientError as error:
        if error_code(error) == NOT_FOUND:
            return []
        raise


def remove_certificate(iot: Any, thing_name: str, principal: str, sleep: Sleep) -> None:
    """Detach and delete one certificate principal of ``thing_name``."""
    if ":cert/" not in principal:
        # Only certificates are ours to delete; other principal kinds are just detached.
        _tolerating_not_found(iot.detach_thing_principal, thingName=thing_name, principal=principal)
        return
    certificate_id = principal.rsplit("/", 1)[1]
    try:
        policies = [
            p["policyName"]
            for p in _pages(iot, "list_attached_policies", "policies", target=principal)
        ]
    except ClientError as error:
        if error_code(error) != NOT_FOUND:
            raise
        policies = []
    for policy in policies:
        LOGGER.info("Detaching policy %s from certificate %s", policy, certificate_id)
        iot.detach_policy(policyName=policy, target=principal)
    _tolerating_not_found(iot.detach_thing_principal, thingName=thing_name, principal=principal)
    for _ in range(DETACH_WAIT_ATTEMPTS):
        if thing_name not in _principal_things(iot, principal):
            break
        sleep(DETACH_WAIT_SECONDS)
    others = [name for name in _principal_things(iot, principal) if name != thing_name]
    if others:
        LOGGER.warning("Certificate %s is still attached to %s; kept", certificate_id, others)
        return
    if not _tolerating_not_found(
        iot.update_certificate, certificateId=certificate_id, newStatus="INACTIVE"
    ):
        return
    for attempt in range(DETACH_WAIT_ATTEMPTS):
        try:
            iot.delete_certificate(certificateId=certificate_id)
        except ClientError as error:
            code = error_code(error)
            if code == NOT_FOUND:
                return
            if code in CERT_BUSY and attempt + 1 < DETACH_WAIT_ATTEMPTS:
                sleep(DETACH_WAIT_SECONDS)
                continue
            raise
        LOGGER.info("Deleted certificate %s of %s", certificate_id, thing_name)
        return


def remove_thing(
    iot: Any, greengrass: Any, thing_name: str, thing_group_name: str, sleep: Sleep
) -> None:
    try:
        principals = list(_pages(iot, "list_thing_principals", "principals", thingName=thing_name))
    except ClientError as error:
        if error_code(error) != NOT_FOUND:
            raise
        principals = []
    for principal in principals:
        remove_certificate(iot, thing_name, principal, sleep)
    _tolerating_not_found(
        iot.remove_thing_from_thing_group, thingGroupName=thing_group_name, thingName=thing_name
    )
    _tolerating_not_found(greengrass.delete_core_device, coreDeviceThingName=thing_name)
    if _tolerating_not_found(iot.delete_thing, thingName=thing_name):
        LOGGER.info("Deleted thing %s", thing_name)


def cleanup(iot: Any, greengrass: Any, props: CleanupProps, sleep: Sleep = time.sleep) -> list[str]:
    """Remove every thing (and core-device record) under the prefix; returns the names."""
    things = find_things(iot, props.thing_name_prefix)
    for name in things:
        remove_thing(iot, greengrass, name, props.thing_group_name, sleep)
    orphans = [
        name
        for name in find_core_devices(greengrass, props.thing_name_prefix)
        if name not in things
    ]
    for name in orphans:
        _tolerating_not_found(greengrass.delete_core_device, coreDeviceThingName=name)
    return sorted(set(things) | set(orphans))


def on_event(
    event: Mapping[str, Any],
    iot_factory: Callable[[], Any],
    greengrass_factory: Callable[[], Any],
    sleep: Sleep = time.sleep,
) -> dict[str, Any]:
    request = event["RequestType"]
    if request == "Delete":
        try:
            props = parse_props(event.get("ResourceProperties", {}))
        except PropertyError:
            # Never created with valid properties (the Create failed): nothing to remove.
            LOGGER.warning("Delete of a resource without valid properties: nothing to do")
            return {"PhysicalResourceId": event.get("PhysicalResourceId", "none")}
        removed = cleanup(iot_factory(), greengrass_factory(), props, sleep)
        LOGGER.info("Removed %d demo device(s): %s", len(removed), removed)
        return {"PhysicalResourceId": event["PhysicalResourceId"]}
    props = parse_props(event.get("ResourceProperties", {}))
    return {"PhysicalResourceId": physical_id(props)}
