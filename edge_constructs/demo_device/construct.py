"""The reference tutorial's EC2 edge device, as code: an Ubuntu instance that installs the
Greengrass nucleus and provisions itself into the stage's thing group, plus the deletion step
that removes the thing and certificate its installer created.

Network: a VPC of its own with one public subnet and no NAT gateway. It makes the stack
self-contained (deleting it leaves nothing), needs no synth-time lookup (``Vpc.from_lookup``
would break offline, deterministic synth) and costs nothing beyond the instance. Access is
Session Manager only: no key pair, no inbound rule.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import ArnFormat, Aws, CustomResource, Duration, Fn, Stack, Tags
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from edge_constructs.core_device.construct import CoreDevicePrerequisites
from edge_constructs.demo_device.user_data import (
    DEVICE_NAME,
    THING_SUFFIX_PREFIX,
    user_data_script,
)
from edge_constructs.greengrass.public_components import CURRENT_NUCLEUS
from edge_constructs.lambda_function import PythonFunction
from edge_constructs.nag import acknowledge_provider_framework

RUNTIME_DIR = Path(__file__).parent / "runtime"
# Canonical's public SSM parameter for the current Ubuntu 24.04 LTS amd64 image (gp3 root),
# resolved by CloudFormation at deploy time: "Find Ubuntu images on AWS",
# https://documentation.ubuntu.com/aws/en/latest/aws-how-to/instances/find-ubuntu-images/
UBUNTU_AMI_PARAMETER = (
    "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id"
)
ROOT_DEVICE = "/dev/sda1"  # Ubuntu's EC2 images boot from /dev/sda1
ROOT_VOLUME_GIB = 20
VPC_CIDR = "10.42.0.0/24"
# Outbound only, TCP, to 0.0.0.0/0: security groups cannot name host names, so these ports are
# the tightest rule a security group can express. Endpoints and ports: "Allow device traffic
# through a proxy or firewall",
# https://docs.aws.amazon.com/greengrass/v2/developerguide/allow-device-traffic.html
# (DNS to the VPC resolver, IMDS and the Amazon Time Sync Service are not filtered by security
# groups.)
EGRESS_PORTS = (
    (
        443,
        "HTTPS: AWS IoT credentials, S3 artifacts, installer calls to IoT/IAM/STS, "
        "nucleus and pip downloads",
    ),
    (8443, "Greengrass data plane (greengrass-ats.iot) and IoT HTTPS"),
    (8883, "MQTT to the AWS IoT data endpoint"),
    (80, "apt: Ubuntu archive mirrors in the region are plain HTTP"),
)


class DemoCoreDevice(Construct):
    """One Ubuntu 24.04 x86_64 instance that becomes a Greengrass core device of this stage.

    Props:
        prerequisites: the devices stack's :class:`CoreDevicePrerequisites` (thing groups,
            policies, role alias, the installer policy the instance role carries, and the
            installer command line the user data runs).
        thing_group_name: the group the device joins, one the prerequisites created
            (app_config chooses it: the demo class's canary group, else its group).
        instance_type: an x86_64 type with at least 2 GiB of memory (app_config checks it).
        nucleus_version: ``X.Y.Z`` to install that nucleus; "" for
            ``public_components.CURRENT_NUCLEUS``, the nucleus the stage's component ranges
            and the simulated device (its default) are checked against. Never the latest.
        log_retention: retention of the cleanup handler's logs and the VPC flow log.

    Attributes: ``instance``, ``role``, ``security_group``, ``vpc``, ``cleanup`` (the deletion
    step, which the instance depends on), ``thing_name_prefix``, ``thing_name`` (a token).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        prerequisites: CoreDevicePrerequisites,
        thing_group_name: str,
        instance_type: str,
        nucleus_version: str,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        self.thing_name_prefix = f"{prerequisites.name_prefix}-{THING_SUFFIX_PREFIX}"
        self.thing_group_name = thing_group_name

        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(VPC_CIDR),
            max_azs=1,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="Public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=26
                )
            ],
        )
        # Rejected traffic only: it shows what the egress rules below block, and nothing else.
        self.vpc.add_flow_log(
            "RejectedTraffic",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                logs.LogGroup(self, "FlowLogs", retention=log_retention)
            ),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )

        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=self.vpc,
            allow_all_outbound=False,
            description="Demo Greengrass core device: no inbound; outbound to AWS IoT, "
            "Greengrass, S3 and package mirrors only",
        )
        for port, reason in EGRESS_PORTS:
            self.security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(port), reason)

        self.role = iam.Role(
            self,
            "InstanceRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description="Demo core device: runs the Greengrass installer, Session Manager",
            managed_policies=[
                prerequisites.installer_policy,
                iam.ManagedPolicy.from_aws_managed_policy_name("AmazonSSMManagedInstanceCore"),
            ],
        )
        NagSuppressions.add_resource_suppressions(
            self.role,
            [
                NagPackSuppression(
                    id="AwsSolutions-IAM4",
                    reason="AmazonSSMManagedInstanceCore is the AWS-maintained minimum for "
                    "Session Manager, the only way into this instance (no key pair, no "
                    "inbound rule); AWS updates it as the SSM agent changes.",
                    applies_to=[
                        "Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore"
                    ],
                )
            ],
        )

        script = user_data_script(
            installer_command=prerequisites.installer_command(
                Aws.REGION, DEVICE_NAME, thing_group_name
            ),
            nucleus_version=nucleus_version or CURRENT_NUCLEUS,
        )
        self.instance = ec2.Instance(
            self,
            "Instance",
            vpc=self.vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            associate_public_ip_address=True,
            instance_type=ec2.InstanceType(instance_type),
            # No cached_in_context: a CloudFormation parameter of type
            # AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>, resolved at deploy time.
            machine_image=ec2.MachineImage.from_ssm_parameter(
                UBUNTU_AMI_PARAMETER, os=ec2.OperatingSystemType.LINUX
            ),
            security_group=self.security_group,
            role=self.role,
            user_data=ec2.UserData.custom(script),
            user_data_causes_replacement=True,
            require_imdsv2=True,
            ssm_session_permissions=False,  # the role carries the managed policy above
            block_devices=[
                ec2.BlockDevice(
                    device_name=ROOT_DEVICE,
                    volume=ec2.BlockDeviceVolume.ebs(
                        ROOT_VOLUME_GIB,
                        encrypted=True,
                        volume_type=ec2.EbsDeviceVolumeType.GP3,
                        delete_on_termination=True,
                    ),
                )
            ],
        )
        Tags.of(self.instance).add("Name", f"{prerequisites.name_prefix}-demo-device")
        NagSuppressions.add_resource_suppressions(
            self.instance,
            [
                NagPackSuppression(
                    id="AwsSolutions-EC28",
                    reason="A single demo device: basic (5-minute) CloudWatch metrics are "
                    "enough, and detailed monitoring is billed per metric.",
                ),
                NagPackSuppression(
                    id="AwsSolutions-EC29",
                    reason="The demo device must go away with its stack (cdk destroy); "
                    "termination protection or an Auto Scaling group would defeat that.",
                ),
            ],
        )
        self.thing_name = Fn.join(
            "", [prerequisites.name_prefix, "-demo-", self.instance.instance_id]
        )

        self.cleanup = self._cleanup(stack, prerequisites, log_retention)
        # Delete order: the instance is terminated first, so it cannot re-provision while its
        # thing and certificate are being removed.
        self.instance.node.add_dependency(self.cleanup)

    def _cleanup(
        self,
        stack: Stack,
        prerequisites: CoreDevicePrerequisites,
        log_retention: logs.RetentionDays,
    ) -> CustomResource:
        handler = PythonFunction(
            self,
            "CleanupHandler",
            code_dir=RUNTIME_DIR,
            handler="cleanup_handler.on_event",
            timeout=Duration.minutes(10),
            log_retention=log_retention,
            description="Custom::DemoDeviceCleanup: removes the demo device's things, "
            "certificates and core-device records on delete",
        )
        things = stack.format_arn(
            service="iot", resource="thing", resource_name=f"{self.thing_name_prefix}*"
        )
        thing_group = stack.format_arn(
            service="iot", resource="thinggroup", resource_name=self.thing_group_name
        )
        certificates = stack.format_arn(service="iot", resource="cert", resource_name="*")
        core_devices = stack.format_arn(
            service="greengrass",
            resource="coreDevices",
            resource_name=f"{self.thing_name_prefix}*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        # Resource types per action: "How AWS IoT works with IAM", AWS IoT resources table,
        # https://docs.aws.amazon.com/iot/latest/developerguide/security_iam_service-with-iam.html
        statements = [
            iam.PolicyStatement(
                sid="ListThingsAndCoreDevices",
                actions=["iot:ListThings", "greengrass:ListCoreDevices"],
                resources=["*"],
            ),
            iam.PolicyStatement(
                sid="DemoThings",
                actions=[
                    "iot:ListThingPrincipals",
                    "iot:DetachThingPrincipal",
                    "iot:RemoveThingFromThingGroup",
                    "iot:DeleteThing",
                ],
                resources=[things, thing_group],
            ),
            iam.PolicyStatement(
                sid="TheirCertificates",
                actions=[
                    "iot:ListAttachedPolicies",
                    "iot:DetachPolicy",
                    "iot:DetachThingPrincipal",
                    "iot:ListPrincipalThings",
                    "iot:UpdateCertificate",
                    "iot:DeleteCertificate",
                ],
                resources=[certificates],
            ),
            iam.PolicyStatement(
                sid="DemoCoreDevices",
                actions=["greengrass:DeleteCoreDevice"],
                resources=[core_devices],
            ),
        ]
        for statement in statements:
            handler.role.add_to_policy(statement)
        # cdk-nag names a resource by its ARN with pseudo parameters in angle brackets.
        account_arn = "arn:<AWS::Partition>:{}:<AWS::Region>:<AWS::AccountId>:{}"
        NagSuppressions.add_resource_suppressions(
            handler.role,
            [
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason="iot:ListThings and greengrass:ListCoreDevices support no "
                    "resource ARN; things and core devices are limited to the demo device's "
                    "thing-name prefix; certificates are created by the installer on the "
                    "device, so their IDs are only known from the things' principals at "
                    "delete time (cert/*).",
                    applies_to=[
                        "Resource::*",
                        "Resource::" + account_arn.format("iot", "cert/*"),
                        "Resource::"
                        + account_arn.format("iot", f"thing/{self.thing_name_prefix}*"),
                        "Resource::"
                        + account_arn.format(
                            "greengrass", f"coreDevices:{self.thing_name_prefix}*"
                        ),
                    ],
                )
            ],
            apply_to_children=True,
        )
        provider = cr.Provider(
            self,
            "CleanupProvider",
            on_event_handler=handler.function,
            log_group=logs.LogGroup(self, "CleanupProviderLogs", retention=log_retention),
        )
        acknowledge_provider_framework(provider)
        resource = CustomResource(
            self,
            "Cleanup",
            service_token=provider.service_token,
            resource_type="Custom::DemoDeviceCleanup",
            properties={
                "ThingNamePrefix": self.thing_name_prefix,
                "ThingGroupName": self.thing_group_name,
            },
        )
        resource.node.add_dependency(handler.role)
        return resource
