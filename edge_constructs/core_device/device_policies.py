"""The two AWS IoT policies the Greengrass installer attaches to a new device's certificate:
the core-device policy and ``GreengrassTESCertificatePolicy<role alias>``.
Why each statement: docs/CORE_DEVICE.md#the-core-device-iot-policy."""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_iot as iot
from constructs import Construct

from device_contract import topics as device_topics
from edge_constructs.core_device.policy_document import POLICY_VERSION, IotPolicyDocument

# Resolves only on the connection whose client ID is the thing name (AWS IoT developer guide,
# "Thing policy variables"): docs/CORE_DEVICE.md#extra-mqtt-connections.
OWN_THING = "${iot:Connection.Thing.ThingName}"
# The nucleus's data-plane calls (developer guide, "Minimal AWS IoT policy for AWS IoT
# Greengrass V2 core devices"); device_sim/dataplane.py names the nucleus code behind each.
GREENGRASS_DATA_PLANE_ACTIONS = (
    "greengrass:GetComponentVersionArtifact",
    "greengrass:ResolveComponentCandidates",
    "greengrass:GetDeploymentConfiguration",
    "greengrass:ListThingGroupsForCoreDevice",
)


def core_device_policy_document(
    *, name_prefix: str, publish_topic_prefix: str, role_alias_arn: str
) -> IotPolicyDocument:
    """The core-device policy: MQTT for the device's own thing on its first connection, for
    this stack's things on the nucleus's extra connections (``<thing>#<n>``), the role alias,
    and the Greengrass data plane."""
    iot_arn = f"arn:{Aws.PARTITION}:iot:{Aws.REGION}:{Aws.ACCOUNT_ID}"
    document = IotPolicyDocument()
    # aws-greengrass-nucleus v2.18.2 mqttclient/MqttClient.java, getNewMqttClient: "<thing>#<n>".
    for scope, things, client in (
        ("OwnThing", OWN_THING, OWN_THING),
        ("ExtraConnections", f"{name_prefix}-*", f"{name_prefix}-*#*"),
    ):
        topics = [
            f"$aws/things/{things}/*",
            device_topics.thing_topics(publish_topic_prefix, things),
        ]
        document.add_statement(
            sid=f"{scope}Connect", actions=["iot:Connect"], resources=[f"{iot_arn}:client/{client}"]
        )
        document.add_statement(
            sid=f"{scope}Topics",
            actions=["iot:Publish", "iot:Receive"],
            resources=[f"{iot_arn}:topic/{topic}" for topic in topics],
        )
        document.add_statement(
            sid=f"{scope}TopicFilters",
            actions=["iot:Subscribe"],
            resources=[f"{iot_arn}:topicfilter/{topic}" for topic in topics],
        )
    document.add_statement(actions=["iot:AssumeRoleWithCertificate"], resources=[role_alias_arn])
    document.add_statement(actions=list(GREENGRASS_DATA_PLANE_ACTIONS), resources=["*"])
    return document


class DevicePolicies(Construct):
    """``<name_prefix>-GreengrassCoreDevicePolicy`` and the TES certificate policy.

    Props:
        name_prefix: prefix of the core-device policy's name and of this stack's thing names.
        publish_topic_prefix: devices publish under ``<prefix>/<thing name>/...``.
        role_alias_name, role_alias_arn: the token-exchange role alias.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name_prefix: str,
        publish_topic_prefix: str,
        role_alias_name: str,
        role_alias_arn: str,
    ) -> None:
        super().__init__(scope, id_)
        self.document = core_device_policy_document(
            name_prefix=name_prefix,
            publish_topic_prefix=publish_topic_prefix,
            role_alias_arn=role_alias_arn,
        )
        self.core_device_policy = iot.CfnPolicy(
            self,
            "CoreDevicePolicy",
            policy_name=f"{name_prefix}-GreengrassCoreDevicePolicy",
            policy_document=self.document.render(),
        )
        # The name the installer looks up and the document it would create (aws-greengrass-
        # nucleus v2.18.2 easysetup/DeviceProvisioningHelper.java, setupIoTRoleForTes); it
        # must exist: docs/CORE_DEVICE.md#the-tes-certificate-policy.
        self.tes_certificate_policy = iot.CfnPolicy(
            self,
            "TesCertificatePolicy",
            policy_name=f"GreengrassTESCertificatePolicy{role_alias_name}",
            policy_document={
                "Version": POLICY_VERSION,
                "Statement": {
                    "Effect": "Allow",
                    "Action": "iot:AssumeRoleWithCertificate",
                    "Resource": role_alias_arn,
                },
            },
        )
