"""IPC authorization as the Greengrass nucleus does it, for one component's ``accessControl``.

Sources (aws-greengrass-nucleus, ``src/main/java/com/aws/greengrass/authorization/``):

- ``AuthorizationPolicyParser.parseAllPoliciesForComponent``: ``accessControl`` is
  ``{destination: {policyId: {policyDescription, operations: [..], resources: [..]}}}``, as a map
  or as a JSON string (a leaf topic is parsed too). A policy without operations is skipped.
  The principal of every policy is the component whose configuration holds it, so a component's
  requests are decided by its own ``accessControl`` only.
- ``AuthorizationHandler``: the operations each IPC service registers (for
  ``aws.greengrass.ipc.mqttproxy``: ``aws.greengrass#PublishToIoTCore``,
  ``aws.greengrass#SubscribeToIoTCore`` and ``*``); ``isAuthorized`` tries (principal,
  operation), (principal, ``*``) and the same with principal ``*``; a request for an operation the
  destination does not register is denied. A policy operation that is not registered is only
  logged (``validateOperations``): its permission is still added, it just never matches.
- ``AuthorizationModule.validateResource``: a resource must not be empty; ``?`` must be written
  ``${?}``; ``${c}`` is valid only for ``c`` in ``*``, ``$``, ``?``. An invalid resource is
  dropped from the policy (logged), the rest of the policy stays. A policy without resources
  allows no resource. An empty requested resource is denied.
- ``WildcardTrie`` (nucleus >= 2.8.0: MQTT wildcards in ``b00dd0d55`` "wildcard support for
  AuthZ", ``${c}`` escapes in ``b67b93ec9``; both first tagged v2.8.0): ``*`` matches any
  characters, ``/`` included, in both lookup styles. With the MQTT style (PublishToIoTCore and
  SubscribeToIoTCore, ``MqttProxyIPCAgent.doAuthorization``), ``+`` is a wildcard only as a whole
  level (``a/+/b``, ``+/b``, ``a/+``, ``+``) and matches one level without ``/`` (possibly
  empty); ``#`` only as the last level (``a/#`` or ``#``) and matches the parent level itself
  and everything below it (``a/#`` matches ``a``, ``a/`` and ``a/b/c``). Anywhere else they
  are plain characters. ``${c}`` stands for the character ``c``.

Recipe variables such as ``{iot:thingName}`` are not special here: the nucleus matches the
strings of the configuration, which hold the variable literally unless the deployment was
interpolated (``interpolateComponentConfiguration``). That interpolation is the caller's job.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from typing import Any, Mapping, Optional

LOG = logging.getLogger(__name__)

ANY = "*"
MQTT_PROXY_SERVICE = "aws.greengrass.ipc.mqttproxy"
PUBLISH_TO_IOT_CORE = "aws.greengrass#PublishToIoTCore"
SUBSCRIBE_TO_IOT_CORE = "aws.greengrass#SubscribeToIoTCore"

# AuthorizationHandler's constructor: what each destination registers (subset we serve).
REGISTERED_OPERATIONS: Mapping[str, frozenset[str]] = {
    MQTT_PROXY_SERVICE: frozenset({PUBLISH_TO_IOT_CORE, SUBSCRIBE_TO_IOT_CORE, ANY}),
}

_SPECIAL = frozenset("*$?")


class PolicyError(ValueError):
    """An ``accessControl`` value the nucleus would not parse."""


def _escaped_char(resource: str, i: int) -> Optional[str]:
    """``c`` if ``resource[i:]`` starts with ``${c}`` (WildcardTrie.getActualChar), else None."""
    if len(resource) - i >= 4 and resource[i : i + 2] == "${" and resource[i + 3] == "}":
        return resource[i + 2]
    return None


def resource_problem(resource: str) -> Optional[str]:
    """Why the nucleus would drop this policy resource, or None when it is valid."""
    if resource == "":
        return "Resource cannot be empty"
    i = 0
    while i < len(resource):
        char = resource[i]
        if char == "$" and i + 1 < len(resource) and resource[i + 1] == "{":
            escaped = _escaped_char(resource, i)
            if escaped is None:
                return (
                    "Resource contains an invalid escape sequence. You can use ${*}, ${$}, or ${?}"
                )
            if escaped not in _SPECIAL:
                return f"Resource contains an invalid escape sequence: ${{{escaped}}}"
            i += 4
            continue
        if char == "?":
            return "Resource contains invalid character: '?'. Use an escape sequence: ${?}"
        i += 1
    return None


def resource_regex(pattern: str, *, mqtt: bool) -> re.Pattern[str]:
    """A regular expression that matches what ``pattern`` allows (see the module docstring)."""
    parts: list[str] = []
    last = len(pattern) - 1
    i = 0
    while i <= last:
        char = pattern[i]
        escaped = _escaped_char(pattern, i)
        if escaped is not None:
            parts.append(re.escape(escaped))
            i += 4
            continue
        if char == "*":
            parts.append(".*")
        elif (
            mqtt
            and char == "+"
            and (i == 0 or pattern[i - 1] == "/")
            and (i == last or pattern[i + 1] == "/")
        ):
            parts.append("[^/]*")
        elif mqtt and char == "#" and i == last and (i == 0 or pattern[i - 1] == "/"):
            if i == 0:
                parts.append(".*")
            else:
                parts.pop()  # the "/" before "#": "a/#" also matches "a"
                parts.append("(?:/.*)?")
        else:
            parts.append(re.escape(char))
        i += 1
    return re.compile("".join(parts), re.DOTALL)


def resource_matches(pattern: str, resource: str, *, mqtt: bool) -> bool:
    return resource_regex(pattern, mqtt=mqtt).fullmatch(resource) is not None


@dataclasses.dataclass(frozen=True)
class Policy:
    destination: str
    policy_id: str
    operations: frozenset[str]
    resources: tuple[str, ...]  # valid resources only


def _as_strings(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{what} must be a list of strings, not {value!r}")
    return list(value)


def parse_access_control(access_control: Any) -> list[Policy]:
    """The policies of one component's ``accessControl`` (a map or a JSON string).

    Raises :class:`PolicyError` where the nucleus's parser fails; the nucleus then loads no
    policy of this component (``parseAllPoliciesForComponent`` returns an empty map).
    """
    if access_control is None:
        return []
    if isinstance(access_control, str):
        try:
            access_control = json.loads(access_control)
        except json.JSONDecodeError as err:
            raise PolicyError(f"accessControl is a string but not JSON: {err}") from None
    if not isinstance(access_control, dict):
        raise PolicyError(f"accessControl must be a map, not {type(access_control).__name__}")
    policies: list[Policy] = []
    for destination, by_id in access_control.items():
        if not isinstance(by_id, dict):
            raise PolicyError(f"accessControl.{destination} must be a map of policy IDs")
        for policy_id, body in by_id.items():
            if not isinstance(body, dict):
                raise PolicyError(f"accessControl.{destination}.{policy_id} must be a map")
            operations = _as_strings(body.get("operations"), f"{policy_id}.operations")
            if not operations:
                LOG.warning("policy %s of %s has no operations: skipped", policy_id, destination)
                continue
            resources = []
            for resource in _as_strings(body.get("resources"), f"{policy_id}.resources"):
                problem = resource_problem(resource)
                if problem:
                    LOG.warning("policy %s: resource %r dropped: %s", policy_id, resource, problem)
                else:
                    resources.append(resource)
            policies.append(
                Policy(str(destination), str(policy_id), frozenset(operations), tuple(resources))
            )
    return policies


@dataclasses.dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


def authorize(
    policies: list[Policy], *, destination: str, operation: str, resource: str, mqtt: bool
) -> Decision:
    """Whether ``policies`` (the requesting component's own) allow the request."""
    registered = REGISTERED_OPERATIONS.get(destination)
    if registered is None or operation not in registered:
        return Decision(False, f"Component {destination} not registered for operation {operation}")
    if resource == "":
        return Decision(False, "Resource cannot be empty")
    for policy in policies:
        if policy.destination != destination:
            continue
        if operation not in policy.operations and ANY not in policy.operations:
            continue
        for pattern in policy.resources:
            if resource_matches(pattern, resource, mqtt=mqtt):
                return Decision(True, f"policy {policy.policy_id} allows it with {pattern!r}")
    return Decision(
        False, f"not authorized to perform {destination}:{operation} on resource {resource}"
    )
