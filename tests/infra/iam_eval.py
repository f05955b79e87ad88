"""A small, strict IAM policy evaluator for synthesized templates.

It answers "would this identity policy allow ACTION on RESOURCE?" the way IAM documents it
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
an explicit Deny wins, otherwise at least one Allow must match, otherwise the request is
implicitly denied. Action names match case-insensitively with ``*`` and ``?`` wildcards
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html);
resource ARNs match case-sensitively, segment by segment for partition/service/region/account,
with ``*`` and ``?`` wildcards, the last segment (the resource) allowed to contain ``:`` and
``/`` (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html).
``NotAction`` and ``NotResource`` are honoured. A statement with a ``Condition`` is evaluated
only for the condition operators listed in ``_CONDITIONS`` against the request's context;
any other condition makes an Allow not match (and a Deny match): unknown means "no".

Template values are resolved to the strings a service would see with :class:`Resolver`:
pseudo parameters become fixed test values and ``Fn::GetAtt``/``Ref`` of the resources that
name themselves (roles, policies, role aliases, thing groups) become their ARNs.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PARTITION = "aws"
REGION = "eu-west-1"
ACCOUNT = "111122223333"
BUCKET = "artifact-bucket"


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _glob(pattern: str, value: str, *, case_sensitive: bool) -> bool:
    # fnmatch treats [...] as a character class; IAM does not. Escape it.
    escaped = pattern.replace("[", "[[]")
    if case_sensitive:
        return fnmatch.fnmatchcase(value, escaped)
    return fnmatch.fnmatchcase(value.lower(), escaped.lower())


def action_matches(pattern: str, action: str) -> bool:
    return _glob(pattern, action, case_sensitive=False)


def resource_matches(pattern: str, arn: str) -> bool:
    if pattern == "*":
        return True
    pattern_parts = pattern.split(":", 5)
    arn_parts = arn.split(":", 5)
    if len(pattern_parts) != 6 or len(arn_parts) != 6:
        return _glob(pattern, arn, case_sensitive=True)
    return all(
        _glob(p, a, case_sensitive=True) for p, a in zip(pattern_parts, arn_parts, strict=True)
    )


def _condition_holds(condition: Mapping[str, Any], context: Mapping[str, str]) -> bool | None:
    """True/False when every operator is understood, None when one is not."""
    for operator, tests in condition.items():
        check = _CONDITIONS.get(operator)
        if check is None:
            return None
        for key, expected in tests.items():
            if key not in context:
                return False
            if not any(check(str(e), context[key]) for e in _as_list(expected)):
                return False
    return True


_CONDITIONS = {
    "StringEquals": lambda expected, actual: expected == actual,
    "StringLike": lambda expected, actual: _glob(expected, actual, case_sensitive=True),
    "ArnEquals": lambda expected, actual: expected == actual,
    "ArnLike": lambda expected, actual: resource_matches(expected, actual),
    "Bool": lambda expected, actual: expected.lower() == actual.lower(),
}


def _statement_applies(
    statement: Mapping[str, Any], action: str, resource: str, context: Mapping[str, str]
) -> bool | None:
    if "Action" in statement:
        if not any(action_matches(a, action) for a in _as_list(statement["Action"])):
            return False
    elif any(action_matches(a, action) for a in _as_list(statement["NotAction"])):
        return False
    if "Resource" in statement:
        if not any(resource_matches(r, resource) for r in _as_list(statement["Resource"])):
            return False
    elif any(resource_matches(r, resource) for r in _as_list(statement["NotResource"])):
        return False
    if "Condition" in statement:
        return _condition_holds(statement["Condition"], context)
    return True


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


def evaluate(
    statements: Iterable[Mapping[str, Any]],
    action: str,
    resource: str,
    context: Mapping[str, str] | None = None,
) -> Decision:
    """Evaluate identity-policy statements (already resolved to plain strings)."""
    context = context or {}
    allow: Mapping[str, Any] | None = None
    for statement in statements:
        applies = _statement_applies(statement, action, resource, context)
        if statement["Effect"] == "Deny" and applies is not False:
            return Decision(False, f"explicit deny by {statement.get('Sid', statement)}")
        if statement["Effect"] == "Allow" and applies is True and allow is None:
            allow = statement
    if allow is None:
        return Decision(False, f"no statement allows {action} on {resource}")
    return Decision(True, f"allowed by {allow.get('Sid', allow)}")


@dataclass
class Resolver:
    """Turns a template's intrinsic functions into concrete strings (a fixed test account)."""

    template: Mapping[str, Any]
    partition: str = PARTITION
    region: str = REGION
    account: str = ACCOUNT

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Fn::Join":
                separator, parts = arg
                return separator.join(str(self.resolve(p)) for p in parts)
            if key == "Ref":
                return self._ref(arg)
            if key == "Fn::Split":
                return str(self.resolve(arg[1])).split(arg[0])
            if key == "Fn::Select":
                return self.resolve(arg[1])[int(arg[0])]
            if key == "Fn::GetAtt":
                return self._get_att(arg[0], arg[1])
            if key in ("Fn::ImportValue", "Fn::GetStackOutput"):
                # The artifact bucket comes from the artifact stack, as its name or its ARN.
                wanted = str(arg.get("OutputName", arg) if isinstance(arg, dict) else arg)
                if "Arn" in wanted:
                    return f"arn:{self.partition}:s3:::{BUCKET}"
                return BUCKET
            if key == "Fn::Sub":
                text = arg if isinstance(arg, str) else arg[0]
                return re.sub(r"\$\{([^}!]+)\}", lambda m: str(self._ref(m.group(1))), text)
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    def _pseudo(self, name: str) -> str | None:
        return {
            "AWS::Partition": self.partition,
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::URLSuffix": "amazonaws.com",
        }.get(name)

    def _resource(self, logical_id: str) -> Mapping[str, Any]:
        return self.template["Resources"][logical_id]  # type: ignore[no-any-return]

    def _ref(self, name: str) -> str:
        pseudo = self._pseudo(name)
        if pseudo is not None:
            return pseudo
        resource = self._resource(name)
        props = self.resolve(resource.get("Properties", {}))
        type_ = resource["Type"]
        if type_ == "AWS::IAM::ManagedPolicy":
            return f"arn:{self.partition}:iam::{self.account}:policy/{props['ManagedPolicyName']}"
        if type_ == "AWS::IAM::Role":
            return str(props.get("RoleName", name))  # CloudFormation names unnamed roles
        if type_ == "AWS::IoT::Policy":
            return str(props["PolicyName"])
        if type_ == "AWS::IoT::RoleAlias":
            return str(props["RoleAlias"])
        if type_ == "AWS::IoT::ThingGroup":
            return str(props["ThingGroupName"])
        if type_ == "AWS::S3::Bucket":
            return str(props.get("BucketName", BUCKET))
        return f"<{name}>"  # not an ARN any policy here is about

    def _get_att(self, name: str, attribute: str) -> str:
        resource = self._resource(name)
        props = self.resolve(resource.get("Properties", {}))
        type_ = resource["Type"]
        iot = f"arn:{self.partition}:iot:{self.region}:{self.account}"
        if type_ == "AWS::IAM::Role" and attribute == "Arn":
            return f"arn:{self.partition}:iam::{self.account}:role/{self._ref(name)}"
        if type_ == "AWS::IoT::Policy" and attribute == "Arn":
            return f"{iot}:policy/{props['PolicyName']}"
        if type_ == "AWS::IoT::RoleAlias" and attribute == "RoleAliasArn":
            return f"{iot}:rolealias/{props['RoleAlias']}"
        if type_ == "AWS::IoT::ThingGroup" and attribute == "Arn":
            return f"{iot}:thinggroup/{props['ThingGroupName']}"
        if type_ == "AWS::S3::Bucket" and attribute == "Arn":
            return f"arn:{self.partition}:s3:::{self._ref(name)}"
        return f"<{name}.{attribute}>"


def policies_of_role(template: Mapping[str, Any], role_logical_id: str) -> list[dict[str, Any]]:
    """Every statement that applies to the role: inline policies (AWS::IAM::Policy naming the
    role) and customer managed policies attached by CloudFormation (``Roles`` of a managed
    policy, or ``ManagedPolicyArns`` of the role)."""
    resolver = Resolver(template)
    role_name = resolver.resolve({"Ref": role_logical_id})
    statements: list[dict[str, Any]] = []
    role = template["Resources"][role_logical_id]
    for inline in role["Properties"].get("Policies", []):
        statements.extend(_as_list(resolver.resolve(inline["PolicyDocument"])["Statement"]))
    attached_arns = {resolver.resolve(a) for a in role["Properties"].get("ManagedPolicyArns", [])}
    for logical_id, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Policy":
            roles = [resolver.resolve(r) for r in props.get("Roles", [])]
        elif resource["Type"] == "AWS::IAM::ManagedPolicy":
            roles = [resolver.resolve(r) for r in props.get("Roles", [])]
            if resolver.resolve({"Ref": logical_id}) in attached_arns:
                roles.append(role_name)
        else:
            continue
        if role_name in roles:
            statements.extend(_as_list(resolver.resolve(props["PolicyDocument"])["Statement"]))
    return statements
