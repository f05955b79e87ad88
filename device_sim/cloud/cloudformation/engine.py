"""The CloudFormation stack lifecycle: create, update, delete, and the rollbacks that follow a
failure, over the simulated account's service backends.

Sources (AWS CloudFormation User Guide unless named): "Update behaviors of stack resources"
(in-place update vs replacement: a change to a ``createOnlyProperties`` property of the type's
registry schema replaces the resource: "CloudFormation creates the replacement resource first
... By default, CloudFormation then deletes the old resource", ``UpdateReplacePolicy``
attribute); "DeletionPolicy attribute" (``Delete``, ``Retain``, ``RetainExceptOnCreate``:
"behaves like Retain for stack operations, except for the stack operation that initially
created the resource. If the stack operation that created the resource is rolled back,
CloudFormation deletes the resource"); "Stack status codes" and botocore cloudformation's
``StackStatus`` enum (CREATE_COMPLETE, ROLLBACK_COMPLETE, ROLLBACK_FAILED, UPDATE_COMPLETE,
UPDATE_ROLLBACK_COMPLETE, UPDATE_ROLLBACK_FAILED, DELETE_COMPLETE, DELETE_FAILED); "Rolling back
an update": a failed update returns each updated resource to its previous state (a custom
resource gets an Update whose ResourceProperties are the old ones) and, in
UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS, deletes what the failed update created. Whether
the new physical copy of a replacement rolled back obeys ``UpdateReplacePolicy`` is stated in
no AWS page; a live A/B reported in go-to-k/cdkd pull request 2634 ("honour UpdateReplacePolicy
across replacement rollback") found it does: a ``Retain`` copy survives the rollback.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from device_sim.cloud.account import Cloud
from device_sim.cloud.cloudformation.providers import Context, ResourceFailed, provider
from device_sim.cloud.cloudformation.schema import create_only
from device_sim.cloud.cloudformation.stack import (
    DeployedResource,
    DeployedStack,
    StackArtifact,
    StackEvent,
)
from device_sim.cloud.cloudformation.template import Resolver, resource_order
from device_sim.cloud.errors import AssemblyError, ServiceError
from device_sim.cloud.standins import StandIns

RETAINING = ("Retain", "RetainExceptOnCreate")
# The property that gives each modelled type a custom name (the template reference's "Name
# type" properties): a replacement under an unchanged custom name is refused.
CUSTOM_NAME_PROPERTIES = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IoT::Policy": "PolicyName",
    "AWS::IoT::ThingGroup": "ThingGroupName",
    "AWS::IoT::RoleAlias": "RoleAlias",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::Events::Rule": "Name",
}


@dataclass(frozen=True)
class Failure:
    """Make the operation on ``logical_id`` fail (``during``: create, update, delete, any,
    rollback, or stabilize).

    ``stabilize``: the create or update call reached the service and did its work, then the
    resource failed, as a handler does that answers ``FAILED`` with ``HandlerErrorCode``
    ``NotStabilized`` after its call (CloudFormation CLI User Guide, "Progress chaining,
    stabilization and callback pattern" and "Handler error codes"), or a custom resource whose
    function acted and then timed out. It is how a failure comes *after* the resource's effect
    (a deployment already sent to the devices), which the other phases, checked before the
    call, cannot show.
    """

    logical_id: str
    during: str = "any"
    reason: str = "injected failure"


@dataclass
class _Touched:
    kind: str  # "created" | "updated" | "replaced"
    logical: str
    old: DeployedResource | None = None
    new: DeployedResource | None = None


@dataclass
class _Operation:
    stack: DeployedStack
    ctx: Context
    failure: Failure | None
    touched: list[_Touched] = field(default_factory=list)


class CloudFormation:
    def __init__(self, cloud: Cloud, stand_ins: StandIns | None = None) -> None:
        self.cloud = cloud
        self.stand_ins = stand_ins
        self.operations = 0
        self.brought: set[str] = set()
        self._stack_ids: dict[str, int] = {}

    # -- helpers
    def _context(self, artifact: StackArtifact, stack_id: str) -> Context:
        self.operations += 1
        return Context(
            self.cloud, artifact, stack_id, self.operations, self.stand_ins, self.brought
        )

    def _stack_id(self, name: str) -> str:
        self._stack_ids[name] = self._stack_ids.get(name, 0) + 1
        return self.cloud.env.arn(
            "cloudformation", f"stack/{name}/{self._stack_ids[name]:08d}-0000-4000-8000-sim"
        )

    @staticmethod
    def _event(stack: DeployedStack, logical: str, status: str, reason: str = "") -> None:
        stack.events.append(StackEvent(logical, status, reason))

    @staticmethod
    def _check(op: _Operation, logical: str, during: str) -> None:
        f = op.failure
        if f is not None and f.logical_id == logical and f.during in (during, "any"):
            raise ResourceFailed(f"{f.reason} ({during} of {logical})")

    def _resolver(
        self, artifact: StackArtifact, current: dict[str, DeployedResource], stack_id: str
    ) -> Resolver:
        resolver = Resolver(self.cloud, artifact, current)
        resolver.stack_id = stack_id
        return resolver

    def publish_assets(self, artifact: StackArtifact) -> None:
        """``cdk deploy`` uploads file assets to the bootstrap bucket before the stack."""
        from device_sim.cloud.standins import zip_folder

        env, s3 = self.cloud.env, self.cloud.s3_backend
        for asset in artifact.assets.values():
            bucket = (
                asset.bucket_template.replace("${AWS::AccountId}", env.account)
                .replace("${AWS::Region}", env.region)
                .replace("${AWS::Partition}", env.partition)
            )
            s3.ensure_bucket(bucket)
            data = (
                asset.source.read_bytes() if asset.packaging == "file" else zip_folder(asset.source)
            )
            s3.put(bucket, asset.object_key, data)

    # -- cdk deploy
    def deploy(self, artifact: StackArtifact, fail: Failure | None = None) -> DeployedStack:
        """What ``cdk deploy`` does: create the stack, or update it; a stack left in
        ROLLBACK_COMPLETE (a failed first create) cannot be updated, so it is deleted first."""
        self.publish_assets(artifact)
        existing = self.cloud.stacks.get(artifact.stack_name)
        if existing is not None and existing.status == "ROLLBACK_COMPLETE":
            self.delete_stack(artifact.stack_name)
            existing = None
        if existing is None or existing.status == "DELETE_COMPLETE":
            return self.create_stack(artifact, fail)
        return self.update_stack(artifact, fail)

    # -- create
    def create_stack(self, artifact: StackArtifact, fail: Failure | None = None) -> DeployedStack:
        existing = self.cloud.stacks.get(artifact.stack_name)
        if existing is not None and existing.status != "DELETE_COMPLETE":
            raise ServiceError(
                "CreateStack",
                "AlreadyExistsException",
                f"Stack [{artifact.stack_name}] already exists",
            )
        stack_id = self._stack_id(artifact.stack_name)
        stack = DeployedStack(
            artifact.stack_name,
            artifact.display_name,
            {},
            {},
            "CREATE_IN_PROGRESS",
            stack_id,
            artifact,
        )
        self.cloud.stacks[artifact.stack_name] = stack
        op = _Operation(stack, self._context(artifact, stack_id), fail)
        resolver = self._resolver(artifact, stack.resources, stack_id)
        try:
            for logical, spec in self._specs(artifact, resolver):
                self._create(op, resolver, logical, spec)
            stack.outputs = self._outputs(artifact, resolver)
        except (ResourceFailed, ServiceError) as error:
            stack.status = "ROLLBACK_IN_PROGRESS"
            self._event(stack, artifact.stack_name, "ROLLBACK_IN_PROGRESS", str(error))
            ok = self._delete_created(
                op, [t for t in op.touched if t.kind == "created"], rollback=True
            )
            stack.status = "ROLLBACK_COMPLETE" if ok else "ROLLBACK_FAILED"
            return stack
        stack.status = "CREATE_COMPLETE"
        return stack

    def _specs(
        self, artifact: StackArtifact, resolver: Resolver
    ) -> list[tuple[str, dict[str, Any]]]:
        resources = artifact.template.get("Resources", {})
        out = []
        for logical in resource_order(resources):
            spec = resources[logical]
            if "Condition" in spec and not resolver.condition(spec["Condition"]):
                continue
            out.append((logical, spec))
        return out

    def _create(
        self, op: _Operation, resolver: Resolver, logical: str, spec: dict[str, Any]
    ) -> DeployedResource:
        props = resolver.resolve(spec.get("Properties", {}))
        self._event(op.stack, logical, "CREATE_IN_PROGRESS")
        try:
            self._check(op, logical, "create")
            physical, attrs = provider(spec["Type"]).create(op.ctx, logical, props)
        except (ResourceFailed, ServiceError) as error:
            self._event(op.stack, logical, "CREATE_FAILED", str(error))
            raise
        resource = DeployedResource(
            logical,
            spec["Type"],
            props,
            physical,
            attrs,
            spec.get("DeletionPolicy", "Delete"),
            spec.get("UpdateReplacePolicy", "Delete"),
            op.ctx.operation,
        )
        op.stack.resources[logical] = resource
        op.touched.append(_Touched("created", logical, None, resource))
        self._stabilize(op, logical, "CREATE_FAILED")
        self._event(op.stack, logical, "CREATE_COMPLETE")
        return resource

    def _stabilize(self, op: _Operation, logical: str, failed_status: str) -> None:
        """A ``stabilize`` failure: the resource's effect stands, and the rollback undoes it."""
        try:
            self._check(op, logical, "stabilize")
        except ResourceFailed as error:
            self._event(op.stack, logical, failed_status, str(error))
            raise

    def _outputs(self, artifact: StackArtifact, resolver: Resolver) -> dict[str, Any]:
        outputs: dict[str, Any] = {}
        exports: dict[str, Any] = {}
        for name, out in artifact.template.get("Outputs", {}).items():
            if "Condition" in out and not resolver.condition(out["Condition"]):
                continue
            outputs[name] = resolver.resolve(out["Value"])
            if "Export" in out:
                exports[str(resolver.resolve(out["Export"]["Name"]))] = outputs[name]
        outputs["__exports__"] = exports
        return outputs

    def _delete_one(self, op: _Operation, resource: DeployedResource, policy: str) -> bool:
        """Delete ``resource`` unless ``policy`` keeps it; False when the delete failed."""
        stack = op.stack
        if policy in RETAINING:
            stack.retained.append(resource)
            self._event(
                stack,
                resource.logical_id,
                "DELETE_SKIPPED",
                f"{policy}: kept {resource.physical_id}",
            )
            return True
        self._event(stack, resource.logical_id, "DELETE_IN_PROGRESS")
        try:
            self._check(op, resource.logical_id, "delete")
            provider(resource.type).delete(op.ctx, resource)
        except (ResourceFailed, ServiceError) as error:
            self._event(stack, resource.logical_id, "DELETE_FAILED", str(error))
            return False
        self._event(stack, resource.logical_id, "DELETE_COMPLETE")
        return True

    def _delete_created(self, op: _Operation, created: list[_Touched], *, rollback: bool) -> bool:
        ok = True
        for t in reversed(created):
            assert t.new is not None
            policy = t.new.deletion_policy
            if rollback and policy == "RetainExceptOnCreate":
                policy = "Delete"  # deleted when the operation that created it rolls back
            if self._delete_one(op, t.new, policy):
                op.stack.resources.pop(t.logical, None)
            else:
                ok = False
        return ok

    # -- update
    def update_stack(self, artifact: StackArtifact, fail: Failure | None = None) -> DeployedStack:
        stack = self.cloud.stacks.get(artifact.stack_name)
        if stack is None or stack.status == "DELETE_COMPLETE":
            raise ServiceError(
                "UpdateStack", "ValidationError", f"Stack [{artifact.stack_name}] does not exist"
            )
        if stack.status.endswith("_IN_PROGRESS") or stack.status in (
            "ROLLBACK_COMPLETE",
            "UPDATE_ROLLBACK_FAILED",
            "DELETE_FAILED",
            "ROLLBACK_FAILED",
        ):
            raise ServiceError(
                "UpdateStack",
                "ValidationError",
                f"Stack:{stack.stack_id} is in {stack.status} state and can not be updated.",
            )
        old_resources = dict(stack.resources)
        old_outputs = stack.outputs
        old_artifact = stack.artifact
        stack.status = "UPDATE_IN_PROGRESS"
        stack.artifact = artifact
        op = _Operation(stack, self._context(artifact, stack.stack_id), fail)
        resolver = self._resolver(artifact, stack.resources, stack.stack_id)
        try:
            specs = self._specs(artifact, resolver)
            for logical, spec in specs:
                if logical not in old_resources:
                    self._create(op, resolver, logical, spec)
                else:
                    self._update(op, resolver, logical, spec, old_resources[logical])
            stack.outputs = self._outputs(artifact, resolver)
        except (ResourceFailed, ServiceError) as error:
            self._event(stack, artifact.stack_name, "UPDATE_ROLLBACK_IN_PROGRESS", str(error))
            stack.status = "UPDATE_ROLLBACK_IN_PROGRESS"
            stack.artifact = old_artifact
            if not self._roll_back_updates(op):
                stack.status = "UPDATE_ROLLBACK_FAILED"
                return stack
            stack.outputs = old_outputs
            stack.status = "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"
            self._delete_created(op, [t for t in op.touched if t.kind == "created"], rollback=True)
            for t in reversed(op.touched):
                if t.kind == "replaced" and t.new is not None:
                    self._delete_one(op, t.new, _replace_policy(t.new))
            stack.status = "UPDATE_ROLLBACK_COMPLETE"
            return stack
        stack.status = "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"
        kept = {logical for logical, _ in specs}
        for t in reversed(op.touched):
            if t.kind == "replaced" and t.old is not None:
                self._delete_one(op, t.old, _replace_policy(t.old))
        for logical in reversed(list(old_resources)):
            if logical not in kept:
                resource = old_resources[logical]
                if self._delete_one(op, resource, resource.deletion_policy):
                    stack.resources.pop(logical, None)
        stack.status = "UPDATE_COMPLETE"
        return stack

    def _update(
        self,
        op: _Operation,
        resolver: Resolver,
        logical: str,
        spec: dict[str, Any],
        old: DeployedResource,
    ) -> None:
        rtype = spec["Type"]
        props = resolver.resolve(spec.get("Properties", {}))
        policies = (spec.get("DeletionPolicy", "Delete"), spec.get("UpdateReplacePolicy", "Delete"))
        if rtype == old.type and props == old.properties:
            old.deletion_policy, old.update_replace_policy = policies
            return
        if rtype.startswith("Custom::") and props.get("ServiceToken") != old.properties.get(
            "ServiceToken"
        ):
            raise ResourceFailed(f"{logical}: Modifying service token is not allowed.")
        if rtype != old.type:
            # CloudFormation refuses to change a resource's type under one logical ID ("Update
            # of resource type is not permitted", as reported in aws/aws-sam-cli#6786): a
            # resource that changes type needs a new logical ID (as Custom::GreengrassDeployment
            # and Custom::GreengrassComponentVersion took).
            error = (
                "Update of resource type is not permitted. The new template modifies resource "
                f"type of the following resources: [{logical}]"
            )
            self._event(op.stack, logical, "UPDATE_FAILED", error)
            raise ResourceFailed(f"{logical}: {error}")
        changed = {
            k for k in set(props) | set(old.properties) if props.get(k) != old.properties.get(k)
        }
        replace = bool(changed & create_only(rtype))
        name_key = CUSTOM_NAME_PROPERTIES.get(rtype)
        if (
            replace
            and rtype == old.type
            and name_key
            and props.get(name_key)
            and props.get(name_key) == old.properties.get(name_key)
        ):
            # "Name type" (CloudFormation User Guide): "If you specify a name, you can't
            # perform updates that require replacement of this resource ... If you must
            # replace the resource, specify a new name." CloudFormation refuses before it
            # creates anything, with this message.
            error = (
                "CloudFormation cannot update a stack when a custom-named resource requires "
                f"replacing. Rename {props[name_key]} and update the stack again."
            )
            self._event(op.stack, logical, "UPDATE_FAILED", error)
            raise ResourceFailed(f"{logical}: {error}")
        self._event(
            op.stack,
            logical,
            "UPDATE_IN_PROGRESS",
            "Requested update requires the creation of a new physical resource; hence creating one."
            if replace
            else "",
        )
        handler = provider(rtype)
        try:
            self._check(op, logical, "update")
            if replace:
                physical, attrs = handler.create(op.ctx, logical, props)
            elif hasattr(handler, "update_request"):
                physical, attrs = handler.update_request(op.ctx, old, props)
                replace = physical != old.physical_id
            else:
                physical, attrs = old.physical_id, handler.update(op.ctx, old, props)
        except (ResourceFailed, ServiceError) as error:
            self._event(op.stack, logical, "UPDATE_FAILED", str(error))
            if not replace and rtype.startswith("Custom::"):
                # The failed resource is rolled back too: an Update back to the old properties.
                failed = copy.copy(old)
                failed.properties = props
                op.touched.append(_Touched("updated", logical, old, failed))
            raise
        new = DeployedResource(
            logical,
            rtype,
            props,
            physical,
            attrs,
            *policies,
            op.ctx.operation if replace else old.created_by,
        )
        op.stack.resources[logical] = new
        op.touched.append(_Touched("replaced" if replace else "updated", logical, old, new))
        self._stabilize(op, logical, "UPDATE_FAILED")
        self._event(op.stack, logical, "UPDATE_COMPLETE")

    def _roll_back_updates(self, op: _Operation) -> bool:
        stack = op.stack
        for t in reversed(op.touched):
            if t.kind == "created":
                continue
            assert t.old is not None and t.new is not None
            if t.kind == "replaced" and not t.old.type.startswith("Custom::"):
                stack.resources[t.logical] = t.old
                continue
            # Updated in place, or a custom resource whose Update answered a new physical ID:
            # either way CloudFormation sends an Update back to the old properties.
            self._event(stack, t.logical, "UPDATE_IN_PROGRESS", "rollback")
            handler = provider(t.old.type)
            try:
                self._check(op, t.logical, "rollback")
                if hasattr(handler, "update_request"):
                    handler.update_request(op.ctx, t.new, t.old.properties)
                else:
                    handler.update(op.ctx, t.new, t.old.properties)
            except (ResourceFailed, ServiceError) as error:
                self._event(stack, t.logical, "UPDATE_FAILED", str(error))
                return False
            stack.resources[t.logical] = t.old
            self._event(stack, t.logical, "UPDATE_COMPLETE", "rollback")
        return True

    # -- delete
    def delete_stack(self, name: str, fail: Failure | None = None) -> DeployedStack:
        stack = self.cloud.stacks.get(name)
        if stack is None or stack.status == "DELETE_COMPLETE":
            raise ServiceError("DeleteStack", "ValidationError", f"Stack [{name}] does not exist")
        assert stack.artifact is not None
        stack.status = "DELETE_IN_PROGRESS"
        op = _Operation(stack, self._context(stack.artifact, stack.stack_id), fail)
        ok = True
        for logical in reversed(list(stack.resources)):
            resource = stack.resources[logical]
            if self._delete_one(op, resource, resource.deletion_policy):
                del stack.resources[logical]
            else:
                ok = False
        stack.status = "DELETE_COMPLETE" if ok else "DELETE_FAILED"
        return stack


def _replace_policy(resource: DeployedResource) -> str:
    return "Retain" if resource.update_replace_policy in RETAINING else "Delete"


__all__ = ["AssemblyError", "CloudFormation", "Failure"]
