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

# GreengrassSetup.parseArgs (aws-greengrass-nucleus v2.18.2 easysetup/GreengrassSetup.java): every
# flag it knows, short form -> long form, and how it reads its value.
_VALUE_FLAGS = {
    "-i": "--config",
    "-init": "--init-config",
    "-r": "--root",
    "-tn": "--thing-name",
    "-tgn": "--thing-group-name",
    "-tpn": "--thing-policy-name",
    "-trn": "--tes-role-name",
    "-tra": "--tes-role-alias-name",
    "-ar": "--aws-region",
    "-es": "--env-stage",
    "-u": "--component-default-user",
    "-tp": "--trusted-plugin",
}
_BOOLEAN_FLAGS = {
    "-p": "--provision",
    "-ss": "--setup-system-service",
    "-s": "--start",
    "-d": "--deploy-dev-tools",
}
_STOP_FLAGS = {"-h": "--help", "-v": "--version"}  # parseArgs stops reading ("break loop")
_LONG_VALUE_FLAGS = {*_VALUE_FLAGS.values(), "--cert-path"}
# Coerce.toBoolean on a string: exactly these (case-sensitive) are true, anything else false.
_TRUE_WORDS = frozenset({"true", "yes", "on", "t", "y", "Y"})


def _installer_words(command: str) -> list[str]:
    """The arguments ``Greengrass.jar`` receives: the words after ``-jar <jar>`` (the JVM's own
    options come before it); a command without ``-jar`` is taken as the arguments alone."""
    words = shlex.split(command)
    if "-jar" in words:
        index = words.index("-jar")
        if index + 1 >= len(words):
            raise ProvisioningError(f"InstallerCommand names no jar after -jar: {command}")
        return words[index + 2 :]
    return words


def parse_installer_args(words: Sequence[str]) -> dict[str, str]:
    """``GreengrassSetup.parseArgs``: flags are matched lower-cased, short or long; a value flag
    takes the next word whatever it is; a boolean flag followed by nothing or by a word starting
    with ``-`` is true, otherwise it takes the next word through ``Coerce.toBoolean``; anything
    else (an unknown flag, a stray value) throws "Undefined command line argument", and the
    installer exits with status 1 before any AWS call."""
    values: dict[str, str] = {}
    i = 0
    while i < len(words):
        word = words[i]
        flag = word.lower()
        i += 1
        if flag in _STOP_FLAGS or flag in _STOP_FLAGS.values():
            break
        long_value = _VALUE_FLAGS.get(flag, flag)
        if long_value in _LONG_VALUE_FLAGS:
            if i >= len(words):
                raise ProvisioningError(f"{word} has no value (GreengrassSetup.parseArgs)")
            values[long_value] = words[i]
            i += 1
            continue
        long_boolean = _BOOLEAN_FLAGS.get(flag, flag)
        if long_boolean in _BOOLEAN_FLAGS.values():
            if i >= len(words) or words[i].startswith("-"):
                values[long_boolean] = "true"
            else:
                values[long_boolean] = "true" if words[i] in _TRUE_WORDS else "false"
                i += 1
            continue
        raise ProvisioningError(
            f"Undefined command line argument: {word} (GreengrassSetup.parseArgs; the installer "
            "exits with status 1)"
        )
    return values


def parse_installer_command(command: str, device_name: str) -> InstallerArgs:
    """Parse the stack's ``InstallerCommand`` output; ``<device-name>`` becomes ``device_name``."""
    words = _installer_words(command.replace("<device-name>", device_name))
    values: dict[str, str] = {**_DEFAULTS, **parse_installer_args(words)}
    for required in ("--aws-region", "--thing-name"):
        if required not in values:
            raise ProvisioningError(f"InstallerCommand has no {required}: {command}")
    thing = values["--thing-name"]
    if ":" in thing:  # GreengrassSetup.provision(): "Thing name cannot contain colon characters"
        raise ProvisioningError("Thing name cannot contain colon characters")
    if ":" in values["--thing-group-name"]:  # the same check, next line of provision()
        raise ProvisioningError("Thing group name cannot contain colon characters")
    return InstallerArgs(
        region=values["--aws-region"],
        thing_name=thing,
        thing_group_name=values["--thing-group-name"],
        thing_policy_name=values["--thing-policy-name"],
        tes_role_name=values["--tes-role-name"],
        tes_role_alias_name=values["--tes-role-alias-name"],
        provision=values.get("--provision", "false") == "true",
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
            if customer_exists:
                # The lookup was denied (tolerated), so the installer did not learn the policy
                # exists. IAM CreatePolicy: EntityAlreadyExists, HTTP 409 (botocore iam
                # service-2.json, CreatePolicy errors); createAndAttachRolePolicy catches
                # nothing, so the installer aborts.
                raise ProvisioningError(
                    f"EntityAlreadyExists: iam:CreatePolicy on {customer}: the policy exists, "
                    "but iam:GetPolicy on it was denied, so the installer tried to create it "
                    "(DeviceProvisioningHelper.createAndAttachRolePolicy). Allow iam:GetPolicy "
                    "on it to the installer's principal"
                )
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
    result = _Replay(cloud, args, principal).run()
    # What the installer leaves in the account: the thing, its certificate and the policies
    # attached to it (a later DeletePolicy meets them). A policy it would have created
    # (none of the stacks' stages lacks one) is not modelled.
    cloud.iot.register_core_device(
        args.thing_name,
        args.thing_group_name or None,
        [name for name in result.iot_policies_attached if name in cloud.iot_policies],
        certificate_arn=result.certificate_arn,
    )
    return result


def installer_principal(cloud: Cloud) -> list[Policy]:
    """The policies of the principal that runs the installer: the stack's installer policy."""
    arn = str(cloud.output("Devices", "InstallerPolicyArn"))
    if arn not in cloud.managed_policies:
        raise ProvisioningError(f"InstallerPolicyArn {arn} is not a policy the stack created")
    return [cloud.managed_policies[arn]]


Provisioner = Callable[[Cloud, InstallerArgs, Sequence[Policy]], ProvisionResult]
