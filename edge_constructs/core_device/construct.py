"""What a Greengrass core device needs to join: the prerequisites the reference tutorial did by
hand. No IAM user and no long-term keys: the installer policy is attached to whatever principal
(an SSO role, a provisioning role) runs the Greengrass installer."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from aws_cdk import ArnFormat, Aws, CustomResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import custom_resources as cr
from cdk_nag import NagSuppressions
from constructs import Construct

from edge_constructs.lambda_function import PythonFunction
from edge_constructs.nag import acknowledge_provider_framework, acknowledge_wildcards

GREENGRASS_LOG_GROUP_PREFIX = "/aws/greengrass/"
RUNTIME_DIR = Path(__file__).parent / "runtime"
# logs ARNs separate the resource type and name with ':' (arn:...:log-group:NAME).
_COLON_ARN = ArnFormat.COLON_RESOURCE_NAME


class CoreDevicePrerequisites(Construct):
    """Thing group, token-exchange role and alias, core-device IoT policy, installer policy.

    Props:
        name_prefix: prefix of every physical name (e.g. ``edge-ai-dev``); device thing names
            must start with it (the installer policy is scoped to ``thing/<name_prefix>-*``).
        thing_group_name: the IoT thing group of the first device class (the installer
            command names it).
        more_thing_group_names: the other classes' groups and the canary groups; the
            installer may add a new device to any of them.
        bucket: the artifact bucket; the token-exchange role may read ``device_prefixes`` only.
        device_prefixes: key prefixes holding what devices download.
        publish_topic_prefix: results go to ``<prefix>/<thing name>/...``; the IoT policy allows
            a device to publish only under its own thing name.
        log_retention: retention of the policy-release handler's logs (default one month).

    On stack delete, ``policy_release`` detaches the IoT policies from every device
    certificate and deletes them (see :meth:`_policy_release`).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name_prefix: str,
        thing_group_name: str,
        bucket: s3.IBucket,
        device_prefixes: Sequence[str],
        publish_topic_prefix: str,
        more_thing_group_names: Sequence[str] = (),
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
    ) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        self.name_prefix = name_prefix
        self.token_exchange_role_name = f"{name_prefix}-GreengrassTokenExchangeRole"

        self.thing_group = iot.CfnThingGroup(
            self,
            "ThingGroup",
            thing_group_name=thing_group_name,
            thing_group_properties=iot.CfnThingGroup.ThingGroupPropertiesProperty(
                thing_group_description=f"Greengrass core devices of {name_prefix}"
            ),
        )
        self.thing_group_arn = stack.format_arn(
            service="iot", resource="thinggroup", resource_name=thing_group_name
        )
        self.thing_group_arns = [self.thing_group_arn]
        for name in more_thing_group_names:
            iot.CfnThingGroup(
                self,
                f"ThingGroup{re.sub(r'[^A-Za-z0-9]', '', name)}",
                thing_group_name=name,
                thing_group_properties=iot.CfnThingGroup.ThingGroupPropertiesProperty(
                    thing_group_description=f"Greengrass core devices of {name_prefix}"
                ),
            )
            self.thing_group_arns.append(
                stack.format_arn(service="iot", resource="thinggroup", resource_name=name)
            )

        self.token_exchange_role = iam.Role(
            self,
            "TokenExchangeRole",
            role_name=self.token_exchange_role_name,
            assumed_by=iam.ServicePrincipal("credentials.iot.amazonaws.com"),
            description="Credentials that Greengrass components get through the TES",
        )
        log_groups = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=f"{GREENGRASS_LOG_GROUP_PREFIX}*",
            arn_format=_COLON_ARN,
        )
        # The policy the installer looks for as "<TES role name>Access" and would otherwise
        # create and attach itself (easysetup/DeviceProvisioningHelper.java,
        # createAndAttachRolePolicy and GG_TOKEN_EXCHANGE_ROLE_ACCESS_POLICY_DOCUMENT: the four
        # CloudWatch Logs actions and s3:GetBucketLocation, on "*"). Created and attached here
        # by CloudFormation, with the same actions scoped to what the device uses, so the
        # installer never has to modify the role this stack owns.
        self.tes_access_policy_name = f"{self.token_exchange_role_name}Access"
        self.tes_access_policy = iam.ManagedPolicy(
            self,
            "TokenExchangeRoleAccess",
            managed_policy_name=self.tes_access_policy_name,
            description="What the Greengrass installer would attach to the TES role, scoped",
            roles=[self.token_exchange_role],
            statements=[
                iam.PolicyStatement(
                    sid="GreengrassLogs",
                    actions=[
                        "logs:CreateLogGroup",
                        "logs:CreateLogStream",
                        "logs:PutLogEvents",
                        "logs:DescribeLogStreams",
                    ],
                    resources=[log_groups, f"{log_groups}:log-stream:*"],
                ),
                # The nucleus asks for the bucket's region before every artifact download
                # (componentmanager/builtins/S3Downloader.java, getRegionClientForBucket), and
                # a denied GetBucketLocation fails the deployment. Authorized on the bucket ARN.
                iam.PolicyStatement(
                    sid="ArtifactBucketLocation",
                    actions=["s3:GetBucketLocation"],
                    resources=[bucket.bucket_arn],
                ),
            ],
        )
        self.token_exchange_role.add_to_policy(
            iam.PolicyStatement(
                sid="ComponentArtifacts",
                actions=["s3:GetObject"],
                resources=[bucket.arn_for_objects(f"{prefix}*") for prefix in device_prefixes],
            )
        )
        NagSuppressions.add_resource_suppressions(
            self.token_exchange_role,
            [
                {
                    "id": "AwsSolutions-IAM5",
                    "reason": "Scoped to the /aws/greengrass/ log groups the log manager writes "
                    "(one per component, named at run time) and to the content-addressed "
                    "artifact prefixes this app writes; object keys are content hashes.",
                }
            ],
            apply_to_children=True,
        )

        NagSuppressions.add_resource_suppressions(
            self.tes_access_policy,
            [
                {
                    "id": "AwsSolutions-IAM5",
                    "reason": "Scoped to the /aws/greengrass/ log groups the log manager writes "
                    "(one per component, named at run time).",
                }
            ],
        )

        self.role_alias = iot.CfnRoleAlias(
            self,
            "TokenExchangeRoleAlias",
            role_alias=f"{name_prefix}-GreengrassTokenExchangeRoleAlias",
            role_arn=self.token_exchange_role.role_arn,
            credential_duration_seconds=3600,
        )

        thing = f"arn:{Aws.PARTITION}:iot:{Aws.REGION}:{Aws.ACCOUNT_ID}"
        own = "${iot:Connection.Thing.ThingName}"
        fleet = f"{name_prefix}-*"
        # MQTT connections: the nucleus names its first one after the thing and each further
        # one "<thing>#<n>" (mqttclient/MqttClient.java, getNewMqttClient), opened when the
        # others carry 50 subscriptions (MAX_SUBSCRIPTIONS_PER_CONNECTION), and publishes go
        # round-robin over all of them (getConnection). ${iot:Connection.Thing.ThingName}
        # resolves only when the client ID equals the thing name under a non-exclusive thing
        # association (https://docs.aws.amazon.com/iot/latest/developerguide/
        # thing-policy-variables.html), and that is what the installer creates
        # (easysetup/DeviceProvisioningHelper.java, createThing: AttachThingPrincipal without a
        # thingPrincipalType). So: the first connection is held to its own thing (the
        # "OwnThing" statements); on "<thing>#<n>" connections IoT Core cannot tell which thing
        # they belong to, and the tightest scope any source allows is this stack's devices
        # (the "ExtraConnections" statements: client IDs "<prefix>-*#*" and the topics of
        # "<prefix>-*" things). Since a certificate can open such a connection at will, the
        # effective boundary between devices is this stack's fleet, not the single device.
        # An exclusive thing association would let the thing variable resolve on every
        # connection (https://docs.aws.amazon.com/iot/latest/developerguide/exclusive-thing.html),
        # but the installer does not create one.
        self.core_device_policy = iot.CfnPolicy(
            self,
            "CoreDevicePolicy",
            policy_name=f"{name_prefix}-GreengrassCoreDevicePolicy",
            policy_document={
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "OwnThingConnect",
                        "Effect": "Allow",
                        "Action": "iot:Connect",
                        "Resource": f"{thing}:client/{own}",
                    },
                    {
                        "Sid": "OwnThingTopics",
                        "Effect": "Allow",
                        "Action": ["iot:Publish", "iot:Receive"],
                        "Resource": [
                            f"{thing}:topic/$aws/things/{own}/*",
                            f"{thing}:topic/{publish_topic_prefix}/{own}/*",
                        ],
                    },
                    {
                        "Sid": "OwnThingTopicFilters",
                        "Effect": "Allow",
                        "Action": "iot:Subscribe",
                        "Resource": [
                            f"{thing}:topicfilter/$aws/things/{own}/*",
                            f"{thing}:topicfilter/{publish_topic_prefix}/{own}/*",
                        ],
                    },
                    {
                        "Sid": "ExtraConnectionsConnect",
                        "Effect": "Allow",
                        "Action": "iot:Connect",
                        "Resource": f"{thing}:client/{fleet}#*",
                    },
                    {
                        "Sid": "ExtraConnectionsTopics",
                        "Effect": "Allow",
                        "Action": ["iot:Publish", "iot:Receive"],
                        "Resource": [
                            f"{thing}:topic/$aws/things/{fleet}/*",
                            f"{thing}:topic/{publish_topic_prefix}/{fleet}/*",
                        ],
                    },
                    {
                        "Sid": "ExtraConnectionsTopicFilters",
                        "Effect": "Allow",
                        "Action": "iot:Subscribe",
                        "Resource": [
                            f"{thing}:topicfilter/$aws/things/{fleet}/*",
                            f"{thing}:topicfilter/{publish_topic_prefix}/{fleet}/*",
                        ],
                    },
                    {
                        "Effect": "Allow",
                        "Action": "iot:AssumeRoleWithCertificate",
                        "Resource": self.role_alias.attr_role_alias_arn,
                    },
                    {
                        "Effect": "Allow",
                        "Action": [
                            "greengrass:GetComponentVersionArtifact",
                            "greengrass:ResolveComponentCandidates",
                            "greengrass:GetDeploymentConfiguration",
                            "greengrass:ListThingGroupsForCoreDevice",
                        ],
                        "Resource": "*",
                    },
                ],
            },
        )

        # The IoT policy the installer looks up as "GreengrassTESCertificatePolicy<role alias>"
        # and attaches to the new certificate; its document is the one the installer would
        # create (easysetup/DeviceProvisioningHelper.java, setupIoTRoleForTes). Its GetPolicy
        # catches only ResourceNotFoundException: the policy must exist, and the installer
        # must be allowed to read it.
        self.tes_certificate_policy = iot.CfnPolicy(
            self,
            "TesCertificatePolicy",
            policy_name=f"GreengrassTESCertificatePolicy{self.role_alias.role_alias}",
            policy_document={
                "Version": "2012-10-17",
                "Statement": {
                    "Effect": "Allow",
                    "Action": "iot:AssumeRoleWithCertificate",
                    "Resource": self.role_alias.attr_role_alias_arn,
                },
            },
        )

        self.policy_release = self._policy_release(stack, log_retention)

        iam_policy = f"policy/{self.tes_access_policy_name}"
        # The installer's calls with --provision true, in order (easysetup/GreengrassSetup.java
        # provision; DeviceProvisioningHelper.java createThing, addThingToGroup,
        # setupIoTRoleForTes, createAndAttachRolePolicy). Each is granted on the resource it is
        # authorized against (AWS IoT Developer Guide, "How AWS IoT works with IAM", resources
        # table; Service Authorization Reference for AWS IoT and IAM).
        #
        # No iam:CreatePolicy, iam:AttachRolePolicy or iam:PutRolePolicy: the installer must not
        # modify the role CloudFormation owns. It does not need to: createAndAttachRolePolicy
        # returns as soon as getPolicyArn finds "<role>Access" (it prints "already exists.
        # Please attach it to the IAM role if not already") and calls CreatePolicy and
        # AttachRolePolicy only in the branch where the policy was not found. The policy is
        # attached by CloudFormation (``roles=`` above), so nothing is left to attach.
        # getPolicyArn looks up the AWS-managed ARN (arn:aws:iam::aws:policy/NAME) first and
        # the account's ARN second; both tolerate NoSuchEntity and "not authorized". Both are
        # granted, so finding our policy does not hinge on the wording of an error message.
        self.installer_policy = iam.ManagedPolicy(
            self,
            "InstallerPolicy",
            managed_policy_name=f"{name_prefix}-GreengrassInstallerPolicy",
            description="Attach to the principal that runs the Greengrass installer with "
            "--provision true for a new core device of this stack",
            statements=[
                iam.PolicyStatement(
                    sid="AccountWide",
                    actions=[
                        "iot:DescribeEndpoint",
                        "iot:CreateKeysAndCertificate",
                        "sts:GetCallerIdentity",
                    ],
                    resources=["*"],
                ),
                iam.PolicyStatement(
                    sid="ThingsOfThisStack",
                    actions=[
                        "iot:CreateThing",
                        "iot:DescribeThing",
                        "iot:AttachThingPrincipal",
                        "iot:AddThingToThingGroup",
                    ],
                    resources=[
                        f"{thing}:thing/{name_prefix}-*",
                        *self.thing_group_arns,
                    ],
                ),
                # AttachPolicy and AttachThingPrincipal are authorized against the certificate
                # (the developer guide's resources table), which the installer has just
                # created: its ARN is only known as cert/*.
                iam.PolicyStatement(
                    sid="NewCertificate",
                    actions=["iot:AttachPolicy", "iot:AttachThingPrincipal"],
                    resources=[f"{thing}:cert/*"],
                ),
                iam.PolicyStatement(
                    sid="PrerequisitesOfThisStack",
                    actions=[
                        "iot:DescribeThingGroup",
                        "iot:DescribeRoleAlias",
                        "iot:GetPolicy",
                    ],
                    resources=[
                        *self.thing_group_arns,
                        self.role_alias.attr_role_alias_arn,
                        self.core_device_policy.attr_arn,
                        self.tes_certificate_policy.attr_arn,
                    ],
                ),
                iam.PolicyStatement(
                    sid="TokenExchangeRoleAccessPolicy",
                    actions=["iam:GetPolicy"],
                    resources=[
                        f"arn:{Aws.PARTITION}:iam::aws:{iam_policy}",
                        f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:{iam_policy}",
                    ],
                ),
            ],
        )
        NagSuppressions.add_resource_suppressions(
            self.installer_policy,
            [
                {
                    "id": "AwsSolutions-IAM5",
                    "reason": "iot:DescribeEndpoint, iot:CreateKeysAndCertificate and "
                    "sts:GetCallerIdentity support no resource ARN; things are limited to this "
                    "stack's name prefix, and certificates do not exist before the installer "
                    "creates them, so their ARN is only known as cert/*.",
                }
            ],
        )

    def _policy_release(self, stack: Stack, log_retention: logs.RetentionDays) -> CustomResource:
        """Custom::IotPolicyRelease: on stack delete, detach both IoT policies from every
        certificate that holds them and delete them (runtime/policy_release_logic.py says why
        and what it means for running devices).

        The policies are ``RetainExceptOnCreate``: on stack delete the release has deleted
        them already (it depends on them, so CloudFormation deletes it first), and
        CloudFormation's own delete, which does not detach, is skipped; when their own create
        rolls back, nothing can hold them yet and CloudFormation deletes them. A rename
        replaces them: ``UpdateReplacePolicy: Retain`` keeps the old ones, still attached, so
        the devices holding them keep running (README, "Operating the pipeline").
        """
        policies = (self.core_device_policy, self.tes_certificate_policy)
        for policy in policies:
            policy.apply_removal_policy(RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE)
        handler = PythonFunction(
            self,
            "PolicyReleaseHandler",
            code_dir=RUNTIME_DIR,
            handler="policy_release_handler.on_event",
            # Detach, then up to policy_release_logic.WAIT_SECONDS (7 min) of DeletePolicy
            # retries; a custom resource must answer within one hour.
            timeout=Duration.minutes(10),
            log_retention=log_retention,
            description="Custom::IotPolicyRelease: detaches and deletes the core-device IoT "
            "policies on stack delete",
        )
        # Resource types per action: "How AWS IoT works with IAM", AWS IoT resources table
        # (ListTargetsForPolicy, ListPolicyVersions, DeletePolicyVersion, DeletePolicy: policy;
        # DetachPolicy: the target, a certificate or a thing group).
        handler.role.add_to_policy(
            iam.PolicyStatement(
                sid="DevicePolicies",
                actions=[
                    "iot:ListTargetsForPolicy",
                    "iot:ListPolicyVersions",
                    "iot:DeletePolicyVersion",
                    "iot:DeletePolicy",
                    "iot:DetachPolicy",
                ],
                resources=[policy.attr_arn for policy in policies],
            )
        )
        handler.role.add_to_policy(
            iam.PolicyStatement(
                sid="TheirTargets",
                actions=["iot:DetachPolicy"],
                resources=[
                    stack.format_arn(service="iot", resource="cert", resource_name="*"),
                    *self.thing_group_arns,
                ],
            )
        )
        acknowledge_wildcards(
            handler.role,
            "Certificates are created by the Greengrass installer on each device; their IDs "
            "are only known from ListTargetsForPolicy at delete time (cert/*).",
            ["Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:cert/*"],
        )
        provider = cr.Provider(
            self,
            "PolicyReleaseProvider",
            on_event_handler=handler.function,
            log_group=logs.LogGroup(self, "PolicyReleaseProviderLogs", retention=log_retention),
        )
        acknowledge_provider_framework(provider)
        resource = CustomResource(
            self,
            "PolicyRelease",
            service_token=provider.service_token,
            resource_type="Custom::IotPolicyRelease",
            properties={
                "Policies": stack.to_json_string(
                    {"CoreDevice": policies[0].ref, "TesCertificate": policies[1].ref}
                )
            },
        )
        resource.node.add_dependency(handler.role)
        return resource

    def installer_command(
        self, region: str, device_name: str = "<device-name>", thing_group_name: str = ""
    ) -> str:
        """The Greengrass installer command line for a new device.

        The thing name is ``<name_prefix>-<device_name>``; the default leaves a placeholder for
        a person to fill in, a script passes a shell expression (``demo-"$INSTANCE_ID"``).
        ``thing_group_name``: one of this construct's groups (default: the first class's).
        """
        group = thing_group_name or self.thing_group.thing_group_name
        return (
            'sudo -E java -Droot="/greengrass/v2" -Dlog.store=FILE '
            "-jar ./GreengrassInstaller/lib/Greengrass.jar "
            f"--aws-region {region} "
            f"--thing-name {self.name_prefix}-{device_name} "
            f"--thing-group-name {group} "
            f"--thing-policy-name {self.core_device_policy.policy_name} "
            f"--tes-role-name {self.token_exchange_role_name} "
            f"--tes-role-alias-name {self.role_alias.role_alias} "
            "--component-default-user ggc_user:ggc_group "
            "--provision true --setup-system-service true"
        )
