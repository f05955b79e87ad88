"""Amazon CloudWatch in the simulated account: ``PutMetricData``, checked and written where a
user can look.

A request is checked as the client and the service check it:

* against botocore's own model of ``PutMetricData`` (``cloudwatch/2010-08-01``): a missing or
  mistyped parameter or an empty string raises botocore's ``ParamValidationError`` before
  anything is sent, as boto3 does (botocore's validator checks minimums only);
* the model's maximums, which the service enforces (``InvalidParameterValue``): at most 30
  ``Dimensions`` per datum, a ``DimensionName`` of at most 255 characters, a ``DimensionValue``
  of at most 1024, a ``MetricName`` of at most 255;
* against what the operation's documentation says the service refuses (``InvalidParameterValue``):
  "Each request is also limited to no more than 1000 different metrics", and timestamps "as much
  as two weeks before the current date, and as much as 2 hours after the current day and time".

What is accepted is appended to ``<folder>/<namespace>/<MetricName>.jsonl`` (the namespace's
``/`` becomes a folder level), one datum per line: ``Dimensions`` (a ``{name: value}`` object),
``Timestamp`` (ISO 8601), ``Value``, ``Unit``. The clock is the wall clock, not the simulated
account's: the device stamps its windows with the time it runs at.
"""

from __future__ import annotations

import datetime
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import botocore.session
from botocore.validate import validate_parameters

from device_sim.cloud.errors import ServiceError

MAX_DATUMS = 1000
MAX_AGE = datetime.timedelta(weeks=2)
MAX_AHEAD = datetime.timedelta(hours=2)

_MODEL: Any = None


def _input_shape() -> Any:
    global _MODEL
    if _MODEL is None:
        _MODEL = botocore.session.get_session().get_service_model("cloudwatch")
    return _MODEL.operation_model("PutMetricData").input_shape


def wall_clock() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


class CloudWatchBackend:
    def __init__(self, clock: Callable[[], datetime.datetime] = wall_clock) -> None:
        self.clock = clock
        self.folder: Path | None = None  # where accepted data is written; None: memory only
        self.data: list[dict[str, Any]] = []  # every accepted datum, with its Namespace
        self._lock = threading.Lock()

    def client(self) -> CloudWatchClient:
        return CloudWatchClient(self)

    def put(self, namespace: str, data: list[dict[str, Any]]) -> None:
        now = self.clock()
        if len(data) > MAX_DATUMS:
            raise ServiceError(
                "PutMetricData",
                "InvalidParameterValue",
                f"The collection MetricData must not have a size greater than {MAX_DATUMS}.",
            )
        lines: list[tuple[str, dict[str, Any]]] = []
        for datum in data:
            _check_maximums(datum)
            _check_value(datum.get("Value"))
            moment = datum.get("Timestamp", now)
            if isinstance(moment, datetime.datetime):
                if moment.tzinfo is None:
                    moment = moment.replace(tzinfo=datetime.timezone.utc)
                if moment < now - MAX_AGE or moment > now + MAX_AHEAD:
                    raise ServiceError(
                        "PutMetricData",
                        "InvalidParameterValue",
                        f"The parameter MetricData.Timestamp {moment.isoformat()} must specify "
                        "a time no more than two weeks in the past and no more than two hours "
                        "in the future.",
                    )
            record = {
                "Namespace": namespace,
                "MetricName": datum["MetricName"],
                "Dimensions": {d["Name"]: d["Value"] for d in datum.get("Dimensions", [])},
                "Timestamp": moment.isoformat() if hasattr(moment, "isoformat") else str(moment),
                "Value": datum.get("Value"),
                "Unit": datum.get("Unit", "None"),
            }
            lines.append((str(datum["MetricName"]), record))
        with self._lock:
            self.data.extend(record for _, record in lines)
            if self.folder is None:
                return
            folder = self.folder.joinpath(*namespace.split("/"))
            folder.mkdir(parents=True, exist_ok=True)
            for name, record in lines:
                with (folder / f"{name}.jsonl").open("a", encoding="utf-8") as out:
                    out.write(json.dumps(record, sort_keys=True) + "\n")


#: "CloudWatch rejects values that are either too small or too large. Values must be in the
#: range of -2^360 to 2^360. In addition, special values (for example, NaN, +Infinity,
#: -Infinity) are not supported" (botocore MetricDatum ``Value``); the smallest magnitude, 2^-360
#: (8.5e-109), is the earlier form of that page ("2e-360 to 2e360 (Base 2)").
VALUE_MAX = 2.0**360
VALUE_MIN = 2.0**-360


def _check_value(value: Any) -> None:
    if value is None:
        return
    number = float(value)
    magnitude = abs(number)
    if number != number or magnitude > VALUE_MAX or 0 < magnitude < VALUE_MIN:
        raise ServiceError(
            "PutMetricData",
            "InvalidParameterValue",
            f"The value {number!r} for parameter MetricData.member.Value is invalid.",
        )


def _check_maximums(datum: dict[str, Any]) -> None:
    model = _input_shape().members["MetricData"].member.members
    dimensions = datum.get("Dimensions", [])
    limits = [
        ("MetricName", str(datum.get("MetricName", "")), model["MetricName"]),
        ("Dimensions", dimensions, model["Dimensions"]),
    ]
    for dimension in dimensions:
        shape = model["Dimensions"].member.members
        limits.append(("Dimension.Name", str(dimension.get("Name", "")), shape["Name"]))
        limits.append(("Dimension.Value", str(dimension.get("Value", "")), shape["Value"]))
    for what, value, shape in limits:
        maximum = shape.metadata.get("max")
        if maximum is not None and len(value) > maximum:
            raise ServiceError(
                "PutMetricData",
                "InvalidParameterValue",
                f"The parameter MetricData.{what} must be at most {maximum} long, got "
                f"{len(value)}.",
            )


class CloudWatchClient:
    """The boto3 ``cloudwatch`` calls the project's Lambda makes, answered by the backend."""

    def __init__(self, backend: CloudWatchBackend) -> None:
        self.backend = backend

    def put_metric_data(self, **params: Any) -> dict[str, Any]:
        validate_parameters(params, _input_shape())  # raises ParamValidationError, as boto3
        self.backend.put(str(params["Namespace"]), list(params["MetricData"]))
        return {}
