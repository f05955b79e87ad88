"""device_sim.provision with hand-written installer policies (DeviceProvisioningHelper.java)."""

from __future__ import annotations

import pytest

from device_sim.assembly import Cloud, Env, Role
from device_sim.iam import Policy
from device_sim.provision import (
    InstallerArgs,
    ProvisioningDenied,
    ProvisioningError,
    parse_installer_command,
    provision,
)

ENV = Env()
ARGS = InstallerArgs(
    region=ENV.region,
    thing_name="dev-1",
    thing_group_name="Group",
    thing_policy_name="ThingPolicy",
    tes_role_name="TesRole",
    tes_role_alias_name="TesAlias",
    provision=True,
)


def cloud() -> Cloud:
    c = Cloud(env=ENV)
    c.iot_policies["ThingPolicy"] = Policy("ThingPolicy", {"Statement": []})
    c.thing_groups["Group"] = ENV.arn("iot", "thinggroup/Group")
    c.roles["TesRole"] = Role("TesRole", f"arn:aws:iam::{ENV.account}:role/TesRole")
    c.role_aliases["TesAlias"] = c.roles["TesRole"].arn
    return c


def principal(*statements: dict[str, object]) -> list[Policy]:
    return [Policy("installer", {"Statement": list(statements)})]


def test_allow_all_replays_the_whole_sequence() -> None:
    result = provision(
        cloud(), ARGS, principal({"Effect": "Allow", "Action": "*", "Resource": "*"})
    )
    actions = [c.action for c, _, _ in result.calls]
    assert actions[:3] == ["iot:GetPolicy", "iot:DescribeEndpoint", "iot:DescribeEndpoint"]
    # TES certificate policy and role policy do not exist: created and attached
    assert actions[-9:] == [
        "iot:DescribeRoleAlias",
        "iot:GetPolicy",
        "iot:CreatePolicy",
        "iot:AttachPolicy",
        "iam:GetPolicy",
        "sts:GetCallerIdentity",
        "iam:GetPolicy",
        "iam:CreatePolicy",
        "iam:AttachRolePolicy",
    ]
    assert result.iot_policies_attached == ["ThingPolicy", "GreengrassTESCertificatePolicyTesAlias"]


def test_existing_policies_are_reused_not_created() -> None:
    c = cloud()
    c.iot_policies["GreengrassTESCertificatePolicyTesAlias"] = Policy("x", {"Statement": []})
    c.managed_policies[f"arn:aws:iam::{ENV.account}:policy/TesRoleAccess"] = Policy("y", {})
    result = provision(c, ARGS, principal({"Effect": "Allow", "Action": "*", "Resource": "*"}))
    actions = [c.action for c, _, _ in result.calls]
    assert "iot:CreatePolicy" not in actions and "iam:CreatePolicy" not in actions
    assert "iam:AttachRolePolicy" not in actions  # the Java only prints "please attach it"


def test_get_policy_denied_aborts_at_the_tes_certificate_policy() -> None:
    scoped = principal(
        {"Effect": "Allow", "NotAction": "iot:GetPolicy", "Resource": "*"},
        {
            "Effect": "Allow",
            "Action": "iot:GetPolicy",
            "Resource": ENV.arn("iot", "policy/ThingPolicy"),
        },
    )
    with pytest.raises(ProvisioningDenied) as denied:
        provision(cloud(), ARGS, scoped)
    assert str(denied.value).startswith(
        "ProvisioningDenied: iot:GetPolicy on "
        f"arn:aws:iot:{ENV.region}:{ENV.account}:policy/GreengrassTESCertificatePolicyTesAlias : "
        "no statement allows it"
    )


def test_iam_get_policy_denial_is_tolerated_but_create_policy_is_not() -> None:
    scoped = principal(
        {"Effect": "Allow", "Action": ["iot:*"], "Resource": "*"},
        {"Effect": "Deny", "Action": "iam:GetPolicy", "Resource": "*"},
    )
    with pytest.raises(ProvisioningDenied) as denied:
        provision(cloud(), ARGS, scoped)
    assert denied.value.call.action == "iam:CreatePolicy"
    assert denied.value.call.resource == f"arn:aws:iam::{ENV.account}:policy/TesRoleAccess"


def test_parse_installer_command_fills_the_device_name() -> None:
    args = parse_installer_command(
        "sudo -E java -jar Greengrass.jar --aws-region eu-west-1 --thing-name p-dev-<device-name> "
        "--tes-role-name R --provision true",
        "box-1",
    )
    assert args.thing_name == "p-dev-box-1" and args.tes_role_name == "R"
    assert args.tes_role_alias_name == "GreengrassV2TokenExchangeRoleAlias"  # installer default
    with pytest.raises(ProvisioningError, match="colon"):
        parse_installer_command("--aws-region r --thing-name a:b --provision true", "x")


def test_attach_thing_principal_needs_the_certificate_too() -> None:
    """AttachThingPrincipal names a thing and a certificate. The Service Authorization Reference
    (list_awsiot.html) lists ``thing`` as its resource, the IoT developer guide's "How AWS IoT
    works with IAM" table lists ``cert/cert-id``: a grant on the thing alone is not enough to
    rely on, so the replay authorizes the call on both."""
    only_thing = principal(
        {"Effect": "Allow", "NotAction": "iot:AttachThingPrincipal", "Resource": "*"},
        {
            "Effect": "Allow",
            "Action": "iot:AttachThingPrincipal",
            "Resource": ENV.arn("iot", "thing/dev-1"),
        },
    )
    with pytest.raises(ProvisioningDenied) as denied:
        provision(cloud(), ARGS, only_thing)
    assert denied.value.call.action == "iot:AttachThingPrincipal"
    assert ":cert/" in denied.value.call.resource


# ------------------------------------------------------------ installer details (issue 17)
def test_tolerated_iam_get_policy_denial_then_create_policy_on_an_existing_policy_fails() -> None:
    """DeviceProvisioningHelper.getPolicyArn tolerates an iam:GetPolicy "not authorized" and
    goes on to createAndAttachRolePolicy's iam:CreatePolicy. When ``<tesRoleName>Access``
    already exists, IAM CreatePolicy answers EntityAlreadyExists (409; botocore iam
    CreatePolicy errors), which nothing catches: the installer aborts."""
    c = cloud()
    c.managed_policies[f"arn:aws:iam::{ENV.account}:policy/TesRoleAccess"] = Policy("y", {})
    no_get = principal(
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "iam:GetPolicy", "Resource": "*"},
    )
    with pytest.raises(ProvisioningError) as failed:
        provision(c, ARGS, no_get)
    message = str(failed.value)
    assert "EntityAlreadyExists" in message
    assert f"arn:aws:iam::{ENV.account}:policy/TesRoleAccess" in message
    # with iam:GetPolicy allowed the same account provisions: the policy is found and reused
    result = provision(c, ARGS, principal({"Effect": "Allow", "Action": "*", "Resource": "*"}))
    assert "iam:CreatePolicy" not in [call.action for call, _, _ in result.calls]


COMMAND = (
    'sudo -E java -Droot="/greengrass/v2" -Dlog.store=FILE -jar ./lib/Greengrass.jar '
    "--aws-region eu-west-1 --thing-name t-<device-name> --provision true"
)


@pytest.mark.parametrize("flag", ["--bogus x", "--thing-nme x", "--provision-thing true", "x"])
def test_an_unknown_installer_argument_aborts(flag: str) -> None:
    """GreengrassSetup.parseArgs: an argument that is no known flag (or a stray value) hits
    ``default:`` and throws "Undefined command line argument"; main() exits with status 1."""
    with pytest.raises(ProvisioningError, match="Undefined command line argument"):
        parse_installer_command(f"{COMMAND} {flag}", "d")


def test_installer_flags_as_parse_args_reads_them() -> None:
    """JVM options before ``-jar`` are not the installer's; flags match case-insensitively
    (``arg.toLowerCase()``) with their short forms; a boolean flag followed by nothing or by
    another flag is true, otherwise ``Coerce.toBoolean`` of its value."""
    args = parse_installer_command(
        "java -Dlog.store=FILE -jar G.jar -AR eu-west-1 --Thing-Name a -tgn g -p "
        "--setup-system-service true",
        "d",
    )
    assert (args.region, args.thing_name, args.thing_group_name, args.provision) == (
        "eu-west-1",
        "a",
        "g",
        True,
    )
    assert parse_installer_command(f"{COMMAND.replace('true', 'yes')}", "d").provision
    assert not parse_installer_command(f"{COMMAND.replace('true', 'True')}", "d").provision
    with pytest.raises(ProvisioningError, match="Thing group name cannot contain colon"):
        parse_installer_command(f"{COMMAND} --thing-group-name a:b", "d")
