"""The device stack's IAM and IoT policies against the calls AWS's own code makes.

The stacks are deployed into device_sim's simulated account (``tests.infra.conftest.deploy``:
intrinsics resolved by ``device_sim.assembly``), every request is decided by
``device_sim.iam`` and the installer's ``--provision true`` calls are replayed by
``device_sim.provision``, which cites the nucleus source for each call. The resource each
IAM action is authorized against follows the Service Authorization Reference
(https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsiot.html,
list_awsidentityandaccessmanagementiam.html, list_amazons3.html).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from device_sim.assembly import Cloud
from device_sim.dataplane import component_arn
from device_sim.iam import ContextValue, Decision, Policy, Request, evaluate
from device_sim.provision import installer_principal, parse_installer_command, provision

STAGES = ["dev", "prod"]
DEVICE = "device-1"


@dataclass
class Deployed:
    stage: str
    cloud: Cloud

    @property
    def prefix(self) -> str:
        return f"edge-ai-{self.stage}"

    def iot(self, resource: str) -> str:
        return self.cloud.env.arn("iot", resource)

    def iam(self, resource: str) -> str:
        return f"arn:{self.cloud.env.partition}:iam::{self.cloud.env.account}:{resource}"


@pytest.fixture(params=STAGES)
def deployed(request: pytest.FixtureRequest) -> Deployed:
    return Deployed(request.param, request.getfixturevalue(f"{request.param}_cloud"))


def decide(
    policies: list[Policy],
    action: str,
    resource: str,
    context: dict[str, ContextValue] | None = None,
) -> Decision:
    return evaluate(policies, Request(action, resource, context or {}))


def tes_role_policies(d: Deployed) -> list[Policy]:
    return d.cloud.role_policies(f"{d.prefix}-GreengrassTokenExchangeRole")


def test_tes_role_allows_the_calls_of_an_artifact_download(deployed: Deployed) -> None:
    """Before every download the nucleus asks for the bucket's region with
    ``s3:GetBucketLocation`` (``S3Downloader.getRegionClientForBucket``), then reads the size
    with ``HeadObject`` (``S3Downloader.getDownloadSize``; authorized as ``s3:GetObject``) and
    the bytes with ``GetObject`` (``S3Downloader.download``). A denied GetBucketLocation fails
    the deployment. GetBucketLocation is authorized against the bucket ARN, object reads
    against the object ARN (Service Authorization Reference, Amazon S3)."""
    policies = tes_role_policies(deployed)
    bucket = deployed.cloud.output("Artifacts", "ArtifactBucketName")
    bucket_arn = f"arn:{deployed.cloud.env.partition}:s3:::{bucket}"
    calls = [
        ("s3:GetBucketLocation", bucket_arn),
        ("s3:GetObject", f"{bucket_arn}/components/abc/artifact.zip"),
        ("s3:GetObject", f"{bucket_arn}/packages/abc/model.zip"),
    ]
    for action, resource in calls:
        decision = decide(policies, action, resource)
        assert decision.allowed, decision.reason
    # ...and nothing else of the bucket.
    assert not decide(policies, "s3:GetObject", f"{bucket_arn}/training/data.zip").allowed
    assert not decide(policies, "s3:ListBucket", bucket_arn).allowed
    assert not decide(policies, "s3:GetBucketLocation", "arn:aws:s3:::other-bucket").allowed


def test_installer_policy_lets_the_nucleus_provision_a_device(deployed: Deployed) -> None:
    """The stack's InstallerCommand, run by a principal with only the installer policy, gets
    through every call of GreengrassSetup.provision (device_sim.provision raises
    ProvisioningDenied at the first denial the Java does not catch)."""
    d = deployed
    args = parse_installer_command(str(d.cloud.output("Devices", "InstallerCommand")), DEVICE)
    # The command names this stack's resources, which CloudFormation created beforehand.
    assert args.thing_name == f"{d.prefix}-{DEVICE}"
    assert args.thing_policy_name in d.cloud.iot_policies
    assert args.thing_group_name in d.cloud.thing_groups
    assert args.tes_role_alias_name in d.cloud.role_aliases
    result = provision(d.cloud, args, installer_principal(d.cloud))
    calls = [(c.action, c.resource) for c, _, _ in result.calls]
    # Every call was allowed, tolerated lookups (iam:GetPolicy) included.
    assert all(decision.allowed for _, decision, _ in result.calls), result.transcript()
    # AttachThingPrincipal on the thing and on the new certificate, both allowed.
    assert ("iot:AttachThingPrincipal", result.thing_arn) in calls
    assert ("iot:AttachThingPrincipal", result.certificate_arn) in calls
    actions = [action for action, _ in calls]
    # The stack created both policies, the group and the alias, so the installer only looks
    # them up and attaches.
    assert "iot:CreatePolicy" not in actions
    assert "iam:CreatePolicy" not in actions and "iam:AttachRolePolicy" not in actions
    assert "iot:CreateThingGroup" not in actions and "iot:CreateRoleAlias" not in actions


def test_installer_cannot_modify_the_role_or_policies_cloudformation_owns(
    deployed: Deployed,
) -> None:
    d = deployed
    policies = installer_principal(d.cloud)
    role = d.iam(f"role/{d.prefix}-GreengrassTokenExchangeRole")
    access = d.iam(f"policy/{d.prefix}-GreengrassTokenExchangeRoleAccess")
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
        ("iot:CreatePolicyVersion", d.iot(f"policy/{d.prefix}-GreengrassCoreDevicePolicy")),
        ("iot:CreateRoleAlias", d.iot(f"rolealias/{d.prefix}-GreengrassTokenExchangeRoleAlias")),
        ("iot:CreateThingGroup", d.iot("thinggroup/other")),
        ("iot:CreateThing", d.iot("thing/someone-else")),
    ]
    for action, resource in forbidden:
        assert not decide(policies, action, resource).allowed, (action, resource)


def test_stack_creates_the_policies_the_installer_looks_for(deployed: Deployed) -> None:
    """Same names and the same grant as the installer would create
    (DeviceProvisioningHelper.setupIoTRoleForTes; createAndAttachRolePolicy)."""
    d = deployed
    alias = f"{d.prefix}-GreengrassTokenExchangeRoleAlias"
    tes_policy = d.cloud.iot_policies[f"GreengrassTESCertificatePolicy{alias}"]
    assert tes_policy.document == {
        "Version": "2012-10-17",
        "Statement": {
            "Effect": "Allow",
            "Action": "iot:AssumeRoleWithCertificate",
            "Resource": d.iot(f"rolealias/{alias}"),
        },
    }
    access = d.iam(f"policy/{d.prefix}-GreengrassTokenExchangeRoleAccess")
    assert access in d.cloud.managed_policies
    role_policies = tes_role_policies(d)
    assert d.cloud.managed_policies[access] in role_policies
    log_group = d.cloud.env.arn("logs", "log-group:/aws/greengrass/UserComponent")
    for action in ("logs:CreateLogGroup", "logs:DescribeLogStreams"):
        assert decide(role_policies, action, log_group).allowed, action
    assert decide(
        role_policies, "logs:PutLogEvents", f"{log_group}:log-stream:2026/01/01/thing/x"
    ).allowed
    assert not decide(role_policies, "logs:PutLogEvents", "arn:aws:logs:*:*:log-group:x").allowed


def test_device_certificate_policies_allow_the_greengrass_data_plane(deployed: Deployed) -> None:
    """The nucleus's Greengrass data-plane calls are authorized against the IoT policies on the
    device certificate, both of which the installer attaches (developer guide, "Device
    authentication and authorization for AWS IoT Greengrass"), each on the resource
    device_sim/dataplane.py names with its nucleus caller: GetComponentVersionArtifact on a
    public component version (GreengrassRepositoryDownloader: a public component's artifacts,
    LogManager here), ResolveComponentCandidates on a component,
    ListThingGroupsForCoreDevice on the core device, GetDeploymentConfiguration on a
    deployment. Without one, the step that needs it fails on a real device."""
    d = deployed
    env = d.cloud.env
    alias = f"{d.prefix}-GreengrassTokenExchangeRoleAlias"
    policies = [
        d.cloud.iot_policies[f"{d.prefix}-GreengrassCoreDevicePolicy"],
        d.cloud.iot_policies[f"GreengrassTESCertificatePolicy{alias}"],
    ]
    log_manager = component_arn(env, "aws.greengrass.LogManager", True)
    calls = [
        ("greengrass:GetComponentVersionArtifact", f"{log_manager}:versions:2.3.7"),
        ("greengrass:ResolveComponentCandidates", log_manager),
        (
            "greengrass:ResolveComponentCandidates",
            component_arn(env, f"com.example.edgeai.{d.stage}.Model", False),
        ),
        (
            "greengrass:ListThingGroupsForCoreDevice",
            env.arn("greengrass", f"coreDevices:{d.prefix}-{DEVICE}"),
        ),
        ("greengrass:GetDeploymentConfiguration", env.arn("greengrass", "deployments:0f1e2d3c")),
    ]
    for action, resource in calls:
        decision = decide(policies, action, resource)
        assert decision.allowed, (action, resource, decision.reason)
    # The policies grant the data plane, not the Greengrass control plane.
    assert not decide(policies, "greengrass:CreateDeployment", "*").allowed


def connection_context(client_id: str, thing: str) -> dict[str, ContextValue]:
    """The policy variables IoT Core resolves for one MQTT connection: the thing name only when
    the client ID is the thing name (AWS IoT developer guide, "Thing policy variables";
    docs/CORE_DEVICE.md#extra-mqtt-connections), the client ID always
    (basic-policy-variables.html)."""
    context: dict[str, ContextValue] = {"iot:ClientId": client_id}
    if client_id == thing:
        context["iot:Connection.Thing.ThingName"] = thing
    return context


def test_iot_policy_serves_every_connection_the_nucleus_opens(deployed: Deployed) -> None:
    """The nucleus's first connection and its extra ``<thing>#<n>`` ones (aws-greengrass-nucleus
    v2.18.2 mqttclient/MqttClient.java, getNewMqttClient;
    docs/CORE_DEVICE.md#extra-mqtt-connections)."""
    d = deployed
    policy = [d.cloud.iot_policies[f"{d.prefix}-GreengrassCoreDevicePolicy"]]
    thing = f"{d.prefix}-{DEVICE}"
    for client_id in (thing, f"{thing}#2", f"{thing}#3"):
        context = connection_context(client_id, thing)
        for action, resource in [
            ("iot:Connect", d.iot(f"client/{client_id}")),
            ("iot:Publish", d.iot(f"topic/$aws/things/{thing}/jobs/get")),
            ("iot:Receive", d.iot(f"topic/$aws/things/{thing}/jobs/notify-next")),
            ("iot:Subscribe", d.iot(f"topicfilter/$aws/things/{thing}/jobs/notify-next")),
            ("iot:Publish", d.iot(f"topic/edge-ai/{thing}/predictions")),
        ]:
            decision = decide(policy, action, resource, context)
            assert decision.allowed, (client_id, action, resource, decision.reason)
        # Never outside this stack's devices.
        for action, resource in [
            ("iot:Connect", d.iot("client/someone-else")),
            ("iot:Connect", d.iot("client/someone-else#2")),
            ("iot:Publish", d.iot("topic/$aws/things/someone-else/jobs/get")),
            ("iot:Publish", d.iot("topic/edge-ai/someone-else/predictions")),
            ("iot:Subscribe", d.iot("topicfilter/#")),
        ]:
            assert not decide(policy, action, resource, context).allowed, (client_id, resource)
    # The first connection, the one the thing variable resolves on, is held to its own thing.
    first = connection_context(thing, thing)
    other = f"{d.prefix}-other"
    assert not decide(policy, "iot:Connect", d.iot(f"client/{other}"), first).allowed
