"""Lambda entry point of the fleet-metrics IoT rule: ``metrics_handler.on_message``.

AWS IoT invokes it asynchronously with the rule's SELECT result (Lambda developer guide, "Using
AWS Lambda with AWS IoT", https://docs.aws.amazon.com/lambda/latest/dg/services-iot.html).
The namespace, the stage's thing groups and the bucket of the drift baselines come from the
function's environment. The clients
are made on the first call (never at import time); the thing -> (class, ring) cache lives as
long as the warm function does (``metrics_logic.Placements``)."""

from __future__ import annotations

import datetime
import os
from typing import Any, Mapping, Optional

import metrics_logic
from lambda_entry import client

NAMESPACE_ENV = "METRICS_NAMESPACE"
GROUPS_ENV = "THING_GROUPS"
#: The artifact bucket, where the drift baselines are (``device_contract.drift.PREFIX``).
BASELINES_BUCKET_ENV = "BASELINES_BUCKET"

_placements: Optional[metrics_logic.Placements] = None
_baselines: Optional[metrics_logic.Baselines] = None


def cloudwatch_client() -> Any:
    return client("cloudwatch")


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def placements() -> metrics_logic.Placements:
    global _placements
    if _placements is None:
        groups = metrics_logic.parse_groups(os.environ[GROUPS_ENV])
        _placements = metrics_logic.Placements(client("iot"), groups, utc_now)
    return _placements


def baselines() -> metrics_logic.Baselines:
    global _baselines
    if _baselines is None:
        _baselines = metrics_logic.Baselines(
            client("s3"), os.environ[BASELINES_BUCKET_ENV], utc_now
        )
    return _baselines


def on_message(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    return metrics_logic.ingest(
        event,
        namespace=os.environ[NAMESPACE_ENV],
        cloudwatch=cloudwatch_client(),
        now=utc_now(),
        placement=placements(),
        baseline=baselines(),
    )
