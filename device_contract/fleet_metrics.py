"""The fleet's CloudWatch metrics: what the cloud makes of each device's ``Metrics`` window.

One module for every side that names a metric (``STYLE.md``, "one place per change"): the
ingestion Lambda (``edge_constructs/fleet_metrics/runtime``) writes them, the dashboard and the
alarms (``edge_constructs/fleet_metrics/construct.py``) read them, and ``rollout.promote`` reads
the alarms and the canary's numbers. Standard library only, like the rest of this package; it
ships in the Lambda's bundle beside the handler.

Each window becomes datums three times: with no dimension (the stage as a whole), with the
dimensions ``Class`` and ``Ring`` (the device class and release ring of the thing's group: the
alarms watch these, and ``rollout.promote`` checks the canary ring's), and with ``Model`` (the
window's model id, ``metadata.json``'s ``model_id``). CloudWatch does not aggregate across
dimension sets (CloudWatch User Guide, "Dimensions": "CloudWatch treats each unique combination
of dimensions as a separate metric"), so each set is published.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Tuple

from device_contract.messages import Metrics, confidence_buckets

#: Every metric of a stage is in this namespace.
NAMESPACE_PREFIX = "EdgeAi"
MODEL_DIMENSION = "Model"
CLASS_DIMENSION = "Class"
RING_DIMENSION = "Ring"
#: The rings of a class: its fleet (``thing_group``) and its canary (``canary_thing_group``).
FLEET_RING = "fleet"
CANARY_RING = "canary"
RINGS: Tuple[str, ...] = (FLEET_RING, CANARY_RING)
#: Class and ring of a thing in none of the stage's thing groups (class names are letters and
#: digits, app_config/classes.py, so no class is called this).
UNASSIGNED = "-"
#: Template metadata of each fleet alarm: {stage, class, ring, kind}; rollout.promote finds the
#: canary's alarms in the cloud assembly by it.
ALARM_METADATA = "EdgeAiAlarm"

PROCESSED = "Processed"
FAILED = "Failed"
LATENCY_P95 = "LatencyP95"
LATENCY_MAX = "LatencyMax"
BACKLOG_FILES = "BacklogFiles"
BACKLOG_OLDEST_SECONDS = "BacklogOldestSeconds"
DISK_FREE_BYTES = "DiskFreeBytes"
#: Results whose top-1 confidence is in the lowest bucket (``confidence_buckets()[0]``).
LOW_CONFIDENCE = "LowConfidence"
#: 1 per window a device published: its Sum over a period is device-windows reporting.
DEVICES_REPORTING = "DevicesReporting"
DROPPED_WINDOWS = "DroppedWindows"
#: Capture (``Metrics.captured`` ...): inputs captured, dropped on the device (CaptureMaxMB, a
#: full disk), uploaded, and waiting for upload at the window's end.
CAPTURED = "Captured"
CAPTURE_DROPPED = "CaptureDropped"
CAPTURE_UPLOADED = "CaptureUploaded"
CAPTURE_WAITING = "CaptureWaiting"

#: name -> CloudWatch unit (botocore cloudwatch ``StandardUnit``).
UNITS: Dict[str, str] = {
    PROCESSED: "Count",
    FAILED: "Count",
    LATENCY_P95: "Milliseconds",
    LATENCY_MAX: "Milliseconds",
    BACKLOG_FILES: "Count",
    BACKLOG_OLDEST_SECONDS: "Seconds",
    DISK_FREE_BYTES: "Bytes",
    LOW_CONFIDENCE: "Count",
    DEVICES_REPORTING: "Count",
    DROPPED_WINDOWS: "Count",
    CAPTURED: "Count",
    CAPTURE_DROPPED: "Count",
    CAPTURE_UPLOADED: "Count",
    CAPTURE_WAITING: "Count",
}
METRIC_NAMES: Tuple[str, ...] = tuple(UNITS)

# The stage's alarms, by kind (their names: alarm_name).
FAILURE_RATE_ALARM = "failure-rate"
LATENCY_ALARM = "latency-p95"
NO_DEVICES_ALARM = "no-devices-reporting"
LOW_CONFIDENCE_ALARM = "low-confidence-rate"
#: PSI of the ring's confidence buckets against the training baseline (device_contract.drift).
DRIFT_ALARM = "drift"
ALARM_KINDS: Tuple[str, ...] = (
    FAILURE_RATE_ALARM,
    LATENCY_ALARM,
    NO_DEVICES_ALARM,
    LOW_CONFIDENCE_ALARM,
    DRIFT_ALARM,
)


def namespace(stage: str) -> str:
    """``EdgeAi/<stage>``: a namespace per stage, so a test stage never moves prod's alarms."""
    return f"{NAMESPACE_PREFIX}/{stage}"


def alarm_prefix(name_prefix: str) -> str:
    """``<prefix>-<stage>-fleet-``: every fleet alarm of the stage starts with it
    (``DescribeAlarms`` ``AlarmNamePrefix``)."""
    return f"{name_prefix}-fleet-"


def alarm_name(name_prefix: str, device_class: str, ring: str, kind: str) -> str:
    """The alarm of ``kind`` (one of :data:`ALARM_KINDS`) for one class's ring in the stage
    ``name_prefix`` (``<prefix>-<stage>``)."""
    if kind not in ALARM_KINDS:
        raise ValueError(f"unknown alarm kind {kind!r}; known: {', '.join(ALARM_KINDS)}")
    if ring not in RINGS:
        raise ValueError(f"unknown ring {ring!r}; known: {', '.join(RINGS)}")
    return f"{alarm_prefix(name_prefix)}{device_class}-{ring}-{kind}"


def ring_dimensions(device_class: str, ring: str) -> List[Dict[str, str]]:
    """The ``Dimensions`` of one class's ring (PutMetricData / GetMetricStatistics shape)."""
    return [
        {"Name": CLASS_DIMENSION, "Value": device_class},
        {"Name": RING_DIMENSION, "Value": ring},
    ]


def thing_topic_level(topic_prefix: str) -> int:
    """The 1-based topic level of the thing name in ``<prefix>/<thing>/metrics`` (the argument
    of the IoT SQL ``topic(n)`` function): a prefix may itself hold several levels."""
    return topic_prefix.count("/") + 2


def low_confidence_bucket() -> str:
    """The confidence bucket counted as :data:`LOW_CONFIDENCE` (the lowest)."""
    return confidence_buckets()[0]


def window_values(metrics: Metrics) -> List[Tuple[str, float]]:
    """Every metric of one window, as (name, value), in :data:`METRIC_NAMES` order."""
    low = low_confidence_bucket()
    values: Mapping[str, float] = {
        PROCESSED: metrics.processed,
        FAILED: sum(c.count for c in metrics.failed),
        LATENCY_P95: metrics.latency.p95_ms,
        LATENCY_MAX: metrics.latency.max_ms,
        BACKLOG_FILES: metrics.backlog_files,
        BACKLOG_OLDEST_SECONDS: metrics.backlog_oldest_seconds,
        DISK_FREE_BYTES: metrics.disk_free_bytes,
        LOW_CONFIDENCE: sum(c.count for c in metrics.confidence if c.name == low),
        DEVICES_REPORTING: 1,
        DROPPED_WINDOWS: metrics.dropped_windows,
        CAPTURED: metrics.captured,
        CAPTURE_DROPPED: metrics.capture_dropped,
        CAPTURE_UPLOADED: metrics.capture_uploaded,
        CAPTURE_WAITING: metrics.capture_waiting,
    }
    return [(name, float(values[name])) for name in METRIC_NAMES]


def datums(
    metrics: Metrics, timestamp: Any, device_class: str = UNASSIGNED, ring: str = UNASSIGNED
) -> List[Dict[str, Any]]:
    """The ``MetricData`` of one window (PutMetricData's ``MetricDatum``): each metric with no
    dimension, then with the thing's class and ring, then with the window's model.
    ``timestamp``: the window's time, as the client takes it (a ``datetime``)."""
    out: List[Dict[str, Any]] = []
    dimension_sets: List[List[Dict[str, str]]] = [
        [],
        ring_dimensions(device_class, ring),
        [{"Name": MODEL_DIMENSION, "Value": metrics.model}],
    ]
    for dimensions in dimension_sets:
        for name, value in window_values(metrics):
            datum: Dict[str, Any] = {
                "MetricName": name,
                "Timestamp": timestamp,
                "Value": value,
                "Unit": UNITS[name],
            }
            if dimensions:
                datum["Dimensions"] = dimensions
            out.append(datum)
    return out
