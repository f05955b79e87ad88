"""Greengrass V2 component versions and the deployment (L1 only: aws_greengrassv2 has no L2)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aws_cdk import CfnDeletionPolicy, Stack
from aws_cdk import aws_greengrassv2 as greengrass
from constructs import Construct

from app_config import ComponentPin, DeploymentConfig
from edge_constructs.naming import content_version, digest

# AWS::GreengrassV2::Deployment IoTJobExecutionsRolloutConfig.MaximumPerMinute: an integer
# from 1 to 1000 (the CloudFormation resource schema, as shipped in cfn-lint's
# data/schemas; https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-greengrassv2-deployment-iotjobexecutionsrolloutconfig.html).
ROLLOUT_PER_MINUTE = (1, 1000)
# ... IoTJobAbortCriteria.ThresholdPercentage: 0 to 100; MinNumberOfExecutedThings: >= 1.
ABORT_PERCENT = (0, 100)
#: Resource metadata key that names a deployment's device class and ring (read by
#: ``rollout.promote`` in the synthesized template).
RING_METADATA = "EdgeAiRing"

LOG_MANAGER = "aws.greengrass.LogManager"
NUCLEUS = "aws.greengrass.Nucleus"


class ComponentVersion(Construct):
    """One immutable component version whose version number is derived from its content.

    Props:
        name: component name.
        major_minor: the fixed part of the version (default ``1.0``).
        recipe_for: builds the recipe for a given version string. The version is a digest of
            the whole recipe built with a placeholder version, in which every reference to a
            job, package or published artifact stands for that resource's own content
            (``naming.digest``): what is behind a token counts by construction, with nothing
            to hand-pick.

    Removal: a version replaced by an update is kept (``UpdateReplacePolicy: Retain``), so a
    deployment can roll back to it and a promoted release can pin it. Otherwise it is deleted
    (``DeletionPolicy: Delete``): when the stack operation that created it rolls back, and on
    stack delete. A version is content-addressed (``naming.content_version``) and its
    ``InlineRecipe`` create-only (the resource's registry schema, as cfn-lint ships it), so a
    version left behind by a rolled-back create, or by a deleted stack, makes the next
    CreateComponentVersion of the same ``name@version`` fail with ConflictException (botocore
    greengrassv2 CreateComponentVersion errors): the retry after a rollback, and the re-created
    stack. (``RetainExceptOnCreate`` would cover the rollback only: it retains on stack delete,
    CloudFormation User Guide, "DeletionPolicy attribute".) Deleting a version uninstalls
    nothing from the devices that run it; it fails deployments that still refer to it
    (botocore greengrassv2 DeleteComponent), and a stack delete deletes this stack's
    deployments first (they depend on the versions).

    Still colliding: a version kept by a replacement, when its content is created again (a
    configuration reverted to an earlier one). Delete it first with
    ``aws greengrassv2 delete-component --arn <arn>`` (README, "Operating the pipeline").
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        recipe_for: Callable[[str], Mapping[str, Any]],
        major_minor: str = "1.0",
    ) -> None:
        super().__init__(scope, id_)
        self.name = name
        content = digest(self, recipe_for("0.0.0"))
        self.version = content_version(major_minor, content)
        self.recipe = dict(recipe_for(self.version))
        self.resource = greengrass.CfnComponentVersion(
            self,
            "Resource",
            inline_recipe=Stack.of(self).to_json_string(self.recipe),
        )
        self.resource.cfn_options.deletion_policy = CfnDeletionPolicy.DELETE
        self.resource.cfn_options.update_replace_policy = CfnDeletionPolicy.RETAIN
        self.arn = self.resource.attr_arn


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
        components: name -> :class:`app_config.ComponentPin` (version, configuration to merge).
        policy: the stage's :class:`app_config.DeploymentConfig`, used as is.
        ring: ``{"stage": ..., "class": ..., "ring": "canary" | "fleet" | "all"}``, recorded in
            the resource's metadata for ``rollout.promote``.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        target_arn: str,
        components: Mapping[str, ComponentPin],
        policy: DeploymentConfig,
        ring: Mapping[str, str],
    ) -> None:
        super().__init__(scope, id_)
        check_policy(policy)
        stack = Stack.of(self)
        specs: dict[str, Any] = {}
        for component, pin in sorted(components.items()):
            update = (
                greengrass.CfnDeployment.ComponentConfigurationUpdateProperty(
                    merge=stack.to_json_string(dict(pin.merge)), reset=["/accessControl"]
                )
                if pin.merge is not None
                else None
            )
            specs[component] = greengrass.CfnDeployment.ComponentDeploymentSpecificationProperty(
                component_version=pin.version, configuration_update=update
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
        self.resource.add_metadata(RING_METADATA, dict(ring))


def check_policy(policy: DeploymentConfig) -> None:
    """Refuse at synth what CloudFormation would refuse at deploy (see the bounds above)."""
    low, high = ROLLOUT_PER_MINUTE
    if not low <= policy.rollout_max_per_minute <= high:
        raise ValueError(
            f"rollout_max_per_minute={policy.rollout_max_per_minute}: CloudFormation allows "
            f"{low}-{high} (AWS::GreengrassV2::Deployment MaximumPerMinute)"
        )
    low, high = ABORT_PERCENT
    if not low <= policy.abort_failure_threshold_percent <= high:
        raise ValueError(
            f"abort_failure_threshold_percent={policy.abort_failure_threshold_percent}: "
            f"CloudFormation allows {low}-{high}"
        )
    if policy.abort_min_executed_things < 1:
        raise ValueError("abort_min_executed_things must be at least 1")


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
