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
    (tes_role,) = [
        logical
        for logical, r in template["Resources"].items()
        if r["Type"] == "AWS::IAM::Role"
        and r["Properties"].get("RoleName") == "edge-ai-dev-GreengrassTokenExchangeRole"
    ]
    role = template["Resources"][tes_role]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "credentials.iot.amazonaws.com"
    }
    policy = [
        statement
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": tes_role} in r["Properties"]["Roles"]
        for statement in r["Properties"]["PolicyDocument"]["Statement"]
    ]
    by_sid = {s["Sid"]: s for s in policy}
    assert set(by_sid) == {"ComponentArtifacts", "CaptureUploads"}
    assert by_sid["ComponentArtifacts"]["Action"] == "s3:GetObject"
    # captures: PutObject only, into each device's own folder of the stage's one class
    assert by_sid["CaptureUploads"]["Action"] == "s3:PutObject"
    captures = json.dumps(by_sid["CaptureUploads"]["Resource"])
    assert "/captures/dev/default/${credentials-iot:ThingName}/*" in captures
    assert captures.count("captures/") == 1
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


def test_device_policies_are_released_before_they_are_deleted(dev) -> None:
    """A device's certificate holds both IoT policies (the installer attaches them), and
    AWS::IoT::Policy's delete handler does not detach (its registry schema's delete handler
    permissions, as cfn-lint ships them: no iot:DetachPolicy, no iot:ListTargetsForPolicy),
    while DeletePolicy refuses an attached policy (botocore iot DeletePolicy,
    DeleteConflictException). So the stack carries a Custom::IotPolicyRelease that names both
    policies and depends on them (CloudFormation deletes it first), and whose Delete detaches
    and deletes them; the policies are retained on stack delete (nothing left for
    CloudFormation to delete), deleted when their own create rolls back, and kept when a rename
    replaces them, so running devices keep the policy they hold."""
    template = dev.template_json("dev/Devices")
    policies = {
        logical: r
        for logical, r in template["Resources"].items()
        if r["Type"] == "AWS::IoT::Policy"
    }
    assert len(policies) == 2
    (release,) = [
        r for r in template["Resources"].values() if r["Type"] == "Custom::IotPolicyRelease"
    ]
    named = json.loads(json.dumps(release["Properties"]["Policies"]))
    assert sorted(json.dumps(v) for v in named["Fn::Join"][1] if isinstance(v, dict)) == sorted(
        json.dumps({"Ref": logical}) for logical in policies
    ), named
    for logical, policy in policies.items():
        assert policy.get("DeletionPolicy") == "RetainExceptOnCreate", logical
        assert policy.get("UpdateReplacePolicy") == "Retain", logical


def test_named_core_device_resources_keep_their_deployed_logical_ids(dev) -> None:
    """CloudFormation replaces a resource whose logical ID changes, and these have fixed names,
    so a replacement fails on the name (IoT policies: it would strand every device holding
    them). The IDs date from before the small constructs (docs/CORE_DEVICE.md#logical-ids)."""
    resources = dev.template_json("dev/Devices")["Resources"]
    named = {
        logical: resource["Type"]
        for logical, resource in resources.items()
        if logical.startswith("CoreDevices") and "PolicyRelease" not in logical
    }
    assert named == {
        "CoreDevicesThingGroup63E93CD0": "AWS::IoT::ThingGroup",
        "CoreDevicesTokenExchangeRole669E2404": "AWS::IAM::Role",
        "CoreDevicesTokenExchangeRoleDefaultPolicyBC085160": "AWS::IAM::Policy",
        "CoreDevicesTokenExchangeRoleAccessF013774A": "AWS::IAM::ManagedPolicy",
        "CoreDevicesTokenExchangeRoleAlias0D598EC9": "AWS::IoT::RoleAlias",
        "CoreDevicesCoreDevicePolicyAB8879DE": "AWS::IoT::Policy",
        "CoreDevicesTesCertificatePolicy48B6CF3F": "AWS::IoT::Policy",
        "CoreDevicesInstallerPolicy176C4FFD": "AWS::IAM::ManagedPolicy",
    }
