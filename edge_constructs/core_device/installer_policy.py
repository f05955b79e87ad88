"""The IAM policy for whoever runs the Greengrass installer with ``--provision true``: the
installer's calls, each on the resource it is authorized against, and nothing that modifies what
CloudFormation owns. Why each grant: docs/CORE_DEVICE.md#the-installer-policy."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from cdk_nag import NagSuppressions
from constructs import Construct


class InstallerPolicy(Construct):
    """``<name_prefix>-GreengrassInstallerPolicy``.

    Props:
        name_prefix: prefix of the policy's name; new things must be named ``<name_prefix>-*``.
        thing_group_arns: the groups a new device may join.
        role_alias_arn: the token-exchange role alias the installer describes.
        iot_policy_arns: the IoT policies the installer reads and attaches.
        tes_access_policy_name: the role's ``...Access`` policy, which the installer looks up.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name_prefix: str,
        thing_group_arns: Sequence[str],
        role_alias_arn: str,
        iot_policy_arns: Sequence[str],
        tes_access_policy_name: str,
    ) -> None:
        super().__init__(scope, id_)
        iot_arn = f"arn:{Aws.PARTITION}:iot:{Aws.REGION}:{Aws.ACCOUNT_ID}"
        access_policy = f"policy/{tes_access_policy_name}"
        # The calls of aws-greengrass-nucleus v2.18.2 easysetup/GreengrassSetup.java provision
        # and DeviceProvisioningHelper.java, authorized per AWS IoT developer guide, "How AWS
        # IoT works with IAM" (resources table) and the Service Authorization Reference.
        self.policy = iam.ManagedPolicy(
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
                    resources=[f"{iot_arn}:thing/{name_prefix}-*", *thing_group_arns],
                ),
                # Authorized against the certificate the installer has just created.
                iam.PolicyStatement(
                    sid="NewCertificate",
                    actions=["iot:AttachPolicy", "iot:AttachThingPrincipal"],
                    resources=[f"{iot_arn}:cert/*"],
                ),
                iam.PolicyStatement(
                    sid="PrerequisitesOfThisStack",
                    actions=[
                        "iot:DescribeThingGroup",
                        "iot:DescribeRoleAlias",
                        "iot:GetPolicy",
                    ],
                    resources=[*thing_group_arns, role_alias_arn, *iot_policy_arns],
                ),
                # DeviceProvisioningHelper.getPolicyArn tries the AWS-managed ARN, then the
                # account's; no iam:CreatePolicy or iam:AttachRolePolicy: the policy exists.
                iam.PolicyStatement(
                    sid="TokenExchangeRoleAccessPolicy",
                    actions=["iam:GetPolicy"],
                    resources=[
                        f"arn:{Aws.PARTITION}:iam::aws:{access_policy}",
                        f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:{access_policy}",
                    ],
                ),
            ],
        )
        NagSuppressions.add_resource_suppressions(
            self.policy,
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
