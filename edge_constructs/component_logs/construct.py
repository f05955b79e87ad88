"""The CloudWatch log groups the Greengrass log manager writes our components' logs to, with
retention, created or adopted by a custom resource (see ``runtime/log_group_logic.py`` for
why not ``AWS::Logs::LogGroup``, and what Delete does: it leaves the group)."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import ArnFormat, Aws, CustomResource, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct

from edge_constructs.lambda_function import PythonFunction
from edge_constructs.nag import acknowledge_provider_framework, acknowledge_wildcards

RUNTIME_DIR = Path(__file__).parent / "runtime"
RESOURCE_TYPE = "Custom::GreengrassLogGroup"
#: The log manager's group of a user component: /aws/greengrass/<componentType>/<region>/
#: <componentName> (Greengrass V2 developer guide, "Monitor AWS IoT Greengrass logs", Access
#: CloudWatch Logs, https://docs.aws.amazon.com/greengrass/v2/developerguide/monitor-logs.html).
USER_COMPONENT_GROUP = "/aws/greengrass/UserComponent/{region}/{component}"


class ComponentLogGroups(Construct):
    """One handler per stack; :meth:`add` declares one component's log group.

    Props:
        component_prefix: every component name this stack logs starts with it (e.g.
            ``com.example.edgeai.dev``); the handler may touch only those groups.
        retention_days: retention of the components' groups, in days (one of the values
            PutRetentionPolicy accepts; the handler refuses others by name).
        log_retention: retention of the handler's own logs.

    A group outlives the stack: Delete leaves it (the devices would recreate it, without
    retention); re-creating the stack adopts it. Remove it by hand once the devices are gone:
    ``aws logs delete-log-group --log-group-name <name>``.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        component_prefix: str,
        retention_days: int,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, id_)
        self.retention_days = retention_days
        self.log_retention = log_retention
        handler = PythonFunction(
            self,
            "Handler",
            code_dir=RUNTIME_DIR,
            handler="log_group_handler.on_event",
            timeout=Duration.minutes(2),
            log_retention=log_retention,
            description=f"{RESOURCE_TYPE}: creates or adopts a Greengrass component's log "
            "group and puts its retention; leaves it on delete",
        )
        groups = Stack.of(self).format_arn(
            service="logs",
            resource="log-group",
            resource_name=USER_COMPONENT_GROUP.format(
                region=Aws.REGION, component=f"{component_prefix}*"
            ),
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        # CreateLogGroup and PutRetentionPolicy are authorized on the log-group resource
        # (Service Authorization Reference, Amazon CloudWatch Logs, actions table).
        handler.role.add_to_policy(
            iam.PolicyStatement(
                sid="ComponentLogGroups",
                actions=["logs:CreateLogGroup", "logs:PutRetentionPolicy"],
                resources=[groups],
            )
        )
        acknowledge_wildcards(
            handler.role,
            "Only the log groups of this stage's Greengrass components: the log manager's "
            "fixed names under /aws/greengrass/UserComponent/<region>/<component prefix>.",
            [
                "Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
                f"/aws/greengrass/UserComponent/<AWS::Region>/{component_prefix}*"
            ],
        )
        self.provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=handler.function,
            log_group=logs.LogGroup(self, "ProviderLogs", retention=log_retention),
        )
        acknowledge_provider_framework(self.provider)
        self._role = handler.role

    def add(self, scope: Construct, id_: str, *, component: str) -> CustomResource:
        """The log group of ``component`` (a Greengrass user component), with retention."""
        resource = CustomResource(
            scope,
            id_,
            service_token=self.provider.service_token,
            resource_type=RESOURCE_TYPE,
            properties={
                "LogGroupName": USER_COMPONENT_GROUP.format(region=Aws.REGION, component=component),
                "RetentionInDays": str(self.retention_days),
            },
        )
        resource.node.add_dependency(self._role)
        return resource
