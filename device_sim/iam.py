"""An IAM / AWS IoT policy evaluator for the requests the simulated device and installer make.

It follows the IAM User Guide, "Policy evaluation logic" for a single account and identity-based
policies (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):

1. every request starts as an implicit deny;
2. an explicit ``Deny`` in any applicable policy wins;
3. otherwise an ``Allow`` in any applicable policy allows;
4. otherwise the implicit (default) deny stands.

AWS IoT Core policies use the same grammar and evaluation ("AWS IoT Core policies",
https://docs.aws.amazon.com/iot/latest/developerguide/iot-policies.html), with their own policy
variables ("Thing policy variables",
https://docs.aws.amazon.com/iot/latest/developerguide/thing-policy-variables.html).

Policy grammar ("IAM JSON policy grammar",
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html): a statement has
``Action`` or ``NotAction``, ``Resource`` or ``NotResource``, at most one of ``Principal`` and
``NotPrincipal``; a statement with both halves of a pair is invalid (:class:`PolicyError`).

Version ("IAM JSON policy elements: Version",
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_version.html):
policy variables exist only in ``"Version": "2012-10-17"``; under ``2008-10-17`` or with no
``Version`` a ``${aws:username}`` is "treated as a literal string in the policy". AWS IoT Core
policies take their variable rules from that IAM page ("AWS IoT Core policy variables",
https://docs.aws.amazon.com/iot/latest/developerguide/iot-policy-variables.html). Any other
``Version`` value is not a policy IAM or IoT accepts.

Condition keys ("IAM JSON policy elements: Condition",
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition.html):
context key names are not case-sensitive; whether values are depends on the operator.

Supported: ``Action``/``NotAction`` with ``*``/``?`` (case-insensitive),
``Resource``/``NotResource`` ARNs with ``*``/``?`` (per ARN segment, the last segment spanning
``/`` and ``:``), policy variables ``${key}`` with the special ``${*}``, ``${?}``, ``${$}`` and
``${key, 'default'}``, and the condition operators in :data:`OPERATORS` with ``...IfExists``.
An operator outside that set raises :class:`PolicyError` instead of being treated as true.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ContextValue = str | bool | Sequence[str]
VARIABLES_VERSION = "2012-10-17"  # the policy-language version that has policy variables
VERSIONS = (VARIABLES_VERSION, "2008-10-17")


class PolicyError(ValueError):
    """A policy this evaluator cannot evaluate faithfully (e.g. an unknown condition operator)."""


@dataclass(frozen=True)
class Policy:
    """A named policy document (IAM identity policy or IoT policy)."""

    name: str
    document: Mapping[str, Any]


@dataclass(frozen=True)
class Request:
    """One API call: the IAM action, the resource ARN it is authorized against, the context.

    ``context`` holds the request's condition keys and the values of policy variables
    (``aws:username``, ``iot:Connection.Thing.ThingName``, ...). A key absent from it is
    "not present in the request context".
    """

    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    statement: str | None = None  # "<policy>#<sid or index>" that decided, if any

    def __bool__(self) -> bool:
        return self.allowed


# ---------------------------------------------------------------- matching helpers
def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _glob(pattern: str, text: str, *, ignore_case: bool = False) -> bool:
    """``*`` any run of characters, ``?`` one character; everything else literal."""
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.fullmatch(regex, text, flags) is not None


def action_matches(pattern: str, action: str) -> bool:
    """Action names are case-insensitive (IAM "Action" element)."""
    return _glob(pattern, action, ignore_case=True)


def arn_matches(pattern: str, arn: str) -> bool:
    """IAM "Resource" element: ``*`` alone matches every resource; otherwise the ARN's first five
    colon-separated segments are matched one by one and the resource segment (which may itself
    contain ``:`` and ``/``) as a whole, so a wildcard cannot spill from one segment into the next.
    """
    if pattern == "*":
        return True
    p_parts = pattern.split(":", 5)
    a_parts = arn.split(":", 5)
    if len(a_parts) != 6:
        return _glob(pattern, arn)  # not an ARN (e.g. "*" for account-wide actions)
    if len(p_parts) != 6:
        return False  # a pattern with fewer segments never matches a full ARN
    return all(_glob(p, a) for p, a in zip(p_parts, a_parts, strict=True))


_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class _Unresolved(Exception):
    pass


def substitute(text: str, context: Mapping[str, ContextValue], *, pattern: bool) -> str:
    """Replace ``${key}`` policy variables from ``context`` (IAM "policy variables" page:
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html).

    ``${*}``, ``${?}``, ``${$}`` stand for the literal characters. ``${key, 'default'}`` uses the
    default when the key is absent. A key that is absent without a default makes the element
    unresolvable: the caller treats the statement element as not matching. A substituted value is
    taken literally (its own ``*`` does not act as a wildcard) when ``pattern`` is true.
    """

    def replace(match: re.Match[str]) -> str:
        body = match.group(1).strip()
        if body in ("*", "?", "$"):
            return body if not pattern else "\x00" + body  # literal marker, see _literal
        key, _, default = body.partition(",")
        key = key.strip()
        value = context.get(key)
        if value is None or isinstance(value, (list, tuple)):
            default = default.strip()
            if default.startswith("'") and default.endswith("'") and len(default) >= 2:
                value = default[1:-1]
            else:
                raise _Unresolved(key)
        text_value = str(value).lower() if isinstance(value, bool) else str(value)
        if pattern:
            return "".join("\x00" + ch if ch in "*?" else ch for ch in text_value)
        return text_value

    return _VARIABLE.sub(replace, text)


_Variables = Mapping[str, ContextValue] | None  # None: the policy has no variables (no Version)


def _resolve(text: str, variables: _Variables, *, pattern: bool) -> str:
    """``substitute`` when the policy has variables; otherwise ``${...}`` is literal text."""
    return text if variables is None else substitute(text, variables, pattern=pattern)


def _pattern_matches(
    pattern: str, value: str, variables: _Variables, matcher: Callable[..., bool]
) -> bool:
    """Match after substituting variables; escaped characters (``\\x00*``) match literally."""
    try:
        resolved = _resolve(pattern, variables, pattern=True)
    except _Unresolved:
        return False
    if "\x00" not in resolved:
        return bool(matcher(resolved, value))
    # Literal * or ? coming from a variable value or ${*}: build the regex by hand.
    regex, i = "", 0
    while i < len(resolved):
        ch = resolved[i]
        if ch == "\x00":
            regex += re.escape(resolved[i + 1])
            i += 2
            continue
        regex += ".*" if ch == "*" else "." if ch == "?" else re.escape(ch)
        i += 1
    return re.fullmatch(regex, value, re.DOTALL) is not None


# ---------------------------------------------------------------- conditions
def _string_values(value: ContextValue) -> list[str]:
    if isinstance(value, bool):
        return [str(value).lower()]
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def _cmp_string_equals(expected: str, actual: str, ctx: _Variables) -> bool:
    try:
        return _resolve(expected, ctx, pattern=False) == actual
    except _Unresolved:
        return False


def _cmp_string_equals_ic(expected: str, actual: str, ctx: _Variables) -> bool:
    try:
        return _resolve(expected, ctx, pattern=False).lower() == actual.lower()
    except _Unresolved:
        return False


def _cmp_string_like(expected: str, actual: str, ctx: _Variables) -> bool:
    return _pattern_matches(expected, actual, ctx, _glob)


def _cmp_arn_like(expected: str, actual: str, ctx: _Variables) -> bool:
    return _pattern_matches(expected, actual, ctx, arn_matches)


def _cmp_bool(expected: str, actual: str, ctx: _Variables) -> bool:
    return str(expected).lower() == actual.lower()


_Comparator = Callable[[str, str, _Variables], bool]
# operator -> (comparison, negated). Negated operators: "not present" counts as a match.
OPERATORS: dict[str, tuple[_Comparator, bool]] = {
    "StringEquals": (_cmp_string_equals, False),
    "StringNotEquals": (_cmp_string_equals, True),
    "StringEqualsIgnoreCase": (_cmp_string_equals_ic, False),
    "StringNotEqualsIgnoreCase": (_cmp_string_equals_ic, True),
    "StringLike": (_cmp_string_like, False),
    "StringNotLike": (_cmp_string_like, True),
    "ArnEquals": (_cmp_arn_like, False),
    "ArnLike": (_cmp_arn_like, False),
    "ArnNotEquals": (_cmp_arn_like, True),
    "ArnNotLike": (_cmp_arn_like, True),
    "Bool": (_cmp_bool, False),
}


def condition_matches(
    condition: Mapping[str, Any],
    context: Mapping[str, ContextValue],
    *,
    variables: bool = True,
) -> bool:
    """All operators and all keys must match (AND); any of a key's values may match (OR).

    IAM "Condition" element and "Condition operators" pages: a key not present in the request
    context does not match, except that negated operators then match, and ``...IfExists``
    operators match when the key is absent. ``Null`` tests presence. Key names are matched
    case-insensitively ("Context key names are not case-sensitive").
    """
    by_name = {key.lower(): value for key, value in context.items()}
    values_ctx = context if variables else None
    for raw_operator, block in condition.items():
        if not isinstance(block, Mapping):
            raise PolicyError(f"condition {raw_operator!r} must map keys to values")
        operator = raw_operator
        if_exists = operator.endswith("IfExists")
        if if_exists:
            operator = operator[: -len("IfExists")]
        if operator.startswith(("ForAnyValue:", "ForAllValues:")):
            raise PolicyError(f"condition set operator {raw_operator!r} is not supported")
        for key, expected_raw in block.items():
            expected = [
                str(v).lower() if isinstance(v, bool) else str(v) for v in _as_list(expected_raw)
            ]
            present = str(key).lower() in by_name
            if operator == "Null":
                want_absent = expected and expected[0].lower() == "true"
                if present == bool(want_absent):
                    return False
                continue
            if operator not in OPERATORS:
                raise PolicyError(
                    f"condition operator {raw_operator!r} is not modelled by device_sim.iam "
                    f"(known: {', '.join(sorted(OPERATORS))}, Null, ...IfExists)"
                )
            compare, negated = OPERATORS[operator]
            if not present:
                if if_exists or negated:
                    continue
                return False
            actual = _string_values(by_name[str(key).lower()])
            hit = any(compare(e, a, values_ctx) for e in expected for a in actual)
            if hit == negated:
                return False
    return True


# ---------------------------------------------------------------- statements and evaluation
_EXCLUSIVE = (("Action", "NotAction"), ("Resource", "NotResource"), ("Principal", "NotPrincipal"))


def has_variables(policy: Policy) -> bool:
    """Whether ``${...}`` in this policy are policy variables (``Version`` 2012-10-17)."""
    version = policy.document.get("Version")
    if version is not None and version not in VERSIONS:
        raise PolicyError(
            f"policy {policy.name}: Version {version!r} is not a policy language version "
            f"({' or '.join(VERSIONS)})"
        )
    return version == VARIABLES_VERSION


def _statements(policy: Policy) -> list[tuple[str, Mapping[str, Any]]]:
    raw = policy.document.get("Statement")
    if raw is None:
        raise PolicyError(f"policy {policy.name} has no Statement")
    out = []
    for index, statement in enumerate(_as_list(raw)):
        if not isinstance(statement, Mapping):
            raise PolicyError(f"policy {policy.name}: statement {index} is not an object")
        label = f"{policy.name}#{statement.get('Sid') or index}"
        for element, negated in _EXCLUSIVE:
            if element in statement and negated in statement:
                raise PolicyError(
                    f"{label}: a statement cannot have both {element} and {negated} "
                    "(IAM JSON policy grammar)"
                )
        out.append((label, statement))
    return out


def statement_applies(
    statement: Mapping[str, Any], request: Request, *, variables: bool = True
) -> bool:
    """Does this statement cover the request (action, resource, condition)?
    ``variables``: whether the policy's Version gives it policy variables."""
    if "Action" in statement:
        if not any(action_matches(p, request.action) for p in _as_list(statement["Action"])):
            return False
    elif "NotAction" in statement:
        if any(action_matches(p, request.action) for p in _as_list(statement["NotAction"])):
            return False
    else:
        raise PolicyError("statement has neither Action nor NotAction")
    ctx = request.context if variables else None
    if "Resource" in statement:
        if not any(
            _pattern_matches(p, request.resource, ctx, arn_matches)
            for p in _as_list(statement["Resource"])
        ):
            return False
    elif "NotResource" in statement:
        if any(
            _pattern_matches(p, request.resource, ctx, arn_matches)
            for p in _as_list(statement["NotResource"])
        ):
            return False
    else:
        raise PolicyError("statement has neither Resource nor NotResource")
    return condition_matches(statement.get("Condition") or {}, request.context, variables=variables)


def evaluate(policies: Iterable[Policy], request: Request) -> Decision:
    """Explicit deny wins, then any allow, else the default deny (IAM policy evaluation logic)."""
    allow: str | None = None
    for policy in policies:
        variables = has_variables(policy)
        for label, statement in _statements(policy):
            effect = statement.get("Effect")
            if effect not in ("Allow", "Deny"):
                raise PolicyError(f"{label}: Effect must be Allow or Deny, got {effect!r}")
            if not statement_applies(statement, request, variables=variables):
                continue
            if effect == "Deny":
                return Decision(False, f"explicitly denied by {label}", label)
            allow = allow or label
    if allow is not None:
        return Decision(True, f"allowed by {allow}", allow)
    return Decision(False, "no statement allows it (implicit deny)")
