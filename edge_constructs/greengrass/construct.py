"""Greengrass V2 component versions and the deployment (L1 only: aws_greengrassv2 has no L2)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_greengrassv2 as greengrass
from constructs import Construct

from edge_constructs.naming import content_version, digest

LOG_MANAGER = "aws.greengrass.LogManager"
NUCLEUS = "aws.greengrass.Nucleus"


class ComponentVersion(Construct):
    """One immutable component version whose version number is derived from its content.

    Props:
        name: component name.
        major_minor: the fixed part of the version (default ``1.0``).
        recipe_for: builds the recipe for a given version string. The version is derived from
            the recipe built with a placeholder version plus ``extra_content`` (what the
            recipe cannot show, such as the upstream job behind a token), so it changes exactly
            when the content does.
        extra_content: anything else the version must follow.

    Old versions are retained (not deleted) when a new one replaces them, so a deployment can
    roll back to them.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        recipe_for: Callable[[str], Mapping[str, Any]],
        extra_content: object = None,
        major_minor: str = "1.0",
    ) -> None:
        super().__init__(scope, id_)
        self.name = name
        content = digest(self, {"recipe": recipe_for("0.0.0"), "extra": extra_content})
        self.version = content_version(major_minor, content)
        self.recipe = dict(recipe_for(self.version))
        self.resource = greengrass.CfnComponentVersion(
            self,
            "Resource",
            inline_recipe=Stack.of(self).to_json_string(self.recipe),
        )
        self.resource.apply_removal_policy(RemovalPolicy.RETAIN)
        self.arn = self.resource.attr_arn


@dataclass(frozen=True)
class DeploymentPolicy:
    """Rollout safety of the IoT job behind the deployment, and component updates."""

    timeout_minutes: int
    rollout_max_per_minute: int
    abort_failure_threshold_percent: int
    abort_min_executed_things: int
    component_update_policy: str
    component_update_timeout_seconds: int


class ThingGroupDeployment(Construct):
    """The one deployment of this stack to its thing group.

    Every component is pinned to an exact version; configuration is merged with stale
    ``accessControl`` reset; failed deployments roll back; the IoT job rolls out at a bounded
    rate, aborts past a failure threshold and times out stuck devices.

    A new deployment to the same target replaces the previous one, and components it omits
    are removed from the devices. Deleting the deployment (or the stack) uninstalls nothing.

    Props:
        name: deployment name.
        target_arn: thing group ARN.
        components: name -> (version, configuration to merge or None).
        policy: :class:`DeploymentPolicy`.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        target_arn: str,
        components: Mapping[str, tuple[str, Mapping[str, Any] | None]],
        policy: DeploymentPolicy,
    ) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        specs: dict[str, Any] = {}
        for component, (version, configuration) in sorted(components.items()):
            update = (
                greengrass.CfnDeployment.ComponentConfigurationUpdateProperty(
                    merge=stack.to_json_string(configuration), reset=["/accessControl"]
                )
                if configuration is not None
                else None
            )
            specs[component] = greengrass.CfnDeployment.ComponentDeploymentSpecificationProperty(
                component_version=version, configuration_update=update
            )
        self.resource = greengrass.CfnDeployment(
            self,
            "Resource",
            target_arn=target_arn,
            deployment_name=name,
            components=specs,
            deployment_policies=greengrass.CfnDeployment.DeploymentPoliciesProperty(
                failure_handling_policy="ROLLBACK",
                component_update_policy=greengrass.CfnDeployment.DeploymentComponentUpdatePolicyProperty(
                    action=policy.component_update_policy,
                    timeout_in_seconds=policy.component_update_timeout_seconds,
                ),
                configuration_validation_policy=greengrass.CfnDeployment.DeploymentConfigurationValidationPolicyProperty(
                    timeout_in_seconds=60
                ),
            ),
            iot_job_configuration=greengrass.CfnDeployment.DeploymentIoTJobConfigurationProperty(
                job_executions_rollout_config=greengrass.CfnDeployment.IoTJobExecutionsRolloutConfigProperty(
                    maximum_per_minute=policy.rollout_max_per_minute
                ),
                abort_config=greengrass.CfnDeployment.IoTJobAbortConfigProperty(
                    criteria_list=[
                        greengrass.CfnDeployment.IoTJobAbortCriteriaProperty(
                            action="CANCEL",
                            failure_type="ALL",
                            min_number_of_executed_things=policy.abort_min_executed_things,
                            threshold_percentage=policy.abort_failure_threshold_percent,
                        )
                    ]
                ),
                timeout_config=greengrass.CfnDeployment.IoTJobTimeoutConfigProperty(
                    in_progress_timeout_in_minutes=policy.timeout_minutes
                ),
            ),
        )


def log_manager_configuration(component_names: list[str]) -> dict[str, Any]:
    """Upload system logs and the given components' logs to CloudWatch Logs."""
    return {
        "logsUploaderConfiguration": {
            "systemLogsConfiguration": {"uploadToCloudWatch": "true", "minimumLogLevel": "INFO"},
            "componentLogsConfigurationMap": {
                name: {"minimumLogLevel": "INFO"} for name in sorted(component_names)
            },
        },
        "periodicUploadIntervalSec": 300,
    }
