"""The device stack's IAM and IoT policies against the calls AWS's own code makes.

Each call list below is read from the Greengrass nucleus source
(github.com/aws-greengrass/aws-greengrass-nucleus) and cited at the call; the resource each
IAM action is authorized against follows the Service Authorization Reference
(https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsiot.html,
list_awsidentityandaccessmanagementiam.html, list_amazons3.html).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.iam_eval import (
    ACCOUNT,
    BUCKET,
    PARTITION,
    REGION,
    Resolver,
    evaluate,
    policies_of_role,
)

STAGES = ["dev", "prod"]


def _logical_id(template: dict[str, Any], type_: str, **props: str) -> str:
    matches = [
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == type_
        and all(resource["Properties"].get(k) == v for k, v in props.items())
    ]
    assert len(matches) == 1, (type_, props, matches)
    return matches[0]


@pytest.fixture(params=STAGES)
def devices(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    synthesized = request.getfixturevalue(request.param)
    return request.param, synthesized.template_json(f"{request.param}/Devices")


def tes_role_statements(stage: str, template: dict[str, Any]) -> list[dict[str, Any]]:
    role = _logical_id(
        template, "AWS::IAM::Role", RoleName=f"edge-ai-{stage}-GreengrassTokenExchangeRole"
    )
    return policies_of_role(template, role)


def test_tes_role_allows_the_calls_of_an_artifact_download(devices) -> None:
    """Before every download the nucleus asks for the bucket's region with
    ``s3:GetBucketLocation`` (``S3Downloader.getRegionClientForBucket``), then reads the size
    with ``HeadObject`` (``S3Downloader.getDownloadSize``; authorized as ``s3:GetObject``) and
    the bytes with ``GetObject`` (``S3Downloader.download``). A denied GetBucketLocation fails
    the deployment. GetBucketLocation is authorized against the bucket ARN, object reads
    against the object ARN (Service Authorization Reference, Amazon S3)."""
    stage, template = devices
    statements = tes_role_statements(stage, template)
    bucket_arn = f"arn:{PARTITION}:s3:::{BUCKET}"
    calls = [
        ("s3:GetBucketLocation", bucket_arn),
        ("s3:GetObject", f"{bucket_arn}/components/abc/artifact.zip"),
        ("s3:GetObject", f"{bucket_arn}/packages/abc/model.zip"),
    ]
    for action, resource in calls:
        decision = evaluate(statements, action, resource)
        assert decision.allowed, decision.reason
    # ...and nothing else of the bucket.
    assert not evaluate(statements, "s3:GetObject", f"{bucket_arn}/training/data.zip").allowed
    assert not evaluate(statements, "s3:ListBucket", bucket_arn).allowed
    assert not evaluate(statements, "s3:GetBucketLocation", "arn:aws:s3:::other-bucket").allowed


THING = "device-1"
CERT_ID = "0123456789abcdef"


class ProvisioningAborted(AssertionError):
    pass


def _installer_statements(stage: str, template: dict[str, Any]) -> list[dict[str, Any]]:
    logical_id = _logical_id(
        template,
        "AWS::IAM::ManagedPolicy",
        ManagedPolicyName=f"edge-ai-{stage}-GreengrassInstallerPolicy",
    )
    resolver = Resolver(template)
    document = resolver.resolve(template["Resources"][logical_id]["Properties"]["PolicyDocument"])
    return list(document["Statement"])


def _names_of(template: dict[str, Any], type_: str, key: str) -> set[str]:
    resolver = Resolver(template)
    return {
        resolver.resolve(r["Properties"][key])
        for r in template["Resources"].values()
        if r["Type"] == type_
    }


def replay_provisioning(stage: str, template: dict[str, Any]) -> list[tuple[str, str]]:
    """The AWS calls of ``java -jar Greengrass.jar --provision true`` with the arguments of the
    stack's InstallerCommand output, in order, each checked against the installer policy.

    Order and error handling follow ``easysetup/GreengrassSetup.java`` (``provision``) and
    ``easysetup/DeviceProvisioningHelper.java``: ``createThing``, ``addThingToGroup``,
    ``setupIoTRoleForTes``, ``createAndAttachRolePolicy`` (with ``getPolicyArn``). Whether a
    looked-up resource exists is read from the template (CloudFormation created it before the
    installer runs). Returns the calls made; raises :class:`ProvisioningAborted` at the first
    call whose denial the nucleus does not catch.
    """
    prefix = f"edge-ai-{stage}"
    iot = f"arn:{PARTITION}:iot:{REGION}:{ACCOUNT}"
    thing_name = f"{prefix}-{THING}"
    thing_arn = f"{iot}:thing/{thing_name}"
    cert_arn = f"{iot}:cert/{CERT_ID}"
    thing_policy = f"{prefix}-GreengrassCoreDevicePolicy"
    thing_group = "EdgeAiDevCoreDevices" if stage == "dev" else "EdgeAiProdCoreDevices"
    role_name = f"{prefix}-GreengrassTokenExchangeRole"
    role_alias = f"{prefix}-GreengrassTokenExchangeRoleAlias"
    statements = _installer_statements(stage, template)
    iot_policies = _names_of(template, "AWS::IoT::Policy", "PolicyName")
    iam_policies = _names_of(template, "AWS::IAM::ManagedPolicy", "ManagedPolicyName")
    groups = _names_of(template, "AWS::IoT::ThingGroup", "ThingGroupName")
    aliases = _names_of(template, "AWS::IoT::RoleAlias", "RoleAlias")
    assert thing_group in groups
    calls: list[tuple[str, str]] = []

    def call(action: str, *resources: str, tolerated: bool = False) -> bool:
        """One API call; every resource it is authorized against must be allowed."""
        for resource in resources:
            calls.append((action, resource))
            decision = evaluate(statements, action, resource)
            if not decision.allowed:
                if tolerated:
                    return False
                raise ProvisioningAborted(f"{action} on {resource}: {decision.reason}")
        return True

    # DeviceProvisioningHelper.createThing: GetPolicy catches only ResourceNotFoundException.
    call("iot:GetPolicy", f"{iot}:policy/{thing_policy}")
    if thing_policy not in iot_policies:
        call("iot:CreatePolicy", f"{iot}:policy/{thing_policy}")
    call("iot:DescribeEndpoint", "*")  # iot:Data-ATS
    call("iot:DescribeEndpoint", "*")  # iot:CredentialProvider
    call("iot:CreateKeysAndCertificate", "*")
    call("iot:AttachPolicy", cert_arn)
    call("iot:CreateThing", thing_arn)
    # AttachThingPrincipal: checked against the thing and the certificate (either may be the
    # resource the reference names; requiring both is the conservative reading).
    call("iot:AttachThingPrincipal", thing_arn, cert_arn)
    # addThingToGroup: DescribeThingGroup catches only ResourceNotFoundException.
    call("iot:DescribeThingGroup", f"{iot}:thinggroup/{thing_group}")
    call("iot:AddThingToThingGroup", thing_arn, f"{iot}:thinggroup/{thing_group}")
    # setupIoTRoleForTes: DescribeRoleAlias, then the alias's certificate policy.
    call("iot:DescribeRoleAlias", f"{iot}:rolealias/{role_alias}")
    if role_alias not in aliases:
        raise ProvisioningAborted("the role alias does not exist; the installer would create it")
    tes_policy = f"GreengrassTESCertificatePolicy{role_alias}"
    call("iot:GetPolicy", f"{iot}:policy/{tes_policy}")
    if tes_policy not in iot_policies:
        call("iot:CreatePolicy", f"{iot}:policy/{tes_policy}")
    call("iot:AttachPolicy", cert_arn)
    # createAndAttachRolePolicy -> getPolicyArn: the AWS-managed ARN first, then the
    # account's; "not authorized to perform" is tolerated on both, NoSuchEntity too.
    access_policy = f"{role_name}Access"
    call("iam:GetPolicy", f"arn:{PARTITION}:iam::aws:policy/{access_policy}", tolerated=True)
    call("sts:GetCallerIdentity", "*")
    found = call(
        "iam:GetPolicy",
        f"arn:{PARTITION}:iam::{ACCOUNT}:policy/{access_policy}",
        tolerated=True,
    ) and (access_policy in iam_policies)
    if not found:
        # Only when the policy was not found: CreatePolicy, then AttachRolePolicy.
        call("iam:CreatePolicy", f"arn:{PARTITION}:iam::{ACCOUNT}:policy/{access_policy}")
        call("iam:AttachRolePolicy", f"arn:{PARTITION}:iam::{ACCOUNT}:role/{role_name}")
    return calls


def test_installer_policy_lets_the_nucleus_provision_a_device(devices) -> None:
    stage, template = devices
    calls = replay_provisioning(stage, template)
    actions = [action for action, _ in calls]
    # The stack created both policies, so the installer only looks them up and attaches.
    assert "iot:CreatePolicy" not in actions
    assert "iam:CreatePolicy" not in actions and "iam:AttachRolePolicy" not in actions


def test_installer_cannot_modify_the_role_or_policies_cloudformation_owns(devices) -> None:
    stage, template = devices
    statements = _installer_statements(stage, template)
    iam_arn = f"arn:{PARTITION}:iam::{ACCOUNT}"
    iot = f"arn:{PARTITION}:iot:{REGION}:{ACCOUNT}"
    role = f"{iam_arn}:role/edge-ai-{stage}-GreengrassTokenExchangeRole"
    access = f"{iam_arn}:policy/edge-ai-{stage}-GreengrassTokenExchangeRoleAccess"
    forbidden = [
        ("iam:AttachRolePolicy", role),
        ("iam:PutRolePolicy", role),
        ("iam:DetachRolePolicy", role),
        ("iam:UpdateAssumeRolePolicy", role),
        ("iam:PassRole", role),
        ("iam:CreateRole", role),
        ("iam:CreatePolicy", access),
        ("iam:CreatePolicyVersion", access),
        ("iot:CreatePolicy", "*"),
        ("iot:CreatePolicyVersion", f"{iot}:policy/edge-ai-{stage}-GreengrassCoreDevicePolicy"),
        (
            "iot:CreateRoleAlias",
            f"{iot}:rolealias/edge-ai-{stage}-GreengrassTokenExchangeRoleAlias",
        ),
        ("iot:CreateThingGroup", f"{iot}:thinggroup/other"),
        ("iot:CreateThing", f"{iot}:thing/someone-else"),
    ]
    for action, resource in forbidden:
        assert not evaluate(statements, action, resource).allowed, (action, resource)


def test_stack_creates_the_policies_the_installer_looks_for(devices) -> None:
    """Same names and the same grant as the installer would create
    (DeviceProvisioningHelper.setupIoTRoleForTes; createAndAttachRolePolicy)."""
    stage, template = devices
    resolver = Resolver(template)
    alias = f"edge-ai-{stage}-GreengrassTokenExchangeRoleAlias"
    tes_policy = _logical_id(
        template, "AWS::IoT::Policy", PolicyName=f"GreengrassTESCertificatePolicy{alias}"
    )
    document = resolver.resolve(template["Resources"][tes_policy]["Properties"]["PolicyDocument"])
    assert document == {
        "Version": "2012-10-17",
        "Statement": {
            "Effect": "Allow",
            "Action": "iot:AssumeRoleWithCertificate",
            "Resource": f"arn:{PARTITION}:iot:{REGION}:{ACCOUNT}:rolealias/{alias}",
        },
    }
    role_statements = tes_role_statements(stage, template)
    log_group = f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT}:log-group:/aws/greengrass/UserComponent"
    for action in ("logs:CreateLogGroup", "logs:DescribeLogStreams"):
        assert evaluate(role_statements, action, log_group).allowed, action
    assert evaluate(
        role_statements, "logs:PutLogEvents", f"{log_group}:log-stream:2026/01/01/thing/x"
    ).allowed
    assert not evaluate(
        role_statements, "logs:PutLogEvents", "arn:aws:logs:*:*:log-group:x"
    ).allowed


def _iot_policy_for_connection(
    template: dict[str, Any], policy_name: str, client_id: str, thing: str
) -> list[dict[str, Any]]:
    """The core-device IoT policy as IoT Core evaluates it for one MQTT connection.

    Non-exclusive thing association (what the installer creates: DeviceProvisioningHelper
    .createThing calls AttachThingPrincipal without a thingPrincipalType) resolves
    ``${iot:Connection.Thing.ThingName}`` only when the client ID is the thing name
    (https://docs.aws.amazon.com/iot/latest/developerguide/thing-policy-variables.html); on
    any other connection the variable matches nothing. ``${iot:ClientId}`` is the client ID
    (basic-policy-variables.html)."""
    (policy,) = [
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IoT::Policy" and r["Properties"]["PolicyName"] == policy_name
    ]
    text = json.dumps(Resolver(template).resolve(policy["Properties"]["PolicyDocument"]))
    resolved = thing if client_id == thing else "\\u0000unresolved"
    text = text.replace("${iot:Connection.Thing.ThingName}", resolved)
    text = text.replace("${iot:ClientId}", client_id)
    return list(json.loads(text)["Statement"])


def test_iot_policy_serves_every_connection_the_nucleus_opens(devices) -> None:
    """The nucleus names its first MQTT connection after the thing and each further one
    ``<thing>#<n>`` (mqttclient/MqttClient.java, getNewMqttClient: thingName + "#" + (n + 1));
    it opens one when the others carry MAX_SUBSCRIPTIONS_PER_CONNECTION (50) subscriptions and
    sends publishes round-robin over all of them (getConnection)."""
    stage, template = devices
    policy = f"edge-ai-{stage}-GreengrassCoreDevicePolicy"
    iot = f"arn:{PARTITION}:iot:{REGION}:{ACCOUNT}"
    thing = f"edge-ai-{stage}-{THING}"
    for client_id in (thing, f"{thing}#2", f"{thing}#3"):
        statements = _iot_policy_for_connection(template, policy, client_id, thing)
        for action, resource in [
            ("iot:Connect", f"{iot}:client/{client_id}"),
            ("iot:Publish", f"{iot}:topic/$aws/things/{thing}/jobs/get"),
            ("iot:Receive", f"{iot}:topic/$aws/things/{thing}/jobs/notify-next"),
            ("iot:Subscribe", f"{iot}:topicfilter/$aws/things/{thing}/jobs/notify-next"),
            ("iot:Publish", f"{iot}:topic/edge-ai/{thing}/predictions"),
        ]:
            decision = evaluate(statements, action, resource)
            assert decision.allowed, (client_id, action, resource, decision.reason)
        # Never outside this stack's devices.
        for action, resource in [
            ("iot:Connect", f"{iot}:client/someone-else"),
            ("iot:Connect", f"{iot}:client/someone-else#2"),
            ("iot:Publish", f"{iot}:topic/$aws/things/someone-else/jobs/get"),
            ("iot:Publish", f"{iot}:topic/edge-ai/someone-else/predictions"),
            ("iot:Subscribe", f"{iot}:topicfilter/#"),
        ]:
            assert not evaluate(statements, action, resource).allowed, (client_id, resource)
    # The first connection, the one the thing variable resolves on, is held to its own thing.
    first = _iot_policy_for_connection(template, policy, thing, thing)
    other = f"edge-ai-{stage}-other"
    assert not evaluate(first, "iot:Connect", f"{iot}:client/{other}").allowed
