"""The fleet's metrics: ingestion from the devices' metrics topics, dashboard and alarms.

A stack of its own: it depends on no model build, so a dashboard or threshold change never
touches the pipeline, and the pipeline's updates never touch the alarms that gate promotion.
It reads the artifact bucket's name from the artifacts stack (a name that never changes): the
drift baselines are read from the bucket at run time, by model id, not imported from the
pipeline stack, whose every training run would change them (``device_contract.drift``).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_s3 as s3
from constructs import Construct

from app_config import PipelineConfig
from device_contract import fleet_metrics as fm
from edge_constructs.fleet_metrics.construct import FleetMetrics, Ring
from stacks.pipeline_stack import retention_days


def rings_of(config: PipelineConfig) -> list[Ring]:
    """Every class's fleet ring, and its canary ring when it has one."""
    rings = []
    for device_class in config.device_classes:
        rings.append(Ring(device_class.name, fm.FLEET_RING, device_class.thing_group))
        if device_class.canary_thing_group:
            rings.append(Ring(device_class.name, fm.CANARY_RING, device_class.canary_thing_group))
    return rings


class FleetStack(Stack):
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
        self.metrics = FleetMetrics(
            self,
            "FleetMetrics",
            name_prefix=f"{config.prefix}-{config.stage}",
            stage=config.stage,
            topic_prefix=config.publish_topic_prefix,
            rings=rings_of(config),
            alarms=config.fleet_alarms,
            bucket=bucket,
            log_retention=retention_days(config.log_retention_days),
        )
        CfnOutput(self, "MetricsNamespace", value=self.metrics.namespace)
        CfnOutput(self, "Dashboard", value=self.metrics.dashboard.dashboard_name)
        CfnOutput(
            self,
            "Alarms",
            value=", ".join(alarm.alarm_name for alarm in self.metrics.alarms.values()),
            description="python -m rollout.promote refuses while one is in ALARM",
        )
