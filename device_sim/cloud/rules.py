"""The AWS IoT rules engine in the simulated account: what a device publishes reaches the rules
the stacks deployed (the fleet stack's metrics rule), and their Lambda actions run.

* **SQL.** The simulator runs the one form the project's rules use, ``SELECT *`` plus named
  ``topic(n)`` values, ``FROM '<topic filter>'`` (AWS IoT developer guide, "AWS IoT SQL
  reference": the SELECT clause, the FROM clause's topic filter with ``+`` and ``#``, and the
  ``topic(Decimal)`` function, which "returns the topic to which the message was sent" or the
  1-based level ``n`` of it). Any other statement fails the deploy, naming the rule: a rule the
  simulator cannot run is not silently skipped.
* **Invoking the Lambda action.** AWS IoT invokes the function asynchronously, as
  ``iot.amazonaws.com``; the function's resource policy must allow it, with the rule's ARN as
  the source (Lambda developer guide, "Using AWS Lambda with AWS IoT"; AWS IoT developer guide,
  "Lambda" rule action: "AWS IoT needs permission to invoke the Lambda function"). Without that
  permission, or when the function fails, the rule's error action receives the failure
  ("Error handling (error action)"); here: :attr:`RulesEngine.errors`, and ``errors.jsonl``.
* **What runs.** The action's function is the stack's Lambda, its code the synthesized asset
  (``device_sim/cloud/lambda_.py``); its AWS clients are the simulated account's (CloudWatch,
  IoT, S3), as for the custom resources (``cloudformation/custom.py``). The simulator knows how
  to call the functions listed in :data:`ENTRY`; another handler fails the deploy.
"""

from __future__ import annotations

import datetime
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from device_sim.cloud.errors import AssemblyError, ServiceError

IOT_PRINCIPAL = "iot.amazonaws.com"
_SQL_RE = re.compile(
    r"^\s*SELECT\s+\*(?P<extra>(?:\s*,\s*topic\(\d+\)\s+AS\s+\w+)*)\s+FROM\s+'(?P<filter>[^']+)'\s*$",
    re.IGNORECASE,
)
_TOPIC_AS_RE = re.compile(r"topic\((\d+)\)\s+AS\s+(\w+)", re.IGNORECASE)


@dataclass(frozen=True)
class Statement:
    topic_filter: str
    topic_values: tuple[tuple[int, str], ...]  # (level, name) of each ``topic(n) AS name``


def parse_sql(rule: str, sql: str) -> Statement:
    match = _SQL_RE.match(sql)
    if match is None:
        raise AssemblyError(  # an error message, not a query
            f"IoT rule {rule}: the simulator runs only SELECT * [, topic(n) AS name] FROM "  # noqa: S608
            f"'<filter>', not {sql!r}"
        )
    values = tuple((int(n), name) for n, name in _TOPIC_AS_RE.findall(match.group("extra")))
    return Statement(match.group("filter"), values)


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT topic filter matching: ``+`` one level, ``#`` the rest (AWS IoT developer guide,
    "Topics": topic filters)."""
    want, have = topic_filter.split("/"), topic.split("/")
    for index, level in enumerate(want):
        if level == "#":
            return True
        if index >= len(have) or (level != "+" and level != have[index]):
            return False
    return len(want) == len(have)


def topic_level(topic: str, level: int) -> str | None:
    parts = topic.split("/")
    return parts[level - 1] if 1 <= level <= len(parts) else None


@dataclass
class TopicRule:
    name: str
    arn: str
    statement: Statement
    function_arns: list[str]
    enabled: bool = True


@dataclass
class Permission:
    function_arn: str
    principal: str
    source_arn: str | None


@dataclass
class RuleRun:
    rule: str
    topic: str
    function: str
    result: Any = None
    error: str | None = None


# The handlers the simulator can call: handler -> (logic module, call). The call gets the
# loaded logic module, the event, the function's environment and the simulated clients.
Call = Callable[[Any, dict[str, Any], dict[str, str], "Clients"], Any]


@dataclass
class Clients:
    cloudwatch: Any
    iot: Any
    s3: Any
    now: Callable[[], datetime.datetime]


def _fleet_metrics(logic: Any, event: dict[str, Any], env: dict[str, str], c: Clients) -> Any:
    """``metrics_handler.on_message``, with the simulated clients (the handler's own wiring:
    namespace and groups from the environment, the placement and baseline caches)."""
    return logic.ingest(
        event,
        namespace=env["METRICS_NAMESPACE"],
        cloudwatch=c.cloudwatch,
        now=c.now(),
        placement=logic.Placements(c.iot, logic.parse_groups(env["THING_GROUPS"]), c.now),
        baseline=logic.Baselines(c.s3, env["BASELINES_BUCKET"], c.now),
    )


ENTRY: dict[str, tuple[str, Call]] = {
    "metrics_handler.on_message": ("metrics_logic", _fleet_metrics),
}


@dataclass
class RulesEngine:
    clients: Callable[[], Clients]
    function: Callable[[str], Any]  # ARN -> device_sim.cloud.lambda_.Function
    rules: dict[str, TopicRule] = field(default_factory=dict)
    permissions: dict[str, list[Permission]] = field(default_factory=dict)  # by statement id
    runs: list[RuleRun] = field(default_factory=list)
    errors: list[RuleRun] = field(default_factory=list)
    folder: Path | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def put_rule(self, rule: TopicRule) -> None:
        self.rules[rule.name] = rule

    def delete_rule(self, name: str) -> None:
        self.rules.pop(name, None)

    def add_permission(self, sid: str, permission: Permission) -> None:
        self.permissions.setdefault(sid, []).append(permission)

    def remove_permission(self, sid: str) -> None:
        self.permissions.pop(sid, None)

    def may_invoke(self, function_arn: str, rule_arn: str) -> bool:
        return any(
            p.function_arn == function_arn
            and p.principal == IOT_PRINCIPAL
            and p.source_arn in (None, rule_arn)
            for grants in self.permissions.values()
            for p in grants
        )

    def publish(self, topic: str, payload: Any) -> list[RuleRun]:
        """Run every enabled rule whose filter matches ``topic``; returns what each did."""
        from device_sim.cloud.lambda_ import code_module

        runs: list[RuleRun] = []
        with self._lock:
            for rule in list(self.rules.values()):
                if not rule.enabled or not topic_matches(rule.statement.topic_filter, topic):
                    continue
                if not isinstance(payload, dict):
                    continue  # SELECT * of a non-JSON payload: not what these rules take
                event = dict(payload)
                for level, name in rule.statement.topic_values:
                    event[name] = topic_level(topic, level)
                for arn in rule.function_arns:
                    run = RuleRun(rule.name, topic, arn)
                    try:
                        if not self.may_invoke(arn, rule.arn):
                            raise ServiceError(
                                "Invoke",
                                "AccessDeniedException",
                                f"{IOT_PRINCIPAL} is not authorized to invoke {arn} for rule "
                                f"{rule.arn}: the function's resource policy has no statement "
                                "for it",
                                403,
                            )
                        function = self.function(arn)
                        module, call = ENTRY[function.handler]
                        with code_module(function, module) as logic:
                            run.result = call(
                                logic, event, dict(function.environment), self.clients()
                            )
                    except Exception as error:  # the rule's error action gets every failure
                        run.error = f"{type(error).__name__}: {error}"
                        self.errors.append(run)
                    runs.append(run)
                    self.runs.append(run)
                    self._write(run)
        return runs

    def _write(self, run: RuleRun) -> None:
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        name = "errors.jsonl" if run.error else "runs.jsonl"
        line = {"rule": run.rule, "topic": run.topic, "function": run.function}
        line.update({"error": run.error} if run.error else {"result": run.result})
        with (self.folder / name).open("a", encoding="utf-8") as out:
            out.write(json.dumps(line, sort_keys=True, default=str) + "\n")

    def check_function(self, rule: str, arn: str) -> None:
        """At deploy: the action's function exists and its handler is one the simulator runs."""
        function = self.function(arn)
        if function.handler not in ENTRY:
            raise AssemblyError(
                f"IoT rule {rule}: its Lambda action's handler {function.handler!r} is not one "
                f"the simulator runs ({', '.join(ENTRY)})"
            )
