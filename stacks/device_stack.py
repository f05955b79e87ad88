"""What core devices need to join the fleet this app deploys to."""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, CfnOutput, Stack
from aws_cdk import aws_s3 as s3
from constructs import Construct

from app_config import PipelineConfig
from device_contract import captures
from edge_constructs.artifact_bucket.construct import Prefixes
from edge_constructs.core_device.construct import CoreDevicePrerequisites
from stacks.pipeline_stack import retention_days


class DeviceStack(Stack):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: PipelineConfig,
        bucket: s3.IBucket,
        **kwargs: Any,
    ):
        super().__init__(scope, id_, **kwargs)
        self.prerequisites = CoreDevicePrerequisites(
            self,
            "CoreDevices",
            name_prefix=f"{config.prefix}-{config.stage}",
            thing_group_name=config.thing_groups[0],
            more_thing_group_names=config.thing_groups[1:],
            bucket=bucket,
            device_prefixes=Prefixes.DEVICE_READABLE,
            capture_prefixes=[
                captures.iam_prefix(config.stage, c.name) for c in config.device_classes
            ],
            publish_topic_prefix=config.publish_topic_prefix,
            log_retention=retention_days(config.log_retention_days),
        )
        prereq = self.prerequisites
        self.thing_group_arn = prereq.thing_group_arn
        CfnOutput(self, "ThingGroupName", value=config.thing_groups[0])
        CfnOutput(
            self,
            "DeviceClassThingGroups",
            value=", ".join(
                f"{c.name}: {c.thing_group}"
                + (f" (canary: {c.canary_thing_group})" if c.canary_thing_group else "")
                for c in config.device_classes
            ),
            description="Provision each device into its class's group, or its canary group",
        )
        CfnOutput(self, "TokenExchangeRoleAlias", value=prereq.role_alias.role_alias or "")
        CfnOutput(self, "CoreDevicePolicyName", value=prereq.core_device_policy.policy_name or "")
        CfnOutput(
            self,
            "InstallerPolicyArn",
            value=prereq.installer_policy.managed_policy_arn,
            description="Attach to the principal that runs the installer on a new device",
        )
        CfnOutput(
            self,
            "InstallerCommand",
            value=prereq.installer_command(Aws.REGION),
            description="Run on a new core device after downloading the Greengrass nucleus; "
            "replace <device-name>",
        )
