"""The simulated SQS queue and Lambda event source mapping that carry the training-end signal
(EventBridge -> SQS -> Lambda): a failed message is received again until ``maxReceiveCount``,
then moves to the dead-letter queue (SQS Developer Guide, "Using dead-letter queues"); with
``ReportBatchItemFailures`` only the reported messages stay (Lambda Developer Guide, "Handling
errors for an SQS event source in Lambda"); a function error returns the whole batch."""

from __future__ import annotations

import json
from typing import Any

import pytest

from device_sim.cloud.env import Env
from device_sim.cloud.events import EventsBackend, Rule
from device_sim.cloud.sqs import EventSourceMapping, Queue, SqsBackend

FUNCTION = "arn:aws:lambda:us-east-1:111122223333:function:signaller"


class Function:
    """Fails its first ``failures`` invocations (raising, or reporting every record)."""

    def __init__(self, failures: int, report: bool = False) -> None:
        self.failures = failures
        self.report = report
        self.bodies: list[list[str]] = []

    def __call__(self, arn: str, event: dict[str, Any]) -> Any:
        assert arn == FUNCTION
        self.bodies.append([r["body"] for r in event["Records"]])
        if len(self.bodies) > self.failures:
            return {"batchItemFailures": []}
        if self.report:
            return {
                "batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]]
            }
        raise RuntimeError("handle refused")


def backend(function: Function, receives: int = 3, report: bool = True) -> SqsBackend:
    sqs = SqsBackend(Env(), function)
    dead = sqs.arn("dead")
    sqs.create_queue(Queue("dead", dead))
    sqs.create_queue(Queue("signals", sqs.arn("signals"), dead, receives))
    sqs.add_mapping(EventSourceMapping(sqs.arn("signals"), FUNCTION, report))
    return sqs


@pytest.mark.parametrize("report", [False, True])
def test_a_transient_failure_is_received_again_and_then_consumed(report: bool) -> None:
    function = Function(failures=2, report=report)
    sqs = backend(function)
    sqs.send_message(sqs.arn("signals"), "m1")
    assert function.bodies == [["m1"], ["m1"], ["m1"]]
    assert not sqs.queues[sqs.arn("signals")].messages
    assert not sqs.queues[sqs.arn("dead")].messages


def test_a_message_failing_max_receive_count_times_moves_to_the_dead_letter_queue() -> None:
    function = Function(failures=99)
    sqs = backend(function, receives=4)
    sqs.send_message(sqs.arn("signals"), "m1")
    assert len(function.bodies) == 4
    (dead,) = sqs.queues[sqs.arn("dead")].messages
    assert (dead.body, dead.receive_count) == ("m1", 4)


def test_only_reported_items_stay_on_the_queue() -> None:
    calls: list[list[str]] = []

    def function(arn: str, event: dict[str, Any]) -> Any:
        calls.append([r["body"] for r in event["Records"]])
        bad = [r["messageId"] for r in event["Records"] if r["body"] == "bad"]
        return {"batchItemFailures": [{"itemIdentifier": i} for i in bad]}

    sqs = SqsBackend(Env(), function)
    sqs.create_queue(Queue("dead", sqs.arn("dead")))
    sqs.create_queue(Queue("signals", sqs.arn("signals"), sqs.arn("dead"), 2))
    queue = sqs.queues[sqs.arn("signals")]
    from device_sim.cloud.sqs import Message

    queue.messages += [Message("a", "good"), Message("b", "bad")]
    sqs.add_mapping(EventSourceMapping(sqs.arn("signals"), FUNCTION, True))
    assert calls == [["good", "bad"], ["bad"]]
    assert [m.body for m in sqs.queues[sqs.arn("dead")].messages] == ["bad"]


def test_an_eventbridge_rule_with_a_queue_target_sends_the_transformed_event() -> None:
    function = Function(failures=0)
    sqs = backend(function)
    events = EventsBackend(Env(), lambda arn, payload: None, sqs.send_message)
    events.put_rule(
        Rule(
            "ended",
            {"source": ["aws.sagemaker"]},
            [
                {
                    "Arn": sqs.arn("signals"),
                    "InputTransformer": {
                        "InputPathsMap": {"detail": "$.detail"},
                        "InputTemplate": '{"handleUrl":"u","detail":<detail>}',
                    },
                }
            ],
        )
    )
    events.put_event("aws.sagemaker", "SageMaker Training Job State Change", {"S": "Completed"})
    assert [json.loads(b) for b in function.bodies[0]] == [
        {"handleUrl": "u", "detail": {"S": "Completed"}}
    ]
