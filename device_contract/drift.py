"""Drift: the fleet's top-1 confidence distribution against the trained model's own.

One module for every side that names it (``STYLE.md``, "one place per change"):

* the training job writes the baseline (``training_src/edge_training/baseline.py``: the
  trained model's answers on its validation set) into ``metadata.json`` of its output data;
* the pipeline's ``Custom::DriftBaseline`` (``edge_constructs/drift_baseline``) copies it, once
  the packages are built, to :func:`baseline_key` of every model id built from that training
  job (``fleet/baselines/<model id>.json``): the model id is what each device's ``Metrics``
  window names, so the fleet side needs no reference to the pipeline stack (a cross-stack
  export that changes with each training run would be refused by CloudFormation while it is
  imported: "Export ... cannot be updated as it is in use by ...");
* the fleet-metrics Lambda reads the baseline of each window's model and publishes, per class
  and ring, the window's results by confidence bucket (:data:`OBSERVED`) beside what the
  baseline expected for as many results (:data:`EXPECTED`: results x the baseline's share of
  the bucket). Both are sums, so a period's totals stay right when a ring runs several models
  at once (a canary rollout): the expectation is then the mixture of their baselines;
* the drift alarm is the population stability index (PSI) of the period's observed shares
  against its expected shares, a CloudWatch metric-math expression
  (:func:`psi_expression`; :func:`psi` is the same sum in Python, and a test holds the two
  equal).

Standard library only; cloud only (``CLOUD_ONLY``): the device never imports it.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from device_contract.fleet_metrics import CLASS_DIMENSION, RING_DIMENSION
from device_contract.messages import CONFIDENCE_EDGES, confidence_buckets

#: Where the baselines live in the artifact bucket.
PREFIX = "fleet/baselines/"
#: The training job's record in metadata.json (training_src/edge_training/baseline.py RECORD).
RECORD = "baseline"
#: A window's results in a confidence bucket, and what the baseline expected there.
OBSERVED = "DriftObserved"
EXPECTED = "DriftExpected"
BUCKET_DIMENSION = "Bucket"
#: Added to each share before the logarithm, so an empty bucket on either side gives a large
#: finite term, not an infinite one (the usual smoothing of PSI).
EPSILON = 0.001
#: An expected count below this is put as 0 (a fraction of a result; and CloudWatch refuses a
#: whole PutMetricData for one value too close to zero).
MIN_EXPECTED = 1e-6

# A model id: ``<model name>-<12 hex>`` (packaging_logic.model_id_for); as a key, nothing else.
_MODEL_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")


class BaselineError(ValueError):
    """A baseline document that cannot be used; the message says what is wrong with it."""


def baseline_key(model_id: str) -> str:
    """``fleet/baselines/<model id>.json``."""
    if not _MODEL_ID_RE.match(model_id):
        raise BaselineError(f"model id {model_id!r} cannot name a baseline key")
    return f"{PREFIX}{model_id}.json"


def _number(value: Any) -> Optional[float]:
    """``value`` as a finite float, or None for anything else (bools and strings included)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        return None
    return number if math.isfinite(number) else None


def shares(record: Mapping[str, Any]) -> Dict[str, float]:
    """bucket -> share of the validation results, from the training job's ``baseline`` record.

    Refuses (:class:`BaselineError`, never another error) a record whose buckets are not the
    device's (``CONFIDENCE_EDGES``: the shares would be compared with counts of other
    buckets), or whose counts are not finite non-negative numbers.
    """
    if not isinstance(record, Mapping):
        raise BaselineError("the baseline is not a JSON object")
    edges = record.get("confidence_edges")
    numbers = [_number(e) for e in edges] if isinstance(edges, list) else None
    if numbers != list(CONFIDENCE_EDGES):
        raise BaselineError(
            f"the baseline's confidence_edges {edges!r:.200} are not the device's "
            f"{list(CONFIDENCE_EDGES)}"
        )
    counts = record.get("confidence")
    if not isinstance(counts, Mapping):
        raise BaselineError("the baseline has no confidence counts")
    values: Dict[str, float] = {}
    for bucket in confidence_buckets():
        value = _number(counts.get(bucket))
        if value is None or value < 0:
            raise BaselineError(
                f"the baseline's count of bucket {bucket!r} is {counts.get(bucket)!r:.100}"
            )
        values[bucket] = value
    total = sum(values.values())
    if not math.isfinite(total):
        raise BaselineError(f"the baseline's counts add up to {total!r}")
    if total <= 0:
        raise BaselineError("the baseline counts no validation results")
    return {bucket: value / total for bucket, value in values.items()}


def document(model_id: str, record: Mapping[str, Any], source: str) -> Dict[str, Any]:
    """What :func:`baseline_key` holds: the record, its model, where it came from."""
    shares(record)  # refuses what the fleet side could not use
    return {"model": model_id, "source": source, RECORD: dict(record)}


def parse_document(text: bytes | str, model_id: str) -> Dict[str, float]:
    """The bucket shares of a stored :func:`document` for ``model_id``."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise BaselineError(f"the baseline of {model_id} is not JSON: {error}") from None
    if not isinstance(doc, Mapping) or doc.get("model") != model_id:
        raise BaselineError(f"the baseline stored for {model_id} names another model")
    return shares(doc.get(RECORD, {}))


def bucket_dimensions(device_class: str, ring: str, bucket: str) -> List[Dict[str, str]]:
    """Class, ring and bucket: drift is published for the rings only (what the alarms watch)."""
    return [
        {"Name": CLASS_DIMENSION, "Value": device_class},
        {"Name": RING_DIMENSION, "Value": ring},
        {"Name": BUCKET_DIMENSION, "Value": bucket},
    ]


def window_counts(confidence: Sequence[Tuple[str, int]]) -> Dict[str, int]:
    """A window's results per bucket (every bucket, 0 where the window has none)."""
    counts = {bucket: 0 for bucket in confidence_buckets()}
    for name, count in confidence:
        if name in counts:
            counts[name] += int(count)
    return counts


def datums(
    confidence: Sequence[Tuple[str, int]],
    baseline: Mapping[str, float],
    timestamp: Any,
    device_class: str,
    ring: str,
) -> List[Dict[str, Any]]:
    """PutMetricData datums of one window: observed and expected results per bucket."""
    counts = window_counts(confidence)
    total = sum(counts.values())
    out: List[Dict[str, Any]] = []
    for bucket in confidence_buckets():
        expected = total * baseline[bucket]
        if expected < MIN_EXPECTED:  # a share of 1e-200: CloudWatch "rejects values that
            expected = 0.0  # are either too small or too large" (botocore MetricDatum Value)
        for name, value in (
            (OBSERVED, float(counts[bucket])),
            (EXPECTED, expected),
        ):
            out.append(
                {
                    "MetricName": name,
                    "Dimensions": bucket_dimensions(device_class, ring, bucket),
                    "Timestamp": timestamp,
                    "Value": value,
                    "Unit": "Count",
                }
            )
    return out


def psi(observed: Sequence[float], expected: Sequence[float]) -> Optional[float]:
    """PSI = sum over buckets of (o - e) * ln((o + EPSILON) / (e + EPSILON)), o and e the
    observed and expected shares; None with no results (what the expression leaves out)."""
    total_o, total_e = sum(observed), sum(expected)
    if total_o <= 0 or total_e <= 0:
        return None
    value = 0.0
    for o_count, e_count in zip(observed, expected):
        o, e = o_count / total_o, e_count / total_e
        value += (o - e) * math.log((o + EPSILON) / (e + EPSILON))
    return value


def metric_ids(count: int, suffix: str = "") -> Tuple[List[str], List[str]]:
    """The expression's ids of the observed and expected metrics: ``o0..``, ``e0..`` (plus
    ``suffix``, so that several rings' expressions can share one graph)."""
    return [f"o{i}{suffix}" for i in range(count)], [f"e{i}{suffix}" for i in range(count)]


def psi_expression(count: int, min_results: int, suffix: str = "") -> str:
    """:func:`psi` as a CloudWatch metric-math expression over ``o0..`` and ``e0..`` (each the
    period's Sum of one bucket), 0 while the period has fewer than ``min_results`` results.

    CloudWatch metric math (User Guide, "Using metric math": "Functions supported for metric
    math"): ``LOG`` "returns the natural logarithm value of each value in the time series";
    ``IF(condition, trueValue, falseValue)``; in arithmetic "Missing values in a time series
    are treated as 0", and "If the value of a data point causes a function to attempt to
    divide by zero, the data point is dropped". An alarm on it "can reference a maximum of 10
    metrics" (User Guide, "Limits that apply to alarms based on metric math expressions"):
    four buckets make eight.
    """
    o, e = metric_ids(count, suffix)
    total_o = "(" + " + ".join(o) + ")"
    total_e = "(" + " + ".join(e) + ")"
    terms = [
        f"({oi} / {total_o} - {ei} / {total_e}) * "
        f"LOG(({oi} / {total_o} + {EPSILON:g}) / ({ei} / {total_e} + {EPSILON:g}))"
        for oi, ei in zip(o, e)
    ]
    return f"IF({total_o} >= {min_results}, " + " + ".join(terms) + ", 0)"
