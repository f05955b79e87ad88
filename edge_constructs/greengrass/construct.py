"""Greengrass V2 component versions and the deployment (L1 only: aws_greengrassv2 has no L2)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from aws_cdk import Aws, CfnResource, CustomResource, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import custom_resources as cr
from constructs import Construct

from device_contract import settings
from edge_constructs.artifact_bucket.construct import Prefixes
from edge_constructs.lambda_function import PythonFunction
from edge_constructs.nag import (
    acknowledge_provider_framework,
    acknowledge_wildcards,
    resource_ending,
)
from edge_constructs.naming import content_version, digest
from edge_constructs.props import ComponentPin, DeploymentConfig
from edge_constructs.runtime_common.cr_names import GreengrassComponentVersion as ComponentNames
from edge_constructs.runtime_common.cr_names import GreengrassDeployment as Names

# AWS::GreengrassV2::Deployment IoTJobExecutionsRolloutConfig.MaximumPerMinute: an integer
# from 1 to 1000 (the CloudFormation resource schema, as shipped in cfn-lint's
# data/schemas; https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-greengrassv2-deployment-iotjobexecutionsrolloutconfig.html).
ROLLOUT_PER_MINUTE = (1, 1000)
# ... IoTJobAbortCriteria.ThresholdPercentage: 0 to 100; MinNumberOfExecutedThings: >= 1.
ABORT_PERCENT = (0, 100)
#: The deployment's resource type (read by ``rollout.promote`` and the simulator).
DEPLOYMENT_TYPE = "Custom::GreengrassDeployment"
RUNTIME_DIR = Path(__file__).parent / "runtime"
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
        artifact_bucket: the bucket whose ``Prefixes.DEVICE_READABLE`` hold the recipe's
            artifacts (CreateComponentVersion reads them to compute their digests).
        log_retention: retention of the stack's Greengrass handler's logs (default one month).

    It is a ``Custom::GreengrassComponentVersion`` (runtime/component_logic.py says why) that
    creates the version, or adopts it when it exists with the same recipe, with the native
    resource's attributes (``Arn``, ``ComponentName``, ``ComponentVersion``). A version is
    content-addressed (``naming.content_version``), so a version that exists already is this
    recipe's: one kept by an update that replaced it, by a rolled-back update, or by a deleted
    stack. So a revert (A -> B -> A), a retry after a rollback and a re-created stack all
    deploy.

    Removal: the handler's Delete leaves the version, always: devices run it and promoted
    releases pin it, and deleting a version fails the deployments that name it (botocore
    greengrassv2 DeleteComponent). ``DeletionPolicy`` and ``UpdateReplacePolicy`` stay
    ``Delete`` (the CDK default), so CloudFormation sends that Delete and the one place that
    decides is the handler; a leftover version costs nothing and is adopted by the next create.
    Clean up by hand: ``aws greengrassv2 delete-component --arn <arn>`` for a version nothing
    deploys (README, "This stack owns the thing group's deployment").

    The construct id of the resource is ``Version``, not the native resource's ``Resource``:
    CloudFormation refuses to change a resource's type under one logical ID ("Update of
    resource type is not permitted"). One-time effect on a stack deployed with the native
    resource: the update adopts each current version under the new logical ID, then its cleanup
    removes the old native resource under that resource's last ``DeletionPolicy``. Every
    released version of this project set it to ``Retain`` (RemovalPolicy.RETAIN), so the
    versions stay; a stack deployed from an unreleased commit whose native versions had
    ``Delete`` would lose them: set ``Retain`` in one deploy first (README, "Upgrading a
    deployed stage").
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        recipe_for: Callable[[str], Mapping[str, Any]],
        artifact_bucket: s3.IBucket,
        major_minor: str = "1.0",
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
    ) -> None:
        super().__init__(scope, id_)
        self.name = name
        content = digest(self, recipe_for("0.0.0"))
        self.version = content_version(major_minor, content)
        self.recipe = dict(recipe_for(self.version))
        handler = DeploymentHandler.of(self, log_retention=log_retention)
        grant = handler.grant_component(self, name, artifact_bucket)
        self.custom = CustomResource(
            self,
            "Version",
            service_token=handler.provider.service_token,
            resource_type=ComponentNames.TYPE,
            properties={ComponentNames.INLINE_RECIPE: Stack.of(self).to_json_string(self.recipe)},
        )
        self.custom.node.add_dependency(handler.role, grant)
        resource = self.custom.node.default_child
        assert isinstance(resource, CfnResource)
        self.resource = resource
        self.arn = self.custom.get_att_string(ComponentNames.ARN)


class DeploymentHandler(Construct):
    """The Lambda and Provider behind ``Custom::GreengrassDeployment`` and
    ``Custom::GreengrassComponentVersion`` (one per stack: use :meth:`of`; the handler
    dispatches on the request's ``ResourceType``).

    Its role may create deployments, and cancel and delete them; each
    :class:`ThingGroupDeployment` grants its target with :meth:`grant_target`, each
    :class:`ComponentVersion` its component with :meth:`grant_component`.

    Props:
        log_retention: retention of its logs.
    """

    ID = "GreengrassDeploymentHandler"

    @classmethod
    def of(cls, scope: Construct, *, log_retention: logs.RetentionDays) -> DeploymentHandler:
        """The stack's handler, made on first use; a second caller must ask for the same
        retention."""
        stack = Stack.of(scope)
        found = stack.node.try_find_child(cls.ID)
        if found is None:
            return cls(stack, cls.ID, log_retention=log_retention)
        if not isinstance(found, cls) or found.log_retention != log_retention:
            raise ValueError(f"{stack.node.path}: one {cls.ID} per stack, with one log retention")
        return found

    def __init__(self, scope: Construct, id_: str, *, log_retention: logs.RetentionDays) -> None:
        super().__init__(scope, id_)
        self.log_retention = log_retention
        self.function = PythonFunction(
            self,
            "Handler",
            code_dir=RUNTIME_DIR,
            handler="deployment_handler.handler",
            timeout=Duration.minutes(2),
            log_retention=log_retention,
            description="Custom::GreengrassDeployment, Custom::GreengrassComponentVersion",
        )
        self.role = self.function.role
        stack = Stack.of(self)
        # What each call needs: the registry schema of AWS::GreengrassV2::Deployment (handlers
        # create/delete/list permissions, in cfn-lint's data/schemas) and the Service
        # Authorization Reference's dependent actions
        # (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsiotgreengrassv2.html).
        # CreateDeployment and ListDeployments take no resource type there: "*".
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["greengrass:CreateDeployment", "greengrass:ListDeployments"],
                resources=["*"],
            )
        )
        # A deployment ID is the service's (arn:...:greengrass:<region>:<account>:deployments:<id>).
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "greengrass:CancelDeployment",
                    "greengrass:DeleteDeployment",
                    "greengrass:GetDeployment",
                    "greengrass:TagResource",
                ],
                resources=[stack.format_arn(service="greengrass", resource="deployments:*")],
            )
        )
        # A Delete in a rollback's cleanup reads this stack's status (deployment_logic.delete).
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudformation:DescribeStacks"],
                resources=[Aws.STACK_ID],  # this stack's own ARN (AWS::StackId)
            )
        )
        # The IoT job the deployment runs as: its ID is the service's.
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=list(IOT_JOB_ACTIONS),
                resources=[stack.format_arn(service="iot", resource="job", resource_name="*")],
            )
        )
        # The target group's things (unknown at synth) and their shadows.
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=list(IOT_THING_ACTIONS),
                resources=[stack.format_arn(service="iot", resource="thing", resource_name="*")],
            )
        )
        acknowledge_wildcards(
            self.role,
            "CreateDeployment and ListDeployments have no resource type in the Service "
            "Authorization Reference; deployment and IoT job IDs are the service's, and the "
            "target group's things are not known at synth. Targets are granted one by one.",
            [
                "Resource::*",
                "Resource::arn:<AWS::Partition>:greengrass:<AWS::Region>:<AWS::AccountId>:"
                "deployments:*",
                "Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:job/*",
                "Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:thing/*",
            ],
        )
        self.provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=self.function.function,
            log_group=logs.LogGroup(self, "ProviderLogs", retention=log_retention),
        )
        acknowledge_provider_framework(self.provider)

    def grant_component(
        self, scope: Construct, name: str, artifact_bucket: s3.IBucket
    ) -> iam.Policy:
        """Create, read back and describe versions of component ``name``: a policy of its own in
        ``scope``. What the native resource's create handler needs (registry schema of
        AWS::GreengrassV2::ComponentVersion, handlers.create.permissions:
        greengrass:CreateComponentVersion, greengrass:DescribeComponent, s3:GetObject; not
        lambda:GetFunction: no Lambda recipes), greengrass:TagResource (each version is tagged
        with its recipe's digest), plus greengrass:GetComponent, which reads an existing
        version's tags and recipe before adopting it.
        Scoped to the component and its versions (arn:...:greengrass:<region>:<account>:
        components:<name>, and ...:versions:<version>, botocore ComponentVersionARN); the
        version is not known until the recipe is built, hence ``versions:*``.

        s3:GetObject: CreateComponentVersion reads each artifact to compute its digest, with
        the caller's permissions (the create handler lists s3:GetObject), on the device-readable
        prefixes where this app publishes artifacts (``Prefixes.DEVICE_READABLE``).
        """
        stack = Stack.of(self)
        component = stack.format_arn(service="greengrass", resource=f"components:{name}")
        versions = f"{component}:versions:*"
        policy = iam.Policy(
            scope,
            "HandlerGrant",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(
                    actions=[
                        "greengrass:CreateComponentVersion",
                        "greengrass:DescribeComponent",
                        "greengrass:GetComponent",
                        "greengrass:TagResource",
                    ],
                    resources=[component, versions],
                ),
                iam.PolicyStatement(
                    actions=["s3:GetObject"],
                    resources=[
                        artifact_bucket.arn_for_objects(f"{prefix}*")
                        for prefix in Prefixes.DEVICE_READABLE
                    ],
                ),
            ],
        )
        acknowledge_wildcards(
            policy,
            "A component version is a digest of its recipe, known only when the recipe is "
            "built: the grant covers the versions of this one component. Artifact keys under "
            "the device-readable prefixes are content digests computed at run time.",
            [
                f"Resource::arn:<AWS::Partition>:greengrass:<AWS::Region>:<AWS::AccountId>:"
                f"components:{name}:versions:*",
                *(resource_ending(f"/{prefix}*") for prefix in Prefixes.DEVICE_READABLE),
            ],
        )
        return policy

    def grant_target(self, scope: Construct, target_arn: str) -> iam.Policy:
        """Deploy to (CreateJob on) and describe ``target_arn``, a thing group: a policy of
        its own in ``scope``, so a deployment added or removed leaves the others' untouched."""
        return iam.Policy(
            scope,
            "HandlerGrant",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(
                    actions=["iot:CreateJob", "iot:DescribeThingGroup"], resources=[target_arn]
                )
            ],
        )


#: Dependent actions of CreateDeployment / CancelDeployment on the IoT job, and the native
#: resource's delete handler's iot:DeleteJob (see DeploymentHandler).
IOT_JOB_ACTIONS = (
    "iot:CancelJob",
    "iot:CreateJob",
    "iot:DeleteJob",
    "iot:DescribeJob",
    "iot:UpdateJob",
)
IOT_THING_ACTIONS = (
    "iot:DescribeThing",
    "iot:GetThingShadow",
    "iot:UpdateThingShadow",
    "iot:DeleteThingShadow",
)


class ThingGroupDeployment(Construct):
    """The one deployment of this stack to its thing group.

    Every component is pinned to an exact version; configuration is merged with stale
    ``accessControl`` reset; failed deployments roll back; the IoT job rolls out at a bounded
    rate, aborts past a failure threshold and times out stuck devices.

    A new deployment to the same target replaces the previous one, and components it omits
    are removed from the devices. Deleting the deployment (or the stack) uninstalls nothing.

    It is a ``Custom::GreengrassDeployment`` (runtime/deployment_logic.py says why), with the
    properties of ``AWS::GreengrassV2::Deployment``: a release change is an update, so a stack
    rollback re-issues the previous release to the devices.

    Props:
        name: deployment name.
        target_arn: thing group ARN.
        components: name -> :class:`app_config.ComponentPin` (version, configuration to merge).
        policy: the stage's :class:`app_config.DeploymentConfig`, used as is.
        ring: ``{"stage": ..., "class": ..., "ring": "canary" | "fleet" | "all",
            "topic_prefix": ...}``, recorded in the resource's metadata for ``rollout.promote``.
        log_retention: retention of the stack's deployment handler's logs (default one month).
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
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
    ) -> None:
        super().__init__(scope, id_)
        check_policy(policy)
        if not components:
            raise ValueError(f"deployment {name}: no components")
        stack = Stack.of(self)
        handler = DeploymentHandler.of(self, log_retention=log_retention)
        grant = handler.grant_target(self, target_arn)
        specs: dict[str, Any] = {}
        for component, pin in sorted(components.items()):
            spec: dict[str, Any] = {"ComponentVersion": pin.version}
            if pin.merge is not None:
                spec["ConfigurationUpdate"] = {
                    "Merge": stack.to_json_string(dict(pin.merge)),
                    "Reset": settings.reset_pointers(pin.merge),
                }
            specs[component] = spec
        properties = {
            Names.TARGET_ARN: target_arn,
            Names.DEPLOYMENT_NAME: name,
            Names.COMPONENTS: specs,
            Names.DEPLOYMENT_POLICIES: {
                "FailureHandlingPolicy": "ROLLBACK",
                "ComponentUpdatePolicy": {
                    "Action": policy.component_update_policy,
                    "TimeoutInSeconds": policy.component_update_timeout_seconds,
                },
                "ConfigurationValidationPolicy": {"TimeoutInSeconds": 60},
            },
            Names.IOT_JOB_CONFIGURATION: {
                "JobExecutionsRolloutConfig": {"MaximumPerMinute": policy.rollout_max_per_minute},
                "AbortConfig": {
                    "CriteriaList": [
                        {
                            "Action": "CANCEL",
                            "FailureType": "ALL",
                            "MinNumberOfExecutedThings": policy.abort_min_executed_things,
                            "ThresholdPercentage": policy.abort_failure_threshold_percent,
                        }
                    ]
                },
                "TimeoutConfig": {"InProgressTimeoutInMinutes": policy.timeout_minutes},
            },
        }
        # Not "Resource": the native resource's logical ID was made from .../Resource, and
        # CloudFormation refuses to change a resource's type under one logical ID ("Update of
        # resource type is not permitted"), so the custom resource takes a new one.
        self.custom = CustomResource(
            self,
            "Release",
            service_token=handler.provider.service_token,
            resource_type=DEPLOYMENT_TYPE,
            properties=properties,
        )
        self.custom.node.add_dependency(handler.role, grant)
        resource = self.custom.node.default_child
        assert isinstance(resource, CfnResource)
        self.resource = resource
        self.resource.add_metadata(RING_METADATA, dict(ring))
        self.deployment_id = self.custom.get_att_string(Names.DEPLOYMENT_ID)


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
