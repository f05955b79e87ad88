"""Amazon EventBridge in the simulated account: rules that route events to Lambda functions and
SQS queues.

Event patterns match as "Amazon EventBridge event patterns" describes (each field in the pattern
lists the values it accepts; nested objects match nested fields); an ``InputTransformer`` puts
``InputPathsMap`` values into ``InputTemplate`` ("Amazon EventBridge input transformation";
``<detail>`` is the JSON of ``$.detail``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from device_sim.cloud.env import Env


@dataclass
class Rule:
    name: str
    pattern: dict[str, Any]
    targets: list[dict[str, Any]] = field(default_factory=list)
    enabled: bool = True


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    for key, allowed in pattern.items():
        value = event.get(key)
        if isinstance(allowed, Mapping):
            if not isinstance(value, Mapping) or not matches(allowed, value):
                return False
        elif value not in allowed:
            return False
    return True


class EventsBackend:
    def __init__(
        self,
        env: Env,
        invoke: Callable[[str, dict[str, Any]], Any],
        send: Callable[[str, str], Any] | None = None,
    ) -> None:
        self.env = env
        self.rules: dict[str, Rule] = {}
        self._invoke = invoke
        self._send = send
        self.failed_invocations: list[str] = []

    def put_rule(self, rule: Rule) -> str:
        self.rules[rule.name] = rule
        return self.env.arn("events", f"rule/{rule.name}")

    def delete_rule(self, name: str) -> None:
        self.rules.pop(name, None)

    def put_event(self, source: str, detail_type: str, detail: dict[str, Any]) -> None:
        event = {"source": source, "detail-type": detail_type, "detail": detail}
        for rule in list(self.rules.values()):
            if not rule.enabled or not matches(rule.pattern, event):
                continue
            for target in rule.targets:
                payload: Any = event
                transformer = target.get("InputTransformer")
                if transformer:
                    text = str(transformer["InputTemplate"])
                    for name, path in transformer.get("InputPathsMap", {}).items():
                        value: Any = event
                        for part in str(path).removeprefix("$.").split("."):
                            value = value.get(part) if isinstance(value, Mapping) else None
                        text = text.replace(f"<{name}>", json.dumps(value))
                    payload = json.loads(text)
                self._deliver(str(target["Arn"]), payload)

    def _deliver(self, arn: str, payload: Any) -> None:
        """An SQS target receives the (transformed) event as the message body ("Amazon SQS
        queues as targets" in the EventBridge User Guide); a Lambda target is invoked."""
        if ":sqs:" in arn and self._send is not None:
            self._send(arn, json.dumps(payload))
            return
        self._invoke_async(arn, payload)

    def _invoke_async(self, arn: str, payload: Any) -> None:
        """EventBridge invokes Lambda asynchronously; on a function error Lambda "retries the
        function two more times" and then discards the event (Lambda developer guide,
        "Asynchronous invocation"): three attempts, then the event is lost."""
        for attempt in range(1, 4):
            try:
                self._invoke(arn, payload)
                return
            except Exception as error:
                if attempt == 3:
                    self.failed_invocations.append(f"{arn}: {error} (3 attempts, event dropped)")
