"""AWS IAM in the simulated account: roles, inline policies, customer managed policies.

Refusals follow botocore's IAM model (``botocore/data/iam/2010-05-08/service-2.json``):
``CreateRole``/``CreatePolicy`` -> ``EntityAlreadyExists`` ("The request was rejected because it
attempted to create a resource that already exists": role and policy names are unique per
account); ``DeleteRole`` -> ``DeleteConflict`` (its documentation: "you must delete the items
attached to the role manually, or the deletion fails"); ``DeletePolicy`` -> ``DeleteConflict``
("Before you can delete a managed policy, you must first detach the policy from all users,
groups, and roles that it is attached to"); a missing entity -> ``NoSuchEntity``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from device_sim.cloud.env import Env
from device_sim.cloud.errors import ServiceError
from device_sim.iam import Policy


@dataclass
class Role:
    name: str
    arn: str
    policies: list[Policy] = field(default_factory=list)
    managed_policy_arns: list[str] = field(default_factory=list)
    trust_policy: Any = None


class IamBackend:
    def __init__(self, env: Env) -> None:
        self.env = env
        self.roles: dict[str, Role] = {}  # by role name
        self.managed_policies: dict[str, Policy] = {}  # by ARN

    def role_arn(self, name: str, path: str = "/") -> str:
        return f"arn:{self.env.partition}:iam::{self.env.account}:role{path}{name}"

    def policy_arn(self, name: str, path: str = "/") -> str:
        return f"arn:{self.env.partition}:iam::{self.env.account}:policy{path}{name}"

    def _role(self, operation: str, name: str) -> Role:
        if name not in self.roles:
            raise ServiceError(
                operation, "NoSuchEntity", f"The role with name {name} cannot be found.", 404
            )
        return self.roles[name]

    def create_role(self, name: str, path: str = "/", trust_policy: Any = None) -> Role:
        if name in self.roles:
            raise ServiceError(
                "CreateRole", "EntityAlreadyExists", f"Role with name {name} already exists.", 409
            )
        role = Role(name, self.role_arn(name, path), trust_policy=trust_policy)
        self.roles[name] = role
        return role

    def delete_role(self, name: str) -> None:
        role = self._role("DeleteRole", name)
        if role.policies or role.managed_policy_arns:
            raise ServiceError(
                "DeleteRole",
                "DeleteConflict",
                f"Cannot delete entity, must remove policies first: role {name} has "
                f"{len(role.policies)} inline and {len(role.managed_policy_arns)} attached "
                "policies.",
                409,
            )
        del self.roles[name]

    def put_role_policy(self, role: str, policy_name: str, document: Any) -> None:
        r = self._role("PutRolePolicy", role)
        r.policies = [p for p in r.policies if p.name != f"{role}/{policy_name}"]
        r.policies.append(Policy(f"{role}/{policy_name}", document))

    def delete_role_policy(self, role: str, policy_name: str) -> None:
        r = self.roles.get(role)
        if r is None:
            return  # the role went first (CloudFormation deletes dependents first; tolerated)
        r.policies = [p for p in r.policies if p.name != f"{role}/{policy_name}"]

    def create_policy(self, name: str, document: Any, path: str = "/") -> str:
        arn = self.policy_arn(name, path)
        if arn in self.managed_policies:
            raise ServiceError(
                "CreatePolicy",
                "EntityAlreadyExists",
                f"A policy called {name} already exists. Duplicate names are not allowed.",
                409,
            )
        self.managed_policies[arn] = Policy(name, document)
        return arn

    def set_policy_document(self, arn: str, document: Any) -> None:
        """``CreatePolicyVersion`` with ``SetAsDefault``: the new default document."""
        old = self.managed_policies[arn]
        self.managed_policies[arn] = Policy(old.name, document)

    def attached_to(self, arn: str) -> list[str]:
        return sorted(r.name for r in self.roles.values() if arn in r.managed_policy_arns)

    def attach_role_policy(self, role: str, arn: str) -> None:
        if arn not in self.managed_policies:
            raise ServiceError(
                "AttachRolePolicy", "NoSuchEntity", f"Policy {arn} does not exist", 404
            )
        r = self._role("AttachRolePolicy", role)
        if arn not in r.managed_policy_arns:
            r.managed_policy_arns.append(arn)

    def detach_role_policy(self, role: str, arn: str) -> None:
        r = self.roles.get(role)
        if r is not None and arn in r.managed_policy_arns:
            r.managed_policy_arns.remove(arn)

    def delete_policy(self, arn: str) -> None:
        if arn not in self.managed_policies:
            raise ServiceError("DeletePolicy", "NoSuchEntity", f"Policy {arn} does not exist", 404)
        attached = self.attached_to(arn)
        if attached:
            raise ServiceError(
                "DeletePolicy",
                "DeleteConflict",
                f"Cannot delete a policy attached to entities: {arn} is attached to "
                f"{', '.join(attached)}",
                409,
            )
        del self.managed_policies[arn]
