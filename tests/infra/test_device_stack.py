from __future__ import annotations

import json

from aws_cdk.assertions import Match

from tests.infra.rendering import render


def statements(template, type_: str) -> list[dict]:
    found = []
    for resource in template["Resources"].values():
        if resource["Type"] == type_:
            found.extend(resource["Properties"]["PolicyDocument"]["Statement"])
    return found


def test_thing_group_and_role_alias(dev) -> None:
    template = dev.template("dev/Devices")
    template.has_resource_properties(
        "AWS::IoT::ThingGroup", {"ThingGroupName": "EdgeAiDevCoreDevices"}
    )
    template.has_resource_properties(
        "AWS::IoT::RoleAlias",
        {
            "RoleAlias": "edge-ai-dev-GreengrassTokenExchangeRoleAlias",
            "CredentialDurationSeconds": 3600,
        },
    )


def test_token_exchange_role_reads_only_device_prefixes_and_writes_greengrass_logs(dev) -> None:
    template = dev.template_json("dev/Devices")
    roles = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Role"]
    assert roles[0]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "credentials.iot.amazonaws.com"
    }
    policy = statements(template, "AWS::IAM::Policy")
    by_sid = {s["Sid"]: s for s in policy}
    assert set(by_sid) == {"ComponentArtifacts"}
    assert by_sid["ComponentArtifacts"]["Action"] == "s3:GetObject"
    resources = json.dumps(by_sid["ComponentArtifacts"]["Resource"])
    assert "/packages/*" in resources and "/components/*" in resources
    assert "/training/" not in resources and "/compiled/" not in resources
    access = next(
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::ManagedPolicy"
        and r["Properties"]["ManagedPolicyName"] == "edge-ai-dev-GreengrassTokenExchangeRoleAccess"
    )
    access_by_sid = {s["Sid"]: s for s in access["Properties"]["PolicyDocument"]["Statement"]}
    assert set(access_by_sid) == {"GreengrassLogs", "ArtifactBucketLocation"}
    assert "/aws/greengrass/" in json.dumps(access_by_sid["GreengrassLogs"]["Resource"])
    assert len(access["Properties"]["Roles"]) == 1


def test_core_device_policy_scopes_publishing_to_the_device_itself(dev) -> None:
    template = dev.template_json("dev/Devices")
    iot_policy = next(r for r in template["Resources"].values() if r["Type"] == "AWS::IoT::Policy")
    rendered = json.dumps(iot_policy["Properties"]["PolicyDocument"])
    publish = next(
        s
        for s in iot_policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Action"] == ["iot:Publish", "iot:Receive"]
    )
    for resource in publish["Resource"]:
        assert "${iot:Connection.Thing.ThingName}" in json.dumps(resource)
    assert "edge-ai/${iot:Connection.Thing.ThingName}/*" in rendered
    assert "iot:AssumeRoleWithCertificate" in rendered
    assert '"iot:*"' not in rendered


def test_installer_policy_has_no_iam_user_and_scopes_things_to_the_prefix(dev) -> None:
    template = dev.template_json("dev/Devices")
    types = {r["Type"] for r in template["Resources"].values()}
    assert "AWS::IAM::User" not in types and "AWS::IAM::AccessKey" not in types
    managed = next(
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::ManagedPolicy"
        and r["Properties"]["ManagedPolicyName"] == "edge-ai-dev-GreengrassInstallerPolicy"
    )
    by_sid = {s["Sid"]: s for s in managed["Properties"]["PolicyDocument"]["Statement"]}
    assert by_sid["AccountWide"]["Resource"] == "*"
    assert set(by_sid["AccountWide"]["Action"]) == {
        "iot:DescribeEndpoint",
        "iot:CreateKeysAndCertificate",
        "sts:GetCallerIdentity",
    }
    assert ":thing/edge-ai-dev-*" in json.dumps(by_sid["ThingsOfThisStack"]["Resource"])
    for statement in by_sid.values():
        assert "iam:PassRole" not in statement["Action"]
        assert "iam:CreateRole" not in statement["Action"]


def test_outputs_give_the_exact_installer_command(dev) -> None:
    outputs = dev.template_json("dev/Devices")["Outputs"]
    command = render(outputs["InstallerCommand"]["Value"])
    assert "<AWS::Region>" in command
    for expected in (
        "--thing-group-name EdgeAiDevCoreDevices",
        "--thing-policy-name edge-ai-dev-GreengrassCoreDevicePolicy",
        "--tes-role-name edge-ai-dev-GreengrassTokenExchangeRole",
        "--tes-role-alias-name edge-ai-dev-GreengrassTokenExchangeRoleAlias",
        "--thing-name edge-ai-dev-<device-name>",
        "--provision true",
    ):
        assert expected in command
    dev.template("dev/Devices").has_output("InstallerPolicyArn", Match.any_value())
