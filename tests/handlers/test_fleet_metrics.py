"""The fleet-metrics Lambda (IoT rule -> CloudWatch) against botocore's Stubber, which checks
each PutMetricData call against the real API model (botocore ``cloudwatch/2010-08-01``).

Limits it must respect (PutMetricData documentation in that service model): at most 1000
metrics per request; timestamps from two weeks back to two hours ahead. Retry behaviour it
relies on: IoT invokes the Lambda asynchronously (Lambda developer guide, "Using AWS Lambda
with AWS IoT"), and Lambda retries a failed asynchronous invocation twice ("Error handling for
asynchronous invocation"): so a bad message is dropped, not raised, and a throttled call is
raised (retried), not swallowed.
"""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any

import metrics_handler
import metrics_logic
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber

from device_contract import fleet_metrics as fm
from device_contract.messages import Metrics, confidence_buckets

NOW = datetime.datetime(2026, 12, 4, 12, 0, tzinfo=datetime.timezone.utc)
NAMESPACE = "EdgeAi/dev"


def window(**changes: Any) -> dict[str, Any]:
    """A device's Metrics window as the rule hands it over (payload + topic_thing)."""
    buckets = confidence_buckets()
    message: dict[str, Any] = {
        "thing": "cam-1",
        "model": "vgg16-0123456789ab",
        "runtime": "onnx",
        "window_start": "2026-12-04T11:58:00.000Z",
        "window_seconds": 60.0,
        "processed": 40,
        "failed": [{"name": "cannot decode", "count": 2}, {"name": "timeout", "count": 1}],
        "latency": {"p50_ms": 60.0, "p95_ms": 90.5, "max_ms": 130.0},
        "confidence": [{"name": b, "count": n} for b, n in zip(buckets, (7, 3, 10, 20))],
        "classes": [{"name": "cat", "count": 40}],
        "backlog_files": 4,
        "backlog_oldest_seconds": 12.5,
        "disk_free_bytes": 1_000_000,
        "dropped_windows": 2,
        "topic_thing": "cam-1",
    }
    message.update(changes)
    return message


@pytest.fixture
def cloudwatch(boto_session: Any) -> Any:
    return boto_session.client("cloudwatch")


def ingest(event: Any, cloudwatch: Any, **kwargs: Any) -> dict[str, Any]:
    return metrics_logic.ingest(
        event, namespace=NAMESPACE, cloudwatch=cloudwatch, now=NOW, **kwargs
    )


def test_a_window_becomes_every_metric_stage_wide_per_ring_and_per_model(cloudwatch: Any) -> None:
    with Stubber(cloudwatch) as stub:
        stub.add_response("put_metric_data", {}, {"Namespace": NAMESPACE, "MetricData": ANY})
        captured: list[dict[str, Any]] = []
        cloudwatch.meta.events.register(
            "provide-client-params.cloudwatch.PutMetricData",
            lambda params, **_: captured.append(params),
        )
        result = ingest(window(), cloudwatch, placement=lambda thing: ("jetson", "canary"))
        stub.assert_no_pending_responses()
    assert result["status"] == "put"
    assert (result["class"], result["ring"]) == ("jetson", "canary")
    data = captured[0]["MetricData"]
    by_set: dict[str, dict[str, Any]] = {}
    for datum in data:
        dimensions = ",".join(d["Name"] for d in datum.get("Dimensions", []))
        by_set.setdefault(dimensions, {})[datum["MetricName"]] = datum
    assert sorted(by_set) == ["", "Class,Ring", "Model"]
    stage, by_ring, by_model = by_set[""], by_set["Class,Ring"], by_set["Model"]
    assert set(by_model) == set(stage) == set(by_ring) == set(fm.METRIC_NAMES)
    assert all(
        d["Dimensions"]
        == [{"Name": "Class", "Value": "jetson"}, {"Name": "Ring", "Value": "canary"}]
        for d in by_ring.values()
    )
    assert {d["Value"] for d in by_ring.values()} == {d["Value"] for d in stage.values()}
    assert all(
        d["Dimensions"] == [{"Name": "Model", "Value": "vgg16-0123456789ab"}]
        for d in by_model.values()
    )
    values = {name: d["Value"] for name, d in stage.items()}
    assert values[fm.PROCESSED] == 40
    assert values[fm.FAILED] == 3  # summed over reasons
    assert values[fm.LOW_CONFIDENCE] == 7  # the lowest bucket only
    assert values[fm.LATENCY_P95] == 90.5 and values[fm.LATENCY_MAX] == 130.0
    assert values[fm.DEVICES_REPORTING] == 1
    assert values[fm.DROPPED_WINDOWS] == 2
    assert values[fm.BACKLOG_OLDEST_SECONDS] == 12.5
    # a window from a component without capture (the fields came later) counts none
    assert values[fm.CAPTURED] == values[fm.CAPTURE_DROPPED] == values[fm.CAPTURE_WAITING] == 0
    assert stage[fm.LATENCY_P95]["Unit"] == "Milliseconds"
    assert stage[fm.PROCESSED]["Timestamp"] == datetime.datetime(
        2026, 12, 4, 11, 58, tzinfo=datetime.timezone.utc
    )


def test_data_is_split_into_requests_of_at_most_the_chunk_size(cloudwatch: Any) -> None:
    """42 datums (14 metrics, three dimension sets) in chunks of 8: 6 requests (the real
    limit, 1000, is the default)."""
    assert metrics_logic.MAX_DATUMS_PER_REQUEST == 1000
    sizes: list[int] = []
    cloudwatch.meta.events.register(
        "provide-client-params.cloudwatch.PutMetricData",
        lambda params, **_: sizes.append(len(params["MetricData"])),
    )
    with Stubber(cloudwatch) as stub:
        for _ in range(6):
            stub.add_response("put_metric_data", {})
        result = ingest(window(), cloudwatch, chunk_size=8)
        stub.assert_no_pending_responses()
    assert sizes == [8, 8, 8, 8, 8, 2]
    assert result["requests"] == 6


@pytest.mark.parametrize(
    "event, why",
    [
        (window(processed=-1), "processed"),
        (window(latency="fast"), "latency"),
        (window(window_start="yesterday"), "window_start"),
        ({**window(), "topic_thing": "cam-2"}, "names thing"),
        ({k: v for k, v in window().items() if k != "topic_thing"}, "topic_thing"),
        (["not", "an", "object"], "object"),
    ],
)
def test_a_bad_message_is_logged_and_dropped_never_raised(
    cloudwatch: Any, event: Any, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Raising would only make Lambda retry the same bad payload twice more."""
    with Stubber(cloudwatch) as stub, caplog.at_level(logging.WARNING):
        result = ingest(event, cloudwatch)
        stub.assert_no_pending_responses()  # and no call was made: none was stubbed
    assert result["status"] == "refused"
    assert why in result["reason"]
    assert "dropped a metrics message" in caplog.text


@pytest.mark.parametrize(
    "start", ["2026-11-20T11:00:00.000Z", "2026-12-04T14:30:00.000Z"], ids=["old", "future"]
)
def test_a_window_outside_what_cloudwatch_accepts_is_skipped(
    cloudwatch: Any, start: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Two weeks back (less the margin) and two hours ahead: a device back from three weeks
    offline must not turn into a retry loop of refused calls."""
    with Stubber(cloudwatch) as stub, caplog.at_level(logging.WARNING):
        result = ingest(window(window_start=start), cloudwatch)
        stub.assert_no_pending_responses()
    assert result["status"] == "skipped"
    assert "two weeks back" in caplog.text


def test_a_window_inside_the_range_near_its_edge_is_put(cloudwatch: Any) -> None:
    with Stubber(cloudwatch) as stub:
        stub.add_response("put_metric_data", {})
        assert (
            ingest(window(window_start="2026-11-21T13:00:00.000Z"), cloudwatch)["status"] == "put"
        )


def test_throttling_is_raised_so_lambda_retries(cloudwatch: Any) -> None:
    with Stubber(cloudwatch) as stub:
        stub.add_client_error("put_metric_data", "Throttling", "Rate exceeded", 400)
        with pytest.raises(ClientError, match="Throttling"):
            ingest(window(), cloudwatch)


def test_data_cloudwatch_refuses_is_dropped_not_retried(cloudwatch: Any) -> None:
    with Stubber(cloudwatch) as stub:
        stub.add_client_error("put_metric_data", "InvalidParameterValue", "bad value", 400)
        result = ingest(window(), cloudwatch)
    assert result["status"] == "refused"
    assert "InvalidParameterValue" in result["reason"]


def test_handler_reads_the_namespace_from_its_environment(
    cloudwatch: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edge_constructs.fleet_metrics import construct

    assert construct.NAMESPACE_ENV == metrics_handler.NAMESPACE_ENV
    assert construct.GROUPS_ENV == metrics_handler.GROUPS_ENV
    assert construct.BASELINES_BUCKET_ENV == metrics_handler.BASELINES_BUCKET_ENV
    monkeypatch.setenv(metrics_handler.NAMESPACE_ENV, "EdgeAi/prod")
    monkeypatch.setattr(metrics_handler, "cloudwatch_client", lambda: cloudwatch)
    monkeypatch.setattr(metrics_handler, "placements", lambda: lambda thing: ("a", "fleet"))
    monkeypatch.setattr(metrics_handler, "baselines", lambda: metrics_logic.no_baselines)
    window_now = datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")
    with Stubber(cloudwatch) as stub:
        stub.add_response("put_metric_data", {}, {"Namespace": "EdgeAi/prod", "MetricData": ANY})
        assert metrics_handler.on_message(window(window_start=window_now), None)["status"] == "put"
        stub.assert_no_pending_responses()


# ------------------------------------------------------------------ thing -> (class, ring)
GROUPS = {
    "Jetsons": ("jetson", "fleet"),
    "JetsonsCanary": ("jetson", "canary"),
    "Gateways": ("gateway", "fleet"),
}


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime.datetime:
        return self.now


def groups_page(*names: str, token: str | None = None) -> dict[str, Any]:
    page: dict[str, Any] = {
        "thingGroups": [
            {"groupName": n, "groupArn": f"arn:aws:iot:eu-west-1:123456789012:thinggroup/{n}"}
            for n in names
        ]
    }
    if token:
        page["nextToken"] = token
    return page


@pytest.fixture
def iot(boto_session: Any) -> Any:
    return boto_session.client("iot")


def test_a_things_class_and_ring_come_from_its_group_over_every_page(iot: Any) -> None:
    """ListThingGroupsForThing pages (nextToken, botocore iot/2015-05-28); groups of other
    stages or of nothing of ours are ignored."""
    placements = metrics_logic.Placements(iot, GROUPS, Clock())
    with Stubber(iot) as stub:
        stub.add_response(
            "list_thing_groups_for_thing",
            groups_page("SomeoneElses", token="t1"),
            {"thingName": "cam-1", "maxResults": 250},
        )
        stub.add_response(
            "list_thing_groups_for_thing",
            groups_page("Jetsons"),
            {"thingName": "cam-1", "maxResults": 250, "nextToken": "t1"},
        )
        assert placements("cam-1") == ("jetson", "fleet")
        stub.assert_no_pending_responses()


def test_a_thing_in_a_canary_and_its_fleet_group_counts_as_canary(iot: Any) -> None:
    placements = metrics_logic.Placements(iot, GROUPS, Clock())
    with Stubber(iot) as stub:
        stub.add_response("list_thing_groups_for_thing", groups_page("Jetsons", "JetsonsCanary"))
        assert placements("cam-1") == ("jetson", "canary")


def test_the_answer_is_cached_per_thing_until_the_ttl_passes(iot: Any) -> None:
    """One lookup per device per TTL, not per window; a device moved to another ring counts
    for it once the TTL has passed."""
    clock = Clock()
    placements = metrics_logic.Placements(iot, GROUPS, clock)
    with Stubber(iot) as stub:
        stub.add_response("list_thing_groups_for_thing", groups_page("JetsonsCanary"))
        stub.add_response("list_thing_groups_for_thing", groups_page("Jetsons"))
        assert placements("cam-1") == ("jetson", "canary")
        clock.now += metrics_logic.PLACEMENT_TTL - datetime.timedelta(seconds=1)
        assert placements("cam-1") == ("jetson", "canary")  # no call: nothing more stubbed
        clock.now += datetime.timedelta(seconds=2)
        assert placements("cam-1") == ("jetson", "fleet")
        stub.assert_no_pending_responses()


def test_a_thing_in_none_of_the_stages_groups_or_gone_is_unassigned(iot: Any) -> None:
    placements = metrics_logic.Placements(iot, GROUPS, Clock())
    with Stubber(iot) as stub:
        stub.add_response("list_thing_groups_for_thing", groups_page())
        stub.add_client_error(
            "list_thing_groups_for_thing", "ResourceNotFoundException", "no such thing", 404
        )
        assert placements("loose") == (fm.UNASSIGNED, fm.UNASSIGNED)
        assert placements("deleted") == (fm.UNASSIGNED, fm.UNASSIGNED)


def test_a_lookup_that_is_throttled_or_denied_is_raised_so_lambda_retries(iot: Any) -> None:
    """Counting a canary device's window as unassigned would hide it from the canary's
    alarms; a retry counts it right."""
    placements = metrics_logic.Placements(iot, GROUPS, Clock())
    with Stubber(iot) as stub:
        stub.add_client_error("list_thing_groups_for_thing", "ThrottlingException", "slow", 400)
        with pytest.raises(ClientError, match="Throttling"):
            placements("cam-1")


def test_the_groups_environment_parses_as_the_construct_writes_it() -> None:
    text = '{"EdgeAiDevJetsons":["jetson","fleet"],"EdgeAiDevJetsonsCanary":["jetson","canary"]}'
    assert metrics_logic.parse_groups(text) == {
        "EdgeAiDevJetsons": ("jetson", "fleet"),
        "EdgeAiDevJetsonsCanary": ("jetson", "canary"),
    }


def test_a_windows_capture_counts_become_metrics() -> None:
    raw = {k: v for k, v in window().items() if k != "topic_thing"}
    message = Metrics.from_dict(
        {**raw, "captured": 5, "capture_dropped": 2, "capture_uploaded": 4,
         "capture_waiting": 9}
    )  # fmt: skip
    values = dict(fm.window_values(message))
    assert (values[fm.CAPTURED], values[fm.CAPTURE_DROPPED]) == (5, 2)
    assert (values[fm.CAPTURE_UPLOADED], values[fm.CAPTURE_WAITING]) == (4, 9)


# ------------------------------------------------------------------ drift (device_contract.drift)
MODEL = "vgg16-0123456789ab"
RECORD = {
    "images": 200,
    "confidence_edges": [0.0, 0.5, 0.7, 0.9],
    "confidence": {"0-0.5": 10, "0.5-0.7": 10, "0.7-0.9": 40, "0.9-1": 140},
    "classes": {"cat": 120, "dog": 80},
}


def put_baseline(s3: Any, bucket: str, model: str = MODEL, record: Any = RECORD) -> None:
    from device_contract import drift

    body = json.dumps(drift.document(model, record, "s3://b/training/out/output.tar.gz"))
    s3.put_object(Bucket=bucket, Key=drift.baseline_key(model), Body=body.encode())


def drift_data(cloudwatch: Any, event: Any, **kwargs: Any) -> tuple[dict[str, Any], list[Any]]:
    captured: list[dict[str, Any]] = []
    cloudwatch.meta.events.register(
        "provide-client-params.cloudwatch.PutMetricData",
        lambda params, **_: captured.append(params),
    )
    with Stubber(cloudwatch) as stub:
        stub.add_response("put_metric_data", {}, {"Namespace": NAMESPACE, "MetricData": ANY})
        result = ingest(event, cloudwatch, **kwargs)
        stub.assert_no_pending_responses()
    data = [d for call in captured for d in call["MetricData"]]
    return result, [d for d in data if d["MetricName"].startswith("Drift")]


def test_a_ring_windows_results_by_bucket_go_beside_what_the_baseline_expected(
    cloudwatch: Any, s3: Any
) -> None:
    """Observed counts and expected counts (results x the baseline's share) per bucket, with
    Class, Ring and Bucket: sums, so a period's totals stay right across devices and models."""
    s3.create_bucket(Bucket="art", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    put_baseline(s3, "art")
    baselines = metrics_logic.Baselines(s3, "art", Clock())
    result, data = drift_data(
        cloudwatch, window(), placement=lambda thing: ("jetson", "canary"), baseline=baselines
    )
    assert result["drift"] is True
    observed = {
        d["Dimensions"][2]["Value"]: d["Value"] for d in data if d["MetricName"] == "DriftObserved"
    }
    expected = {
        d["Dimensions"][2]["Value"]: d["Value"] for d in data if d["MetricName"] == "DriftExpected"
    }
    # window(): 7, 3, 10, 20 results per bucket; the baseline: 5%, 5%, 20%, 70%.
    assert observed == {"0-0.5": 7, "0.5-0.7": 3, "0.7-0.9": 10, "0.9-1": 20}
    assert expected == pytest.approx({"0-0.5": 2.0, "0.5-0.7": 2.0, "0.7-0.9": 8.0, "0.9-1": 28.0})
    assert {tuple(x["Value"] for x in d["Dimensions"][:2]) for d in data} == {("jetson", "canary")}


def test_a_model_with_no_baseline_gets_no_drift_and_keeps_its_other_metrics(
    cloudwatch: Any, s3: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """NoSuchKey (a brought model, or no validation images): the window's other metrics are
    put as always, and the missing baseline is not asked again within the TTL."""
    s3.create_bucket(Bucket="art", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    calls: list[str] = []
    s3.meta.events.register("before-call.s3.GetObject", lambda **_: calls.append("get"))
    clock = Clock()
    baselines = metrics_logic.Baselines(s3, "art", clock)
    with caplog.at_level(logging.INFO):
        result, data = drift_data(
            cloudwatch, window(), placement=lambda thing: ("a", "fleet"), baseline=baselines
        )
    assert result["status"] == "put" and result["drift"] is False and data == []
    assert "has no drift baseline (NoSuchKey)" in caplog.text
    assert baselines(MODEL) is None and calls == ["get"]  # cached as missing
    put_baseline(s3, "art")
    clock.now += metrics_logic.MISSING_BASELINE_TTL
    assert baselines(MODEL) is not None and calls == ["get", "get"]  # asked again after the TTL


def test_a_thing_in_none_of_the_stages_rings_gets_no_drift(cloudwatch: Any, s3: Any) -> None:
    s3.create_bucket(Bucket="art", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    put_baseline(s3, "art")
    baselines = metrics_logic.Baselines(s3, "art", Clock())
    result, data = drift_data(cloudwatch, window(), baseline=baselines)
    assert result["class"] == fm.UNASSIGNED and data == []


@pytest.mark.parametrize(
    "record, why",
    [
        ({**RECORD, "confidence_edges": [0.0, 0.6, 0.8, 0.95]}, "not the device's"),
        ({**RECORD, "confidence": {**RECORD["confidence"], "0.9-1": -1}}, "is -1"),
        ({**RECORD, "confidence": {k: 0 for k in RECORD["confidence"]}}, "counts no"),
        ({**RECORD, "confidence": {k: 1e308 for k in RECORD["confidence"]}}, "add up to inf"),
    ],
)
def test_a_baseline_the_fleet_cannot_compare_with_is_left_out_with_the_reason(
    s3: Any, record: Any, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    from device_contract import drift

    s3.create_bucket(Bucket="art", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    body = json.dumps({"model": MODEL, "source": "x", "baseline": record})
    s3.put_object(Bucket="art", Key=drift.baseline_key(MODEL), Body=body.encode())
    with caplog.at_level(logging.WARNING):
        assert metrics_logic.Baselines(s3, "art", Clock())(MODEL) is None
    assert why in caplog.text


def test_a_baseline_read_that_fails_is_not_raised(cloudwatch: Any, s3: Any) -> None:
    """A read of the baseline that fails (here: no such bucket) leaves drift out of that window
    and never raises: raising would make Lambda retry a window whose other datums are put."""
    baselines = metrics_logic.Baselines(s3, "no-such-bucket-here", Clock())
    result, data = drift_data(
        cloudwatch, window(), placement=lambda thing: ("a", "fleet"), baseline=baselines
    )
    assert result["status"] == "put" and data == []


def test_the_remembered_models_are_bounded(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A device that names a new model id in every window (broken, or hostile) cannot grow the
    warm function's memory without bound."""
    s3.create_bucket(Bucket="art", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    monkeypatch.setattr(metrics_logic, "MAX_REMEMBERED_MODELS", 10)
    baselines = metrics_logic.Baselines(s3, "art", Clock())
    for index in range(25):
        assert baselines(f"m-{index:03d}") is None
        assert len(baselines._found) + len(baselines._missing) <= 10


@pytest.mark.parametrize(
    "changes",
    [
        {"processed": 10**400},
        {"confidence": [{"name": "0.9-1", "count": 10**400}]},
    ],
)
def test_a_number_too_large_for_cloudwatch_is_refused_not_raised(
    cloudwatch: Any, s3: Any, changes: dict[str, Any]
) -> None:
    """Found by the hostile review: 10**400 raised OverflowError, so Lambda retried the window
    twice and then lost it. Such a window is refused (logged) instead."""
    s3.create_bucket(Bucket="art", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    put_baseline(s3, "art")
    baselines = metrics_logic.Baselines(s3, "art", Clock())
    result = ingest(
        window(**changes), cloudwatch, placement=lambda t: ("a", "fleet"), baseline=baselines
    )
    assert result["status"] == "refused" and "too large" in result["reason"]


@pytest.mark.parametrize(
    "record",
    [
        {**RECORD, "confidence_edges": ["x", 0.5, 0.7, 0.9]},
        {**RECORD, "confidence_edges": [None, 0.5, 0.7, 0.9]},
        {**RECORD, "confidence_edges": ["0", "0.5", "0.7", "0.9"]},
        {**RECORD, "confidence": {**RECORD["confidence"], "0-0.5": 10**400}},
        {**RECORD, "confidence": {**RECORD["confidence"], "0-0.5": False}},
    ],
)
def test_a_baseline_of_the_wrong_types_leaves_out_drift_only(
    cloudwatch: Any, s3: Any, record: Any
) -> None:
    """Found by the hostile review: such documents raised ValueError/OverflowError out of the
    reader, so every metric of the model's windows was lost, not only drift."""
    from device_contract import drift

    s3.create_bucket(Bucket="art", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    body = json.dumps({"model": MODEL, "source": "x", "baseline": record})
    s3.put_object(Bucket="art", Key=drift.baseline_key(MODEL), Body=body.encode())
    baselines = metrics_logic.Baselines(s3, "art", Clock())
    result, data = drift_data(
        cloudwatch, window(), placement=lambda t: ("a", "fleet"), baseline=baselines
    )
    assert result["status"] == "put" and result["drift"] is False and data == []


def test_a_tiny_baseline_share_never_makes_cloudwatch_refuse_the_window(
    cloudwatch: Any, s3: Any
) -> None:
    """Found by the hostile review: a share of 1e-200 put DriftExpected = 1e-199, a value
    CloudWatch rejects ("too small", botocore MetricDatum Value), and with it the whole window.
    An expected count below drift.MIN_EXPECTED is put as 0."""
    from device_contract import drift

    record = {**RECORD, "confidence": {**RECORD["confidence"], "0-0.5": 1e-200}}
    s3.create_bucket(Bucket="art", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    put_baseline(s3, "art", record=record)
    baselines = metrics_logic.Baselines(s3, "art", Clock())
    _, data = drift_data(
        cloudwatch, window(), placement=lambda t: ("a", "fleet"), baseline=baselines
    )
    expected = [d["Value"] for d in data if d["MetricName"] == drift.EXPECTED]
    assert expected and all(v == 0 or v >= drift.MIN_EXPECTED for v in expected)
