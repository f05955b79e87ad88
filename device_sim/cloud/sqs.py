"""Amazon SQS in the simulated account, and Lambda's SQS event source mappings.

* A queue's ``RedrivePolicy`` (``deadLetterTargetArn``, ``maxReceiveCount``): a message received
  ``maxReceiveCount`` times without being deleted moves to the dead-letter queue (SQS Developer
  Guide, "Using dead-letter queues in Amazon SQS"; botocore ``sqs/2012-11-05/service-2.json``,
  ``QueueAttributeName`` ``RedrivePolicy``).
* An event source mapping polls the queue and invokes the function synchronously with a batch,
  ``{"Records": [{"messageId", "receiptHandle", "body", "attributes", "eventSource":
  "aws:sqs", "eventSourceARN", ...}]}``. A function error returns the whole batch to the queue;
  with ``FunctionResponseTypes: [ReportBatchItemFailures]`` only the records named in the
  response's ``batchItemFailures`` return (Lambda Developer Guide, "Using Lambda with Amazon
  SQS", "Handling errors for an SQS event source in Lambda"). A returned message is received
  again after the visibility timeout: here at once, since simulated time does not run on its
  own (``receive_count`` says how often it was received).
"""

from __future__ import annotations

import hashlib
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
    url: str
    dead_letter_arn: str | None = None
    max_receive_count: int | None = None
    messages: list[Message] = field(default_factory=list)


@dataclass(frozen=True)
class Mapping:
    uuid: str
    queue_arn: str
    function_arn: str
    batch_size: int
    report_batch_item_failures: bool


class SqsBackend:
    def __init__(self, env: Env, invoke: Callable[[str, dict[str, Any]], Any]) -> None:
        self.env = env
        self.queues: dict[str, Queue] = {}  # by ARN
        self.mappings: dict[str, Mapping] = {}  # by UUID
        self._invoke = invoke
        self._sent = 0

    def create_queue(
        self, name: str, dead_letter_arn: str | None = None, max_receive_count: int | None = None
    ) -> Queue:
        arn = self.env.arn("sqs", name)
        if arn in self.queues:
            # CreateQueue of an existing name with different attributes: QueueNameExists.
            raise ServiceError(
                "CreateQueue", "QueueNameExists", f"A queue named {name} already exists", 400
            )
        url = f"https://sqs.{self.env.region}.{self.env.url_suffix}/{self.env.account}/{name}"
        self.queues[arn] = Queue(name, arn, url, dead_letter_arn, max_receive_count)
        return self.queues[arn]

    def delete_queue(self, arn: str) -> None:
        self.queues.pop(arn, None)

    def create_event_source_mapping(
        self, queue_arn: str, function_arn: str, batch_size: int, report_failures: bool
    ) -> str:
        digest = hashlib.sha256(f"{queue_arn}/{function_arn}".encode()).hexdigest()
        uuid = f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
        self.mappings[uuid] = Mapping(uuid, queue_arn, function_arn, batch_size, report_failures)
        return uuid

    def delete_event_source_mapping(self, uuid: str) -> None:
        self.mappings.pop(uuid, None)

    def send_message(self, queue_arn: str, body: str) -> str:
        queue = self.queues.get(queue_arn)
        if queue is None:
            raise ServiceError(
                "SendMessage",
                "AWS.SimpleQueueService.NonExistentQueue",
                f"The specified queue does not exist: {queue_arn}",
                400,
            )
        self._sent += 1
        message_id = hashlib.sha256(f"{queue_arn}/{self._sent}".encode()).hexdigest()[:36]
        queue.messages.append(Message(message_id, body))
        self._poll(queue)
        return message_id

    def _poll(self, queue: Queue) -> None:
        """Deliver the queue's messages to its mapped function until each is consumed, moved
        to the dead-letter queue, or (no redrive policy) received once and left."""
        mappings = [m for m in self.mappings.values() if m.queue_arn == queue.arn]
        if not mappings:
            return
        mapping = mappings[0]
        while queue.messages:
            batch = queue.messages[: mapping.batch_size]
            for message in batch:
                message.receive_count += 1
            failed = self._deliver(queue, mapping, batch)
            for message in batch:
                if message.message_id not in failed:
                    queue.messages.remove(message)
                elif queue.max_receive_count is None:
                    return  # stays in the queue; received again only after simulated time
                elif message.receive_count >= queue.max_receive_count:
                    queue.messages.remove(message)
                    dead = self.queues.get(queue.dead_letter_arn or "")
                    if dead is not None:
                        dead.messages.append(message)

    def _deliver(self, queue: Queue, mapping: Mapping, batch: list[Message]) -> set[str]:
        """The IDs of the batch's records that return to the queue."""
        event = {
            "Records": [
                {
                    "messageId": m.message_id,
                    "receiptHandle": f"{m.message_id}/{m.receive_count}",
                    "body": m.body,
                    "attributes": {"ApproximateReceiveCount": str(m.receive_count)},
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                    "eventSourceARN": queue.arn,
                    "awsRegion": self.env.region,
                }
                for m in batch
            ]
        }
        everything = {m.message_id for m in batch}
        try:
            response = self._invoke(mapping.function_arn, event)
        except Exception:
            return everything  # a function error returns the whole batch
        if not mapping.report_batch_item_failures or not isinstance(response, dict):
            return set()
        items = response.get("batchItemFailures") or []
        return {str(item.get("itemIdentifier")) for item in items if isinstance(item, dict)}
