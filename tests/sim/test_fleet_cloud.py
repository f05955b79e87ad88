"""The fleet stack in the simulated account: the device's metrics windows reach the fleet
stack's IoT rule, which runs the stack's Lambda (its synthesized asset) with the account's
CloudWatch, IoT and S3; the data lands under ``<root>/cloud/cloudwatch/`` (issue 15).

What AWS refuses is modelled (``device_sim/cloud/rules.py``, ``cloudwatch.py``): a rule whose
function's resource policy does not let ``iot.amazonaws.com`` invoke it for that rule fails into
the error action; ``PutMetricData`` is checked against botocore's model and the documented
limits.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ParamValidationError

from device_contract import fleet_metrics as fm
from device_contract.messages import Metrics
from device_sim.cloud.cloudwatch import CloudWatchBackend
from device_sim.cloud.errors import AssemblyError, ServiceError
from device_sim.cloud.rules import parse_sql, topic_matches
from tests.sim.conftest import Run


def cloudwatch_files(run: Run) -> dict[str, list[dict[str, Any]]]:
    base = run.root / "cloud" / "cloudwatch"
    return {
        str(p.relative_to(base)): [json.loads(line) for line in p.read_text().splitlines()]
        for p in sorted(base.rglob("*.jsonl"))
    }


def test_the_devices_windows_become_cloudwatch_data_under_the_root(dev_run: Run) -> None:
    """Every window the device published went through the rule and the Lambda: Processed per
    class and ring counts what the windows counted, with the thing's class and ring from its
    thing group (the device joined the dev fleet group)."""
    files = cloudwatch_files(dev_run)
    assert "EdgeAi/dev/Processed.jsonl" in files, sorted(files)
    rules = dev_run.root / "cloud" / "iot" / "rules"
    assert not (rules / "errors.jsonl").exists(), (rules / "errors.jsonl").read_text()
    runs = [json.loads(line) for line in (rules / "runs.jsonl").read_text().splitlines()]
    assert len(runs) == len(dev_run.report.metrics) > 0
    assert {r["result"]["status"] for r in runs} == {"put"}
    windows = [Metrics.from_dict(m["payload"]) for m in dev_run.report.metrics]
    ring = [
        d
        for d in files["EdgeAi/dev/Processed.jsonl"]
        if d["Dimensions"] == {fm.CLASS_DIMENSION: "default", fm.RING_DIMENSION: "fleet"}
    ]
    assert sum(d["Value"] for d in ring) == sum(w.processed for w in windows)
    for name in fm.METRIC_NAMES:
        assert f"EdgeAi/dev/{name}.jsonl" in files, name


class _Function:
    def __init__(self, handler: str = "metrics_handler.on_message") -> None:
        self.handler = handler
        self.environment: dict[str, str] = {}
        self.code = None
        self.name = "f"


def test_the_rules_engine_refuses_without_the_permission() -> None:
    from device_sim.cloud.rules import Permission, RulesEngine, Statement, TopicRule

    calls: list[Any] = []

    def function(arn: str) -> Any:
        calls.append(arn)
        return _Function()

    engine = RulesEngine(lambda: None, function)  # type: ignore[arg-type,return-value]
    rule = TopicRule(
        "metrics", "arn:rule/metrics", Statement("edge-ai/+/metrics", ((2, "t"),)), ["arn:fn"]
    )
    engine.put_rule(rule)
    (run,) = engine.publish("edge-ai/cam-1/metrics", {"thing": "cam-1"})
    assert run.error is not None and "AccessDeniedException" in run.error
    assert engine.errors == [run] and calls == []  # never invoked
    engine.add_permission("other", Permission("arn:fn", "iot.amazonaws.com", "arn:rule/other"))
    (run,) = engine.publish("edge-ai/cam-1/metrics", {"thing": "cam-1"})
    assert run.error is not None and "AccessDeniedException" in run.error  # another rule's
    engine.add_permission("ok", Permission("arn:fn", "iot.amazonaws.com", "arn:rule/metrics"))
    (run,) = engine.publish("edge-ai/cam-1/metrics", {"thing": "cam-1"})
    assert calls == ["arn:fn"]  # invoked now (it then fails: this stand-in has no code)
    assert engine.publish("edge-ai/cam-1/predictions", {"thing": "cam-1"}) == []


@pytest.mark.parametrize(
    "sql, ok",
    [
        ("SELECT *, topic(2) AS topic_thing FROM 'edge-ai/+/metrics'", True),
        ("SELECT * FROM 'a/#'", True),
        ("SELECT thing FROM 'a/+'", False),
        ("SELECT * FROM 'a/+' WHERE processed > 0", False),
    ],
)
def test_a_rule_the_simulator_cannot_run_fails_the_deploy(sql: str, ok: bool) -> None:
    if ok:
        parse_sql("r", sql)
    else:
        with pytest.raises(AssemblyError, match="simulator runs only"):
            parse_sql("r", sql)


def test_topic_filters_match_as_mqtt_does() -> None:
    assert topic_matches("edge-ai/+/metrics", "edge-ai/cam-1/metrics")
    assert not topic_matches("edge-ai/+/metrics", "edge-ai/cam-1/x/metrics")
    assert not topic_matches("edge-ai/+/metrics", "edge-ai/cam-1/predictions")
    assert topic_matches("edge-ai/#", "edge-ai/cam-1/metrics")
    assert not topic_matches("plant/+/metrics", "edge-ai/cam-1/metrics")


def test_put_metric_data_is_checked_against_botocores_model_and_its_limits(
    tmp_path: Path,
) -> None:
    now = datetime.datetime(2026, 12, 5, tzinfo=datetime.timezone.utc)
    backend = CloudWatchBackend(lambda: now)
    backend.folder = tmp_path
    client = backend.client()
    datum = {"MetricName": "Processed", "Value": 1.0, "Unit": "Count", "Timestamp": now}
    client.put_metric_data(Namespace="EdgeAi/dev", MetricData=[datum])
    assert json.loads((tmp_path / "EdgeAi" / "dev" / "Processed.jsonl").read_text())["Value"] == 1
    with pytest.raises(ParamValidationError):
        client.put_metric_data(Namespace="EdgeAi/dev", MetricData=[{"Value": 1.0}])
    with pytest.raises(ServiceError, match="at most 1024"):  # botocore: DimensionValue max
        client.put_metric_data(
            Namespace="EdgeAi/dev",
            MetricData=[{**datum, "Dimensions": [{"Name": "Class", "Value": "x" * 1025}]}],
        )
    with pytest.raises(ServiceError, match="InvalidParameterValue"):
        client.put_metric_data(Namespace="EdgeAi/dev", MetricData=[datum] * 1001)
    with pytest.raises(ServiceError, match="two weeks"):
        old = {**datum, "Timestamp": now - datetime.timedelta(weeks=2, seconds=1)}
        client.put_metric_data(Namespace="EdgeAi/dev", MetricData=[old])
    for value in (1e-200, 2.0**361, float("nan")):  # too small, too large, special
        with pytest.raises(ServiceError, match="InvalidParameterValue"):
            client.put_metric_data(Namespace="EdgeAi/dev", MetricData=[{**datum, "Value": value}])
    assert len(backend.data) == 1


def test_the_main_jobs_fleet_view_reads_what_reached_cloudwatch(dev_run: Run) -> None:
    """main_job.fleet sums the simulated CloudWatch's datums per class and ring, as the alarms
    read them: the same count of results the device's windows hold."""
    from main_job.fleet import cloudwatch_lines, fleet_view

    view = fleet_view(dev_run.root, dev_run.report.metrics, dev_run.report.uploads)
    published = [Metrics.from_dict(m["payload"]) for m in dev_run.report.metrics]
    sums = view.cloudwatch[("default", "fleet")]
    assert sums[fm.PROCESSED] == sum(w.processed for w in published)
    assert sums[fm.DEVICES_REPORTING] == len(published)
    (line,) = cloudwatch_lines(view)
    assert line.startswith(f"default fleet: Processed {sums[fm.PROCESSED]:g},")


def test_the_drift_baseline_reaches_s3_per_model_and_drift_reaches_cloudwatch(
    dev_run: Run,
) -> None:
    """The pipeline's Custom::DriftBaseline (replayed with its own handler code) copied the
    training stand-in's baseline to fleet/baselines/<model id>.json; the fleet Lambda read it
    for each window of that model and put observed and expected results per bucket, which sum
    to the windows' results."""
    from device_contract import drift
    from main_job.fleet import fleet_view

    files = cloudwatch_files(dev_run)
    observed = files.get(f"EdgeAi/dev/{drift.OBSERVED}.jsonl", [])
    expected = files.get(f"EdgeAi/dev/{drift.EXPECTED}.jsonl", [])
    published = [Metrics.from_dict(m["payload"]) for m in dev_run.report.metrics]
    results = sum(sum(c.count for c in w.confidence) for w in published)
    assert observed and expected, sorted(files)
    assert sum(d["Value"] for d in observed) == results
    assert sum(d["Value"] for d in expected) == pytest.approx(results)
    # the stand-in baseline: the same share in each bucket
    per_bucket = {d["Dimensions"][drift.BUCKET_DIMENSION] for d in expected}
    assert len(per_bucket) == 4
    view = fleet_view(dev_run.root, dev_run.report.metrics, dev_run.report.uploads)
    assert view.drift[("default", "fleet")] is not None
