"""Replay of the Greengrass installer's ``--provision true`` AWS calls under the installer policy.

Source followed (aws-greengrass-nucleus; commit in README.md):

* ``easysetup/GreengrassSetup.java`` ``provision()``: ``createThing`` -> ``addThingToGroup`` (when
  ``--thing-group-name``) -> ``setupIoTRoleForTes`` -> ``createAndAttachRolePolicy``;
* ``easysetup/DeviceProvisioningHelper.java`` for each of those: which call, on what, and which
  exceptions it catches.

Every call is authorized against the policies of the principal that runs the installer (the
stack's installer managed policy) with :mod:`device_sim.iam`. The resource each action is
authorized on follows the Service Authorization Reference pages "Actions, resources, and
condition keys for AWS IoT" (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsiot.html)
and "... for AWS Identity and Access Management" (list_awsidentityandaccessmanagementiam.html).
``sts:GetCallerIdentity`` needs no permission (STS API reference, GetCallerIdentity: "No
permissions are required to perform this operation").

How a denied call ends, as the Java does:

* IoT calls: the SDK raises ``IotException`` (403/401). ``getPolicy``, ``describeRoleAlias`` and
  ``describeThingGroup`` catch only ``ResourceNotFoundException``, so a denial aborts the install.
* ``iam:GetPolicy`` in ``getPolicyArn``: an ``IamException`` whose message contains "not
  authorized to perform" is tolerated (it goes on to the next lookup, then to CreatePolicy).
* every other call: uncaught, the install aborts.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from device_sim.assembly import Cloud
from device_sim.iam import Decision, Policy, Request, evaluate


class ProvisioningDenied(RuntimeError):
    """The installer stops at this call; ``str()`` is the one-line report."""

    def __init__(self, call: Call, decision: Decision) -> None:
        super().__init__(
            f"ProvisioningDenied: {call.action} on {call.resource} : {decision.reason} "
            f"(DeviceProvisioningHelper.{call.java_method})"
        )
        self.call = call
        self.decision = decision


class ProvisioningError(RuntimeError):
    """A provisioning step fails for another reason (bad installer arguments, ...)."""


@dataclass(frozen=True)
class InstallerArgs:
    """The installer options that provisioning reads (GreengrassSetup.java ``parseArgs``)."""

    region: str
    thing_name: str
    thing_group_name: str
    thing_policy_name: str
    tes_role_name: str
    tes_role_alias_name: str
    provision: bool


# GreengrassSetup.java defaults (THING_POLICY_NAME_DEFAULT, TES_ROLE_NAME_DEFAULT, ...).
_DEFAULTS = {
    "--thing-policy-name": "GreengrassV2IoTThingPolicy",
    "--tes-role-name": "GreengrassV2TokenExchangeRole",
    "--tes-role-alias-name": "GreengrassV2TokenExchangeRoleAlias",
    "--thing-group-name": "",
}


def parse_installer_command(command: str, device_name: str) -> InstallerArgs:
    """Parse the stack's ``InstallerCommand`` output; ``<device-name>`` becomes ``device_name``."""
    words = shlex.split(command.replace("<device-name>", device_name))
    values: dict[str, str] = dict(_DEFAULTS)
    i = 0
    while i < len(words):
        word = words[i]
        if word.startswith("--") and i + 1 < len(words) and not words[i + 1].startswith("-"):
            values[word] = words[i + 1]
            i += 2
        else:
            i += 1
    for required in ("--aws-region", "--thing-name"):
        if required not in values:
            raise ProvisioningError(f"InstallerCommand has no {required}: {command}")
    thing = values["--thing-name"]
    if ":" in thing:  # GreengrassSetup.provision(): "Thing name cannot contain colon characters"
        raise ProvisioningError("Thing name cannot contain colon characters")
    return InstallerArgs(
        region=values["--aws-region"],
        thing_name=thing,
        thing_group_name=values["--thing-group-name"],
        thing_policy_name=values["--thing-policy-name"],
        tes_role_name=values["--tes-role-name"],
        tes_role_alias_name=values["--tes-role-alias-name"],
        provision=values.get("--provision", "false").lower() == "true",
    )


@dataclass(frozen=True)
class Call:
    java_method: str
    action: str
    resource: str
    # what the Java does when the call is denied: "abort" or "tolerate"
    on_denied: str = "abort"


@dataclass
class ProvisionResult:
    thing_name: str
    certificate_arn: str
    thing_arn: str
    calls: list[tuple[Call, Decision, str]] = field(default_factory=list)  # call, decision, note
    iot_policies_attached: list[str] = field(default_factory=list)

    def transcript(self) -> list[str]:
        return [
            f"{'ALLOW' if d.allowed else 'DENY '} {c.action} on {c.resource}"
            + (f" -> {note}" if note else "")
            for c, d, note in self.calls
        ]


class _Replay:
    def __init__(self, cloud: Cloud, args: InstallerArgs, principal: Sequence[Policy]) -> None:
        self.cloud = cloud
        self.args = args
        self.principal = list(principal)
        env = cloud.env

        def iot(resource: str) -> str:
            return env.arn("iot", resource, region=args.region)

        self.iot = iot
        cert_id = hashlib.sha256(args.thing_name.encode()).hexdigest()
        self.result = ProvisionResult(
            thing_name=args.thing_name,
            certificate_arn=self.iot(f"cert/{cert_id}"),
            thing_arn=self.iot(f"thing/{args.thing_name}"),
        )

    def call(self, call: Call, *, exists: bool | None = None, note: str = "") -> bool:
        """Authorize ``call``; True when allowed. Denied + tolerated -> False; else raise."""
        if call.action == "sts:GetCallerIdentity":
            decision = Decision(True, "needs no permission (STS GetCallerIdentity)")
        else:
            decision = evaluate(self.principal, Request(call.action, call.resource))
        if not decision.allowed:
            self.result.calls.append((call, decision, "denied: " + call.on_denied))
            if call.on_denied == "tolerate":
                return False
            raise ProvisioningDenied(call, decision)
        if exists is not None:
            note = note or ("exists" if exists else "not found")
        self.result.calls.append((call, decision, note))
        return True

    def run(self) -> ProvisionResult:
        a, cloud, iot = self.args, self.cloud, self.iot
        # DeviceProvisioningHelper.createThing
        policy_exists = a.thing_policy_name in cloud.iot_policies
        self.call(
            Call("createThing", "iot:GetPolicy", iot(f"policy/{a.thing_policy_name}")),
            exists=policy_exists,
        )
        if not policy_exists:  # ResourceNotFoundException -> createPolicy (allow-all document)
            self.call(Call("createThing", "iot:CreatePolicy", iot(f"policy/{a.thing_policy_name}")))
        self.call(Call("createThing", "iot:DescribeEndpoint", "*"), note="iot:Data-ATS")
        self.call(Call("createThing", "iot:DescribeEndpoint", "*"), note="iot:CredentialProvider")
        self.call(Call("createThing", "iot:CreateKeysAndCertificate", "*"))
        self.call(
            Call("createThing", "iot:AttachPolicy", self.result.certificate_arn),
            note=f"{a.thing_policy_name} -> certificate",
        )
        self.result.iot_policies_attached.append(a.thing_policy_name)
        self.call(Call("createThing", "iot:CreateThing", self.result.thing_arn))
        # AttachThingPrincipal names the thing and the certificate. The Service Authorization
        # Reference (list_awsiot.html) gives "thing" as its resource type, the IoT developer
        # guide's "How AWS IoT works with IAM" table gives cert/cert-id: authorized on both.
        self.call(Call("createThing", "iot:AttachThingPrincipal", self.result.thing_arn))
        self.call(Call("createThing", "iot:AttachThingPrincipal", self.result.certificate_arn))
        # DeviceProvisioningHelper.addThingToGroup
        if a.thing_group_name:
            group_arn = iot(f"thinggroup/{a.thing_group_name}")
            group_exists = a.thing_group_name in cloud.thing_groups
            self.call(
                Call("addThingToGroup", "iot:DescribeThingGroup", group_arn), exists=group_exists
            )
            if not group_exists:
                self.call(Call("addThingToGroup", "iot:CreateThingGroup", group_arn))
            # AddThingToThingGroup is authorized on the group and on the thing.
            self.call(Call("addThingToGroup", "iot:AddThingToThingGroup", group_arn))
            self.call(Call("addThingToGroup", "iot:AddThingToThingGroup", self.result.thing_arn))
        # DeviceProvisioningHelper.setupIoTRoleForTes
        alias_arn = iot(f"rolealias/{a.tes_role_alias_name}")
        alias_exists = a.tes_role_alias_name in cloud.role_aliases
        self.call(
            Call("setupIoTRoleForTes", "iot:DescribeRoleAlias", alias_arn), exists=alias_exists
        )
        iam_arn = f"arn:{cloud.env.partition}:iam::{cloud.env.account}"
        if not alias_exists:
            role_exists = a.tes_role_name in cloud.roles
            self.call(
                Call("setupIoTRoleForTes", "iam:GetRole", f"{iam_arn}:role/{a.tes_role_name}"),
                exists=role_exists,
            )
            if not role_exists:
                self.call(
                    Call(
                        "setupIoTRoleForTes", "iam:CreateRole", f"{iam_arn}:role/{a.tes_role_name}"
                    )
                )
            self.call(Call("setupIoTRoleForTes", "iot:CreateRoleAlias", alias_arn))
            self.call(
                Call("setupIoTRoleForTes", "iam:PassRole", f"{iam_arn}:role/{a.tes_role_name}")
            )
        tes_policy = f"GreengrassTESCertificatePolicy{a.tes_role_alias_name}"
        tes_policy_exists = tes_policy in cloud.iot_policies
        self.call(
            Call("setupIoTRoleForTes", "iot:GetPolicy", iot(f"policy/{tes_policy}")),
            exists=tes_policy_exists,
        )
        if not tes_policy_exists:
            self.call(Call("setupIoTRoleForTes", "iot:CreatePolicy", iot(f"policy/{tes_policy}")))
        self.call(
            Call("setupIoTRoleForTes", "iot:AttachPolicy", self.result.certificate_arn),
            note=f"{tes_policy} -> certificate",
        )
        self.result.iot_policies_attached.append(tes_policy)
        # DeviceProvisioningHelper.createAndAttachRolePolicy / getPolicyArn
        access = f"{a.tes_role_name}Access"
        managed = f"arn:{cloud.env.partition}:iam::aws:policy/{access}"
        found = False
        if self.call(
            Call("getPolicyArn", "iam:GetPolicy", managed, on_denied="tolerate"), exists=False
        ):
            pass  # no AWS-managed policy has this name: NoSuchEntityException, caught
        self.call(Call("getPolicyArn", "sts:GetCallerIdentity", "*"))
        customer = f"{iam_arn}:policy/{access}"
        customer_exists = customer in cloud.managed_policies
        if self.call(
            Call("getPolicyArn", "iam:GetPolicy", customer, on_denied="tolerate"),
            exists=customer_exists,
        ):
            found = customer_exists
        if not found:
            self.call(Call("createAndAttachRolePolicy", "iam:CreatePolicy", customer))
            self.call(
                Call(
                    "createAndAttachRolePolicy",
                    "iam:AttachRolePolicy",
                    f"{iam_arn}:role/{a.tes_role_name}",
                )
            )
        return self.result


def provision(cloud: Cloud, args: InstallerArgs, principal: Sequence[Policy]) -> ProvisionResult:
    """Replay ``GreengrassSetup.provision``; raises :class:`ProvisioningDenied` at the first call
    the installer cannot survive."""
    if not args.provision:
        raise ProvisioningError("the InstallerCommand does not pass --provision true")
    return _Replay(cloud, args, principal).run()


def installer_principal(cloud: Cloud) -> list[Policy]:
    """The policies of the principal that runs the installer: the stack's installer policy."""
    arn = str(cloud.output("Devices", "InstallerPolicyArn"))
    if arn not in cloud.managed_policies:
        raise ProvisioningError(f"InstallerPolicyArn {arn} is not a policy the stack created")
    return [cloud.managed_policies[arn]]


Provisioner = Callable[[Cloud, InstallerArgs, Sequence[Policy]], ProvisionResult]
