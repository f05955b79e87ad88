"""The token-exchange role the device's components get credentials from, its role alias, and the
IAM policy the Greengrass installer would otherwise attach to the role itself.
Why each grant: docs/CORE_DEVICE.md#the-token-exchange-role."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from aws_cdk import aws_s3 as s3
from cdk_nag import NagSuppressions
from constructs import Construct

GREENGRASS_LOG_GROUP_PREFIX = "/aws/greengrass/"
# Seconds the credentials last (AWS::IoT::RoleAlias CredentialDurationSeconds).
CREDENTIAL_DURATION_SECONDS = 3600


class TokenExchange(Construct):
    """``<name_prefix>-GreengrassTokenExchangeRole``, its ``...Access`` managed policy, and
    ``<name_prefix>-GreengrassTokenExchangeRoleAlias``.

    Props:
        name_prefix: prefix of the role, policy and alias names.
        bucket: the artifact bucket.
        device_prefixes: the only key prefixes of ``bucket`` the role may read.
        capture_prefixes: the only key prefixes of ``bucket`` the role may write
            (``device_contract.captures.iam_prefix``: each class's, down to the thing's own
            folder through ``${credentials-iot:ThingName}``). Default: none.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name_prefix: str,
        bucket: s3.IBucket,
        device_prefixes: Sequence[str],
        capture_prefixes: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, id_)
        if not device_prefixes:
            raise ValueError("TokenExchange: device_prefixes is empty; devices could read nothing")
        stack = Stack.of(self)
        self.role_name = f"{name_prefix}-GreengrassTokenExchangeRole"
        self.role = iam.Role(
            self,
            "TokenExchangeRole",
            role_name=self.role_name,
            assumed_by=iam.ServicePrincipal("credentials.iot.amazonaws.com"),
            description="Credentials that Greengrass components get through the TES",
        )
        log_groups = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=f"{GREENGRASS_LOG_GROUP_PREFIX}*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,  # arn:...:log-group:NAME
        )
        # The name and actions of the installer's own policy (aws-greengrass-nucleus v2.18.2
        # easysetup/DeviceProvisioningHelper.java, GG_TOKEN_EXCHANGE_ROLE_ACCESS_POLICY_*),
        # scoped: docs/CORE_DEVICE.md#the-token-exchange-role.
        self.access_policy_name = f"{self.role_name}Access"
        self.access_policy = iam.ManagedPolicy(
            self,
            "TokenExchangeRoleAccess",
            managed_policy_name=self.access_policy_name,
            description="What the Greengrass installer would attach to the TES role, scoped",
            roles=[self.role],
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
                # Asked before every artifact download (aws-greengrass-nucleus v2.18.2
                # componentmanager/builtins/S3Downloader.java, getRegionClientForBucket).
                iam.PolicyStatement(
                    sid="ArtifactBucketLocation",
                    actions=["s3:GetBucketLocation"],
                    resources=[bucket.bucket_arn],
                ),
            ],
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ComponentArtifacts",
                actions=["s3:GetObject"],
                resources=[bucket.arn_for_objects(f"{prefix}*") for prefix in device_prefixes],
            )
        )
        if capture_prefixes:
            # The inference component's capture uploads (component_src/edge_inference/
            # s3_upload.py): PutObject only, each device into its own folder.
            self.role.add_to_policy(
                iam.PolicyStatement(
                    sid="CaptureUploads",
                    actions=["s3:PutObject"],
                    resources=[bucket.arn_for_objects(f"{prefix}*") for prefix in capture_prefixes],
                )
            )
        NagSuppressions.add_resource_suppressions(
            self.role,
            [
                {
                    "id": "AwsSolutions-IAM5",
                    "reason": "Scoped to the /aws/greengrass/ log groups the log manager writes "
                    "(one per component, named at run time) and to the content-addressed "
                    "artifact prefixes this app writes; object keys are content hashes; "
                    "captures go under each device's own captures/<stage>/<class>/<thing>/.",
                }
            ],
            apply_to_children=True,
        )
        NagSuppressions.add_resource_suppressions(
            self.access_policy,
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
            role_arn=self.role.role_arn,
            credential_duration_seconds=CREDENTIAL_DURATION_SECONDS,
        )
        self.role_alias_name = self.role_alias.role_alias or ""
        self.role_alias_arn = self.role_alias.attr_role_alias_arn
