"""Amazon SQS in the simulated account: queues, their dead-letter queues, and the Lambda event
source mappings that consume them.

What it follows:

* A queue's ``RedrivePolicy`` (``deadLetterTargetArn``, ``maxReceiveCount``): "If the
  ReceiveCount for a message exceeds the maxReceiveCount for a queue, Amazon SQS moves the
  message to a dead-letter queue" (botocore sqs ``SetQueueAttributes``/``QueueAttributeName``
  documentation; SQS Developer Guide, "Using dead-letter queues").
* A Lambda event source mapping polls the queue and invokes the function with
  ``{"Records": [{"messageId", "receiptHandle", "body", "attributes", "eventSource":
  "aws:sqs", "eventSourceARN", ...}]}``. With ``FunctionResponseTypes:
  [ReportBatchItemFailures]`` the function answers ``{"batchItemFailures": [{"itemIdentifier":
  <messageId>}]}`` and only those messages stay on the queue; a function error returns the whole
  batch (Lambda Developer Guide, "Using Lambda with Amazon SQS" and "Handling errors for an SQS
  event source in Lambda"). A message that stays is received again after the visibility timeout.

Simulated time does not move between receives: the visibility timeouts are not waited for, so
a retry sees the same clock (a presigned handle does not expire between two attempts).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from device_sim.cloud.env import Env
from device_sim.cloud.errors import ServiceError


@dataclass
class Message:
    message_id: str
    body: str
    receive_count: int = 0


@dataclass
class Queue:
    name: str
    arn: str
    dead_letter_arn: str | None = None
    max_receive_count: int = 0
    messages: list[Message] = field(default_factory=list)


@dataclass(frozen=True)
class EventSourceMapping:
    queue_arn: str
    function_arn: str
    report_batch_item_failures: bool
    batch_size: int = 10


class SqsBackend:
    def __init__(self, env: Env, invoke: Callable[[str, dict[str, Any]], Any]) -> None:
        self.env = env
        self.queues: dict[str, Queue] = {}  # by ARN
        self.mappings: list[EventSourceMapping] = []
        self._invoke = invoke
        self._ids = itertools.count(1)

    def arn(self, name: str) -> str:
        return self.env.arn("sqs", name)

    def create_queue(self, queue: Queue) -> None:
        """botocore sqs ``CreateQueue``: a name that exists with other attributes is
        ``QueueNameExists`` ("A queue with this name already exists")."""
        if queue.arn in self.queues:
            raise ServiceError(
                "CreateQueue", "QueueNameExists", f"Queue {queue.name} already exists", 400
            )
        self.queues[queue.arn] = queue

    def delete_queue(self, arn: str) -> None:
        self.queues.pop(arn, None)
        self.mappings = [m for m in self.mappings if m.queue_arn != arn]

    def add_mapping(self, mapping: EventSourceMapping) -> None:
        if mapping.queue_arn not in self.queues:
            raise ServiceError(
                "CreateEventSourceMapping",
                "InvalidParameterValueException",
                f"queue {mapping.queue_arn} does not exist",
                400,
            )
        self.mappings.append(mapping)
        self._drain(mapping.queue_arn)

    def remove_mapping(self, queue_arn: str, function_arn: str) -> None:
        self.mappings = [
            m for m in self.mappings if (m.queue_arn, m.function_arn) != (queue_arn, function_arn)
        ]

    def send_message(self, arn: str, body: str) -> str:
        queue = self.queues.get(arn)
        if queue is None:
            raise ServiceError(
                "SendMessage",
                "AWS.SimpleQueueService.NonExistentQueue",
                f"The specified queue does not exist: {arn}",
                400,
            )
        message_id = f"sim-msg-{next(self._ids):06d}"
        queue.messages.append(Message(message_id, body))
        self._drain(arn)
        return message_id

    def _drain(self, arn: str) -> None:
        """Every mapping on the queue receives until the queue is empty: each failed message is
        received again, and moves to the dead-letter queue once its receive count reaches
        ``maxReceiveCount``."""
        queue = self.queues[arn]
        mappings = [m for m in self.mappings if m.queue_arn == arn]
        if not mappings:
            return
        mapping = mappings[0]
        while queue.messages:
            batch = queue.messages[: mapping.batch_size]
            for message in batch:
                message.receive_count += 1
            failed = self._deliver(mapping, arn, batch)
            queue.messages = [m for m in queue.messages if m not in batch or m.message_id in failed]
            for message in list(queue.messages):
                if queue.max_receive_count and message.receive_count >= queue.max_receive_count:
                    queue.messages.remove(message)
                    dead = self.queues.get(queue.dead_letter_arn or "")
                    if dead is not None:
                        dead.messages.append(message)

    def _deliver(self, mapping: EventSourceMapping, arn: str, batch: list[Message]) -> set[str]:
        event = {
            "Records": [
                {
                    "messageId": m.message_id,
                    "receiptHandle": f"{m.message_id}-{m.receive_count}",
                    "body": m.body,
                    "attributes": {"ApproximateReceiveCount": str(m.receive_count)},
                    "eventSource": "aws:sqs",
                    "eventSourceARN": arn,
                    "awsRegion": self.env.region,
                }
                for m in batch
            ]
        }
        try:
            answer = self._invoke(mapping.function_arn, event)
        except Exception:
            return {m.message_id for m in batch}  # a function error returns the whole batch
        if not mapping.report_batch_item_failures or not isinstance(answer, dict):
            return set()
        return {
            str(item.get("itemIdentifier"))
            for item in answer.get("batchItemFailures") or []
            if isinstance(item, dict)
        }


def redrive(props: dict[str, Any]) -> tuple[str | None, int]:
    """``AWS::SQS::Queue`` ``RedrivePolicy`` (a JSON object, or its text)."""
    policy = props.get("RedrivePolicy")
    if isinstance(policy, str):
        policy = json.loads(policy)
    if not isinstance(policy, dict):
        return None, 0
    return policy.get("deadLetterTargetArn"), int(policy.get("maxReceiveCount", 0))
