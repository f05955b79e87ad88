"""Resource providers: what CloudFormation does in each service for each resource type.

Dispatch is by resource type (as moto's ``cloudformation/parsing.py`` dispatches to each
service's ``cloudformation_type()``): ``PROVIDERS[type]`` has ``create``, ``update`` (in place)
and ``delete``, each acting through the service's backend, so a refusal is the service's own
(names that must be unique, a policy attached to a certificate, a version that exists).
Which property changes need a replacement comes from the type's registry schema
(``createOnlyProperties``, cfn-lint's copy in ``cfnlint/data/schemas/providers/us_east_1/``).
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from device_sim.cloud.cloudformation.context import Context, Created, ResourceFailed
from device_sim.cloud.cloudformation.stack import DeployedResource
from device_sim.cloud.errors import AssemblyError, ServiceError
from device_sim.cloud.events import Rule
from device_sim.cloud.greengrass import parse_recipe
from device_sim.cloud.lambda_ import Function


class Provider(Protocol):
    def create(self, ctx: Context, logical: str, props: dict[str, Any]) -> Created: ...

    def update(
        self, ctx: Context, resource: DeployedResource, props: dict[str, Any]
    ) -> dict[str, Any]: ...

    def delete(self, ctx: Context, resource: DeployedResource) -> None: ...


class Base:
    def update(
        self, ctx: Context, resource: DeployedResource, props: dict[str, Any]
    ) -> dict[str, Any]:
        return resource.attributes

    def delete(self, ctx: Context, resource: DeployedResource) -> None:
        return None


class Bucket(Base):
    def create(self, ctx: Context, logical: str, props: dict[str, Any]) -> Created:
        name = props.get("BucketName") or ctx.generated_name(logical, 63, lower=True)
        ctx.cloud.s3_backend.create_bucket(name)
        env = ctx.env
        return name, {
            "Arn": f"arn:{env.partition}:s3:::{name}",
            "DomainName": f"{name}.s3.{env.url_suffix}",
            "RegionalDomainName": f"{name}.s3.{env.region}.{env.url_suffix}",
        }

    def delete(self, ctx: Context, resource: DeployedResource) -> None:
        ctx.cloud.s3_backend.delete_bucket(resource.physical_id)


class BucketPolicy(Base):
    def create(self, ctx: Context, logical: str, props: dict[str, Any]) -> Created:
        ctx.cloud.s3_backend.put_bucket_policy(props["Bucket"], props["PolicyDocument"])
        return props["Bucket"], {}

    def update(
        self, ctx: Context, resource: DeployedResource, props: dict[str, Any]
    ) -> dict[str, Any]:
        ctx.cloud.s3_backend.put_bucket_policy(props["Bucket"], props["PolicyDocument"])
        return {}

    def delete(self, ctx: Context, resource: DeployedResource) -> None:
        ctx.cloud.s3_backend.delete_bucket_policy(resource.physical_id)


class IamRole(Base):
    def create(self, ctx: Context, logical: str, props: dict[str, Any]) -> Created:
        iam = ctx.cloud.iam
        name = props.get("RoleName") or ctx.generated_name(logical, 64)
        role = iam.create_role(name, props.get("Path", "/"), props.get("AssumeRolePolicyDocument"))
        self._apply(ctx, name, {}, props)
        return name, {"Arn": role.arn, "RoleId": "AROA" + name[:16].upper()}

    def _apply(self, ctx: Context, name: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        iam = ctx.cloud.iam
        for p in old.get("Policies", []):
            iam.delete_role_policy(name, p["PolicyName"])
        for p in new.get("Policies", []):
            iam.put_role_policy(name, p["PolicyName"], p["PolicyDocument"])
        role = iam.roles[name]
        for arn in old.get("ManagedPolicyArns", []):
            if arn in role.managed_policy_arns:
                role.managed_policy_arns.remove(arn)
        for arn in new.get("ManagedPolicyArns", []):
            if arn not in role.managed_policy_arns:
                role.managed_policy_arns.append(arn)
        role.trust_policy = new.get("AssumeRolePolicyDocument")

    def update(
        self, ctx: Context, resource: DeployedResource, props: dict[str, Any]
    ) -> dict[str, Any]:
        self._apply(ctx, resource.physical_id, resource.properties, props)
        return resource.attributes

    def delete(self, ctx: Context, resource: DeployedResource) -> None:
        """The schema's delete handler detaches the managed policies the template declared
        and deletes its inline policies, then ``DeleteRole``: anything else still attached
        (a policy attached outside the stack) makes IAM refuse with ``DeleteConflict``."""
        if resource.physical_id not in ctx.cloud.iam.roles:
            return
        self._apply(ctx, resource.physical_id, resource.properties, {})
        ctx.cloud.iam.delete_role(resource.physical_id)


class IamPolicy(Base):
    def create(self, ctx: Context, logical: str, props: dict[str, Any]) -> Created:
        for role in props.get("Roles", []):
            ctx.cloud.iam.put_role_policy(role, props["PolicyName"], props["PolicyDocument"])
        return ctx.generated_name(logical, 64), {"Id": props["PolicyName"]}

    def update(
        self, ctx: Context, resource: DeployedResource, props: dict[str, Any]
    ) -> dict[str, Any]:
        self.delete(ctx, resource)
        self.create(ctx, resource.logical_id, props)
        return resource.attributes

    def delete(self, ctx: Context, resource: DeployedResource) -> None:
        for role in resource.properties.get("Roles", []):
            ctx.cloud.iam.delete_role_policy(role, resource.properties["PolicyName"])


class ManagedPolicy(Base):
    def create(self, ctx: Context, logical: str, props: dict[str, Any]) -> Created:
        iam = ctx.cloud.iam
        name = props.get("ManagedPolicyName") or ctx.generated_name(logical, 128)
        arn = iam.create_policy(name, props["PolicyDocument"], props.get("Path", "/"))
        for role in props.get("Roles", []):
            iam.attach_role_policy(role, arn)
        return arn, {"PolicyArn": arn}

    def update(
        self, ctx: Context, resource: DeployedResource, props: dict[str, Any]
    ) -> dict[str, Any]:
        iam, arn = ctx.cloud.iam, resource.physical_id
        iam.set_policy_document(arn, props["PolicyDocument"])
        for role in resource.properties.get("Roles", []):
            iam.detach_role_policy(role, arn)
        for role in props.get("Roles", []):
            iam.attach_role_policy(role, arn)
        return resource.attributes

    def delete(self, ctx: Context, resource: DeployedResource) -> None:
        iam, arn = ctx.cloud.iam, resource.physical_id
        for role in resource.properties.get("Roles", []):
            iam.detach_role_policy(role, arn)
        iam.delete_policy(arn)


class IotPolicy(Base):
    def create(self, ctx: Context, logical: str, props: dict[str, Any]) -> Created:
        name = props.get("PolicyName") or ctx.generated_name(logical, 128)
        arn = ctx.cloud.iot.create_policy(name, props["PolicyDocument"])
        return name, {"Arn": arn, "Id": name}

    def update(
        self, ctx: Context, resource: DeployedResource, props: dict[str, Any]
    ) -> dict[str, Any]:
        ctx.cloud.iot.set_policy_document(resource.physical_id, props["PolicyDocument"])
        return resource.attributes

    def delete(self, ctx: Context, resource: DeployedResource) -> None:
        """The ``AWS::IoT::Policy`` delete handler calls ``DeletePolicy`` (and the version
        calls) only — its schema's delete permissions name no ``iot:DetachPolicy`` — so a
        policy still attached to a certificate fails with ``DeleteConflictException``."""
        ctx.cloud.iot.delete_policy(resource.physical_id)


class RoleAlias(Base):
    def create(self, ctx: Context, logical: str, props: dict[str, Any]) -> Created:
        name = props.get("RoleAlias") or ctx.generated_name(logical, 128)
        arn = ctx.cloud.iot.create_role_alias(name, props["RoleArn"])
        return name, {"RoleAliasArn": arn}

    def update(
        self, ctx: Context, resource: DeployedResource, props: dict[str, Any]
    ) -> dict[str, Any]:
        ctx.cloud.iot.role_aliases[resource.physical_id] = props["RoleArn"]
        return resource.attributes

    def delete(self, ctx: Context, resource: DeployedResource) -> None:
        ctx.cloud.iot.delete_role_alias(resource.physical_id)


class ThingGroup(Base):
    def create(self, ctx: Context, logical: str, props: dict[str, Any]) -> Created:
        name = props.get("ThingGroupName") or ctx.generated_name(logical, 128)
        arn = ctx.cloud.iot.create_thing_group(name)
        return name, {"Arn": arn, "Id": name}

    def delete(self, ctx: Context, resource: DeployedResource) -> None:
        ctx.cloud.iot.delete_thing_group(resource.physical_id)


class LambdaFunction(Base):
    def create(self, ctx: Context, logical: str, props: dict[str, Any]) -> Created:
        name = props.get("FunctionName") or ctx.generated_name(logical, 64)
        arn = ctx.cloud.lambda_.arn(name)
        ctx.cloud.lambda_.create_function(self._function(ctx, name, arn, props))
        return name, {"Arn": arn}

    def _function(self, ctx: Context, name: str, arn: str, props: dict[str, Any]) -> Function:
        key = str(props.get("Code", {}).get("S3Key", ""))
        folder = None
        for asset in ctx.artifact.assets.values():
            if asset.object_key == key and asset.source.is_dir():
                folder = asset.source
        variables = props.get("Environment", {}).get("Variables", {})
        return Function(
            name,
            arn,
            str(props.get("Handler", "")),
            folder,
            {k: str(v) for k, v in variables.items()},
        )

    def update(
        self, ctx: Context, resource: DeployedResource, props: dict[str, Any]
    ) -> dict[str, Any]:
        arn = resource.attributes["Arn"]
        ctx.cloud.lambda_.functions[arn] = self._function(ctx, resource.physical_id, arn, props)
        return resource.attributes

    def delete(self, ctx: Context, resource: DeployedResource) -> None:
        ctx.cloud.lambda_.delete_function(resource.attributes["Arn"])


class LogGroup(Base):
    def create(self, ctx: Context, logical: str, props: dict[str, Any]) -> Created:
        name = props.get("LogGroupName") or ctx.generated_name(logical, 512)
        retention = props.get("RetentionInDays")
        arn = ctx.cloud.logs.create_log_group(
            name, f"stack {ctx.artifact.stack_name}", int(retention) if retention else None
        )
        return name, {"Arn": arn}

    def update(
        self, ctx: Context, resource: DeployedResource, props: dict[str, Any]
    ) -> dict[str, Any]:
        retention = props.get("RetentionInDays")
        ctx.cloud.logs.put_retention_policy(
            resource.physical_id, int(retention) if retention else None
        )
        return resource.attributes

    def delete(self, ctx: Context, resource: DeployedResource) -> None:
        ctx.cloud.logs.delete_log_group(resource.physical_id)


class EventRule(Base):
    def create(self, ctx: Context, logical: str, props: dict[str, Any]) -> Created:
        name = props.get("Name") or ctx.generated_name(logical, 64)
        arn = ctx.cloud.events.put_rule(
            Rule(
                name,
                props.get("EventPattern", {}),
                list(props.get("Targets", [])),
                props.get("State", "ENABLED") == "ENABLED",
            )
        )
        return name, {"Arn": arn}

    def update(
        self, ctx: Context, resource: DeployedResource, props: dict[str, Any]
    ) -> dict[str, Any]:
        self.create(ctx, resource.physical_id, {**props, "Name": resource.physical_id})
        return resource.attributes

    def delete(self, ctx: Context, resource: DeployedResource) -> None:
        ctx.cloud.events.delete_rule(resource.physical_id)


class SqsQueue(Base):
    """``AWS::SQS::Queue``: ``Ref`` is the queue URL; ``Arn`` and ``QueueName`` are attributes
    (registry schema aws-sqs-queue.json; CloudFormation template reference)."""

    def create(self, ctx: Context, logical: str, props: dict[str, Any]) -> Created:
        from device_sim.cloud.sqs import Queue, redrive

        name = props.get("QueueName") or ctx.generated_name(logical, 80)
        arn = ctx.cloud.sqs.arn(name)
        dead, receives = redrive(props)
        ctx.cloud.sqs.create_queue(Queue(name, arn, dead, receives))
        url = f"https://sqs.{ctx.env.region}.{ctx.env.url_suffix}/{ctx.env.account}/{name}"
        return url, {"Arn": arn, "QueueName": name, "QueueUrl": url}

    def delete(self, ctx: Context, resource: DeployedResource) -> None:
        ctx.cloud.sqs.delete_queue(resource.attributes["Arn"])


class EventSourceMapping(Base):
    """``AWS::Lambda::EventSourceMapping`` from a queue (``EventSourceArn``) to a function
    (``FunctionName``: a name or an ARN, botocore lambda ``CreateEventSourceMapping``)."""

    def _mapping(self, ctx: Context, props: dict[str, Any]) -> Any:
        from device_sim.cloud.sqs import EventSourceMapping as Mapping

        function = str(props.get("FunctionName", ""))
        arn = function if function.startswith("arn:") else ctx.cloud.lambda_.arn(function)
        return Mapping(
            str(props.get("EventSourceArn", "")),
            arn,
            "ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
            int(props.get("BatchSize", 10)),
        )

    def create(self, ctx: Context, logical: str, props: dict[str, Any]) -> Created:
        ctx.cloud.sqs.add_mapping(self._mapping(ctx, props))
        return ctx.generated_name(logical, 64), {}

    def delete(self, ctx: Context, resource: DeployedResource) -> None:
        mapping = self._mapping(ctx, resource.properties)
        ctx.cloud.sqs.remove_mapping(mapping.queue_arn, mapping.function_arn)


class TopicRule(Base):
    """``AWS::IoT::TopicRule``: the rule, its SQL and its Lambda actions, in the rules engine
    (``device_sim/cloud/rules.py``). ``Ref`` is the rule name, ``Arn`` an attribute (registry
    schema aws-iot-topicrule.json); a name CloudFormation generates has only letters, digits
    and ``_`` (the schema's ``RuleName`` pattern ``^[a-zA-Z0-9_]+$``)."""

    def create(self, ctx: Context, logical: str, props: dict[str, Any]) -> Created:
        import re

        from device_sim.cloud.rules import TopicRule as Rule
        from device_sim.cloud.rules import parse_sql

        name = props.get("RuleName") or re.sub(
            r"[^A-Za-z0-9_]", "_", ctx.generated_name(logical, 128)
        )
        payload = props.get("TopicRulePayload", {})
        statement = parse_sql(name, str(payload.get("Sql", "")))
        arns = [
            str(action["Lambda"]["FunctionArn"])
            for action in payload.get("Actions", [])
            if "Lambda" in action
        ]
        for arn in arns:
            ctx.cloud.rules.check_function(name, arn)
        arn = ctx.env.arn("iot", f"rule/{name}")
        ctx.cloud.rules.put_rule(
            Rule(name, arn, statement, arns, not payload.get("RuleDisabled", False))
        )
        return name, {"Arn": arn}

    def update(
        self, ctx: Context, resource: DeployedResource, props: dict[str, Any]
    ) -> dict[str, Any]:
        self.create(ctx, resource.logical_id, {**props, "RuleName": resource.physical_id})
        return resource.attributes

    def delete(self, ctx: Context, resource: DeployedResource) -> None:
        ctx.cloud.rules.delete_rule(resource.physical_id)


class LambdaPermission(Base):
    """``AWS::Lambda::Permission``: a statement of the function's resource policy (botocore
    lambda ``AddPermission``: ``FunctionName`` a name or an ARN, ``Principal``, ``SourceArn``)."""

    def create(self, ctx: Context, logical: str, props: dict[str, Any]) -> Created:
        from device_sim.cloud.rules import Permission

        function = str(props.get("FunctionName", ""))
        arn = function if function.startswith("arn:") else ctx.cloud.lambda_.arn(function)
        sid = ctx.generated_name(logical, 100)
        source = props.get("SourceArn")
        ctx.cloud.rules.add_permission(
            sid, Permission(arn, str(props.get("Principal", "")), str(source) if source else None)
        )
        return sid, {}

    def update(
        self, ctx: Context, resource: DeployedResource, props: dict[str, Any]
    ) -> dict[str, Any]:
        ctx.cloud.rules.remove_permission(resource.physical_id)
        self.create(ctx, resource.logical_id, props)
        return resource.attributes

    def delete(self, ctx: Context, resource: DeployedResource) -> None:
        ctx.cloud.rules.remove_permission(resource.physical_id)


class WaitConditionHandle(Base):
    def create(self, ctx: Context, logical: str, props: dict[str, Any]) -> Created:
        return ctx.cloud.wait_conditions.create_handle(ctx.stack_id, logical), {}


class WaitCondition(Base):
    """The wait condition completes with ``Count`` SUCCESS signals, fails on a FAILURE signal,
    and otherwise times out after ``Timeout`` seconds (User Guide, "Create wait conditions in a
    CloudFormation template"); ``Data`` is the JSON object of UniqueId -> Data."""

    def create(self, ctx: Context, logical: str, props: dict[str, Any]) -> Created:
        handle = ctx.cloud.wait_conditions.handles.get(str(props.get("Handle", "")))
        if handle is None:
            raise AssemblyError(f"{logical}: Handle is not a wait-condition handle of this account")
        count = int(props.get("Count", 1))
        failures = [s for s in handle.signals if s.get("Status") == "FAILURE"]
        if failures:
            raise ResourceFailed(
                f"WaitCondition received failed message: '{failures[0].get('Reason', '')}' "
                f"for uniqueId: {failures[0].get('UniqueId', '')}"
            )
        successes = [s for s in handle.signals if s.get("Status") == "SUCCESS"]
        if len(successes) < count:
            ctx.cloud.advance(float(props.get("Timeout", 0)))
            raise ResourceFailed(
                f"WaitCondition timed out. Received {len(successes)} conditions when "
                f"expecting {count}"
            )
        data = {str(s.get("UniqueId")): s.get("Data", "") for s in successes}
        return ctx.generated_name(logical, 64), {"Data": json.dumps(data)}


class ComponentVersion(Base):
    def create(self, ctx: Context, logical: str, props: dict[str, Any]) -> Created:
        recipe = parse_recipe(props["InlineRecipe"], ctx.artifact.display_name, logical)
        component = ctx.cloud.greengrass.create_component_version(recipe)
        return component.arn, {
            "Arn": component.arn,
            "ComponentName": component.name,
            "ComponentVersion": component.version,
        }

    def delete(self, ctx: Context, resource: DeployedResource) -> None:
        ctx.cloud.greengrass.delete_component(resource.physical_id)


class Deployment(Base):
    def create(self, ctx: Context, logical: str, props: dict[str, Any]) -> Created:
        deployment_id = ctx.cloud.greengrass.create_deployment(props)
        return deployment_id, {"DeploymentId": deployment_id}

    def delete(self, ctx: Context, resource: DeployedResource) -> None:
        """The schema's delete handler: ``CancelDeployment`` then ``DeleteDeployment``
        (handlers.delete.permissions of aws-greengrassv2-deployment.json); devices keep what
        they received ("Deleting a deployment doesn't affect core devices")."""
        gg = ctx.cloud.greengrass
        if resource.physical_id in gg.records:
            gg.cancel_deployment(resource.physical_id)
            gg.delete_deployment(resource.physical_id)


class Unmodelled(Base):
    """A resource no device sees (a VPC, an instance, ...): it answers Fn::GetAtt with an opaque
    ``sim-<logical>-<attribute>`` for each attribute its schema declares."""

    def __init__(self, rtype: str) -> None:
        self.rtype = rtype

    def create(self, ctx: Context, logical: str, props: dict[str, Any]) -> Created:
        from device_sim.cloud.cloudformation.schema import attributes

        return ctx.generated_name(logical, 64), {
            name: f"sim-{logical}-{name}" for name in attributes(self.rtype, ctx.env.region)
        }


PROVIDERS: dict[str, Provider] = {
    "AWS::S3::Bucket": Bucket(),
    "AWS::S3::BucketPolicy": BucketPolicy(),
    "AWS::IAM::Role": IamRole(),
    "AWS::IAM::Policy": IamPolicy(),
    "AWS::IAM::ManagedPolicy": ManagedPolicy(),
    "AWS::IoT::Policy": IotPolicy(),
    "AWS::IoT::RoleAlias": RoleAlias(),
    "AWS::IoT::ThingGroup": ThingGroup(),
    "AWS::Lambda::Function": LambdaFunction(),
    "AWS::Logs::LogGroup": LogGroup(),
    "AWS::Events::Rule": EventRule(),
    "AWS::SQS::Queue": SqsQueue(),
    "AWS::Lambda::EventSourceMapping": EventSourceMapping(),
    "AWS::Lambda::Permission": LambdaPermission(),
    "AWS::IoT::TopicRule": TopicRule(),
    "AWS::CloudFormation::WaitConditionHandle": WaitConditionHandle(),
    "AWS::CloudFormation::WaitCondition": WaitCondition(),
    "AWS::GreengrassV2::ComponentVersion": ComponentVersion(),
    "AWS::GreengrassV2::Deployment": Deployment(),
}


def provider(rtype: str) -> Provider:
    if rtype.startswith("Custom::") or rtype == "AWS::CloudFormation::CustomResource":
        from device_sim.cloud.cloudformation.custom import CustomResource

        return CustomResource(rtype)
    return PROVIDERS.get(rtype) or Unmodelled(rtype)


__all__ = ["PROVIDERS", "Context", "ResourceFailed", "ServiceError", "provider"]
