"""AWS IoT Core in the simulated account: policies, role aliases, thing groups, things,
certificates and the policies attached to them.

Refusals follow botocore's IoT model (``botocore/data/iot/2015-05-28/service-2.json``):
``CreatePolicy``/``CreateRoleAlias``/``CreateThingGroup`` of an existing name ->
``ResourceAlreadyExistsException`` ("The resource already exists"); ``DeletePolicy`` of a policy
attached to a certificate -> ``DeleteConflictException`` (``DeletePolicy``'s documentation: "A
policy cannot be deleted if it has non-default versions or it is attached to any certificate";
the shape: "You can't delete the resource because it is attached to one or more resources");
a missing one -> ``ResourceNotFoundException``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from device_sim.cloud.env import Env
from device_sim.cloud.errors import ServiceError
from device_sim.iam import Policy


@dataclass
class Certificate:
    certificate_id: str
    arn: str
    status: str = "ACTIVE"
    policies: list[str] = field(default_factory=list)  # attached IoT policy names
    things: list[str] = field(default_factory=list)


class IotBackend:
    def __init__(self, env: Env) -> None:
        self.env = env
        self.policies: dict[str, Policy] = {}  # by policy name
        self.role_aliases: dict[str, str] = {}  # alias -> role ARN
        self.thing_groups: dict[str, str] = {}  # name -> ARN
        self.things: dict[str, list[str]] = {}  # thing name -> its groups
        self.certificates: dict[str, Certificate] = {}  # by certificate ARN

    def _exists(self, operation: str, kind: str, name: str) -> ServiceError:
        return ServiceError(
            operation, "ResourceAlreadyExistsException", f"{kind} {name} already exists", 409
        )

    # -- policies
    def create_policy(self, name: str, document: Any) -> str:
        if name in self.policies:
            raise self._exists("CreatePolicy", "Policy", name)
        self.policies[name] = Policy(name, document)
        return self.env.arn("iot", f"policy/{name}")

    def set_policy_document(self, name: str, document: Any) -> None:
        """``CreatePolicyVersion`` with ``setAsDefault`` (the schema's update handler)."""
        self.policies[name] = Policy(name, document)

    def attached_targets(self, name: str) -> list[str]:
        return sorted(c.arn for c in self.certificates.values() if name in c.policies)

    def delete_policy(self, name: str) -> None:
        if name not in self.policies:
            raise ServiceError(
                "DeletePolicy", "ResourceNotFoundException", f"Policy {name} not found", 404
            )
        targets = self.attached_targets(name)
        if targets:
            raise ServiceError(
                "DeletePolicy",
                "DeleteConflictException",
                f"Cannot delete policy {name}: it is attached to {len(targets)} target(s) "
                f"({', '.join(targets)})",
                409,
            )
        del self.policies[name]

    def attach_policy(self, name: str, target: str) -> None:
        if name not in self.policies:
            raise ServiceError(
                "AttachPolicy", "ResourceNotFoundException", f"Policy {name} not found", 404
            )
        cert = self.certificates[target]
        if name not in cert.policies:
            cert.policies.append(name)

    def detach_policy(self, name: str, target: str) -> None:
        cert = self.certificates.get(target)
        if cert is not None and name in cert.policies:
            cert.policies.remove(name)

    # -- role aliases, thing groups
    def create_role_alias(self, alias: str, role_arn: str) -> str:
        if alias in self.role_aliases:
            raise self._exists("CreateRoleAlias", "Role alias", alias)
        self.role_aliases[alias] = role_arn
        return self.env.arn("iot", f"rolealias/{alias}")

    def delete_role_alias(self, alias: str) -> None:
        self.role_aliases.pop(alias, None)

    def create_thing_group(self, name: str) -> str:
        if name in self.thing_groups:
            raise self._exists("CreateThingGroup", "Thing group", name)
        self.thing_groups[name] = self.env.arn("iot", f"thinggroup/{name}")
        return self.thing_groups[name]

    def delete_thing_group(self, name: str) -> None:
        self.thing_groups.pop(name, None)
        for groups in self.things.values():
            if name in groups:
                groups.remove(name)

    # -- a provisioned core device (what GreengrassSetup's provisioning leaves in the account)
    def register_core_device(
        self,
        thing: str,
        group: str | None,
        policies: list[str],
        certificate_arn: str | None = None,
    ) -> str:
        """``CreateThing``, ``CreateKeysAndCertificate``, ``AttachThingPrincipal``,
        ``AttachPolicy`` for each policy, ``AddThingToThingGroup`` (aws-greengrass-nucleus
        v2.18.2 easysetup/DeviceProvisioningHelper.java); returns the certificate ARN (the
        provision replay's, when given)."""
        digest = hashlib.sha256(f"{self.env.account}/{thing}".encode()).hexdigest()
        arn = certificate_arn or self.env.arn("iot", f"cert/{digest}")
        cert = self.certificates.setdefault(arn, Certificate(arn.rsplit("/", 1)[-1], arn))
        groups = self.things.setdefault(thing, [])
        if group is not None and group not in groups:
            groups.append(group)
        if thing not in cert.things:
            cert.things.append(thing)
        for name in policies:
            self.attach_policy(name, arn)
        return arn

    def client(self) -> IotClient:
        return IotClient(self)


class IotClient:
    """The boto3 ``iot`` client calls the project's handlers make (``policy_release_logic``),
    answered by the backend; errors are botocore ``ClientError`` with the model's codes."""

    def __init__(self, backend: IotBackend) -> None:
        self.backend = backend

    def _policy(self, operation: str, name: str) -> Policy:
        if name not in self.backend.policies:
            raise ServiceError(operation, "ResourceNotFoundException", f"Policy {name} not found")
        return self.backend.policies[name]

    def list_targets_for_policy(self, policyName: str, **_: Any) -> dict[str, Any]:
        self._policy("ListTargetsForPolicy", policyName)
        return {"targets": self.backend.attached_targets(policyName)}

    def detach_policy(self, policyName: str, target: str) -> dict[str, Any]:
        self.backend.detach_policy(policyName, target)
        return {}

    def list_policy_versions(self, policyName: str) -> dict[str, Any]:
        """One version, the default (the simulator keeps only the current document)."""
        self._policy("ListPolicyVersions", policyName)
        return {"policyVersions": [{"versionId": "1", "isDefaultVersion": True}]}

    def delete_policy_version(self, policyName: str, policyVersionId: str) -> dict[str, Any]:
        raise ServiceError(
            "DeletePolicyVersion",
            "InvalidRequestException",
            "Cannot delete the default version of a policy",
        )

    def delete_policy(self, policyName: str) -> dict[str, Any]:
        self.backend.delete_policy(policyName)
        return {}

    def list_thing_groups_for_thing(self, thingName: str, **_: Any) -> dict[str, Any]:
        """One page of the thing's groups; ``ResourceNotFoundException`` for a thing that does
        not exist (botocore iot ``ListThingGroupsForThing``)."""
        if thingName not in self.backend.things:
            raise ServiceError(
                "ListThingGroupsForThing",
                "ResourceNotFoundException",
                f"Thing {thingName} cannot be found.",
                404,
            )
        return {
            "thingGroups": [
                {"groupName": g, "groupArn": self.backend.thing_groups.get(g, "")}
                for g in self.backend.things[thingName]
            ]
        }
