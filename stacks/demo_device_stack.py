"""The optional demo core device (``-c demo_device=true``): one EC2 instance that joins the
group of one device class (its canary group when it has one), and the step that removes its
IoT thing and certificate on deletion."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from app_config import PipelineConfig
from edge_constructs.core_device.construct import CoreDevicePrerequisites
from edge_constructs.demo_device.construct import DemoCoreDevice
from edge_constructs.demo_device.user_data import LOG_FILE
from stacks.pipeline_stack import retention_days


class DemoDeviceStack(Stack):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: PipelineConfig,
        prerequisites: CoreDevicePrerequisites,
        **kwargs: Any,
    ):
        super().__init__(scope, id_, **kwargs)
        device = DemoCoreDevice(
            self,
            "DemoDevice",
            prerequisites=prerequisites,
            thing_group_name=config.demo_device.thing_group,
            instance_type=config.demo_device.instance_type,
            nucleus_version=config.nucleus_version,
            log_retention=retention_days(config.log_retention_days),
        )
        CfnOutput(self, "InstanceId", value=device.instance.instance_id)
        CfnOutput(
            self,
            "ThingName",
            value=device.thing_name,
            description="The demo device's IoT thing and Greengrass core device name",
        )
        CfnOutput(
            self,
            "SetupLog",
            value=LOG_FILE,
            description="User-data log on the instance (read it with Session Manager)",
        )
