"""The fleet stack: the IoT rule on the metrics topics, its Lambda, the dashboard and the alarms
(``edge_constructs/fleet_metrics``), as synthesized."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Capture, Match, Template

import device_contract
from app_config import ConfigError, load_config
from device_contract import fleet_metrics as fm
from stacks.artifact_stack import ArtifactStack
from stacks.fleet_stack import FleetStack
from tests.infra.conftest import CDK_JSON_CONTEXT, REPO_ROOT


def fleet_template(tmp_path: Path, **overrides: Any) -> Template:
    """Only the fleet stack, for a configuration with ``overrides`` (as ``-c key=value``)."""
    config = load_config({**CDK_JSON_CONTEXT, **overrides}, "dev")
    app = cdk.App(outdir=str(tmp_path))
    artifacts = ArtifactStack(app, "Artifacts", config=config)
    stack = FleetStack(app, "Fleet", config=config, bucket=artifacts.bucket)
    return Template.from_stack(stack)


@pytest.fixture(scope="module")
def fleet(dev: Any) -> Template:
    return dev.template("dev/Fleet")  # type: ignore[no-any-return]


def test_the_rule_takes_the_thing_from_the_topic_and_invokes_the_lambda(fleet: Template) -> None:
    function = Capture()
    fleet.has_resource_properties(
        "AWS::IoT::TopicRule",
        {
            "TopicRulePayload": {
                "Sql": "SELECT *, topic(2) AS topic_thing FROM 'edge-ai/+/metrics'",
                "Actions": [{"Lambda": {"FunctionArn": {"Fn::GetAtt": [function, "Arn"]}}}],
                "ErrorAction": {
                    "CloudwatchLogs": Match.object_like({"LogGroupName": Match.any_value()})
                },
            }
        },
    )
    functions = fleet.find_resources("AWS::Lambda::Function")
    variables = functions[function.as_string()]["Properties"]["Environment"]["Variables"]
    # The artifact bucket's name, from the artifacts stack (the drift baselines are in it).
    assert variables.pop("BASELINES_BUCKET")["Fn::GetStackOutput"]["StackName"] == (
        "edge-ai-dev-artifacts"
    )
    assert variables == {
        "METRICS_NAMESPACE": "EdgeAi/dev",
        "THING_GROUPS": '{"EdgeAiDevCoreDevices":["default","fleet"]}',
    }


def test_only_the_rule_may_invoke_the_lambda(fleet: Template) -> None:
    rule = next(iter(fleet.find_resources("AWS::IoT::TopicRule")))
    fleet.has_resource_properties(
        "AWS::Lambda::Permission",
        {
            "Principal": "iot.amazonaws.com",
            "SourceArn": {"Fn::GetAtt": [rule, "Arn"]},
            "SourceAccount": {"Ref": "AWS::AccountId"},
        },
    )


def test_the_lambda_may_put_metrics_only_in_its_stage_namespace(fleet: Template) -> None:
    fleet.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": "cloudwatch:PutMetricData",
                                "Condition": {
                                    "StringEquals": {"cloudwatch:namespace": "EdgeAi/dev"}
                                },
                            }
                        )
                    ]
                )
            }
        },
    )


def test_the_lambda_asset_ships_device_contract_as_this_repo_has_it(dev: Any) -> None:
    staged: Path = dev.stacks["dev/Fleet"].metrics.handler.code_dir  # the asset's folder
    source = Path(device_contract.__file__).parent
    for name in ("messages.py", "fleet_metrics.py", "__init__.py"):
        assert (staged / "device_contract" / name).read_bytes() == (source / name).read_bytes()
    assert (staged / "metrics_handler.py").is_file() and (staged / "lambda_entry.py").is_file()


def alarms_by_name(template: Template) -> dict[str, dict[str, Any]]:
    return {
        a["Properties"]["AlarmName"]: a
        for a in template.find_resources("AWS::CloudWatch::Alarm").values()
    }


def test_each_ring_has_its_alarms_by_contract_name_and_missing_data_rule(fleet: Template) -> None:
    by_name = alarms_by_name(fleet)
    assert set(by_name) == {
        fm.alarm_name("edge-ai-dev", "default", "fleet", kind) for kind in fm.ALARM_KINDS
    }
    no_devices = by_name[fm.alarm_name("edge-ai-dev", "default", "fleet", fm.NO_DEVICES_ALARM)]
    props = no_devices["Properties"]
    assert props["TreatMissingData"] == "breaching"
    assert props["ComparisonOperator"] == "LessThanThreshold"
    assert props["MetricName"] == fm.DEVICES_REPORTING
    assert props["Namespace"] == "EdgeAi/dev"
    assert props["Dimensions"] == [
        {"Name": "Class", "Value": "default"},
        {"Name": "Ring", "Value": "fleet"},
    ]
    assert no_devices["Metadata"][fm.ALARM_METADATA] == {
        "stage": "dev",
        "class": "default",
        "ring": "fleet",
        "kind": fm.NO_DEVICES_ALARM,
    }
    failure = by_name[fm.alarm_name("edge-ai-dev", "default", "fleet", fm.FAILURE_RATE_ALARM)]
    metrics = failure["Properties"]["Metrics"]
    expressions = [m["Expression"] for m in metrics if "Expression" in m]
    assert expressions == ["IF((p + f) > 0, 100 * f / (p + f), 0)"]
    stats = {m["Id"]: m["MetricStat"]["Metric"] for m in metrics if "MetricStat" in m}
    assert {k: v["MetricName"] for k, v in stats.items()} == {"p": fm.PROCESSED, "f": fm.FAILED}
    assert all(v["Dimensions"] == props["Dimensions"] for v in stats.values())


def test_every_class_and_canary_ring_gets_alarms_and_the_lambda_knows_their_groups(
    three_classes: Any,
) -> None:
    """A class with a canary group has two rings; each ring's alarms watch its own dimensions,
    and the ingestion Lambda maps each thing group to its class and ring."""
    fleet = three_classes.template("dev/Fleet")
    by_name = alarms_by_name(fleet)
    rings = {
        (m["class"], m["ring"])
        for m in (a["Metadata"][fm.ALARM_METADATA] for a in by_name.values())
    }
    assert rings == {
        ("gateway", "fleet"),
        ("jetson", "fleet"),
        ("jetson", "canary"),
        ("onnx", "fleet"),
    }
    assert len(by_name) == 4 * len(fm.ALARM_KINDS)
    canary = by_name[fm.alarm_name("edge-ai-dev", "jetson", "canary", fm.NO_DEVICES_ALARM)]
    assert canary["Properties"]["Dimensions"] == fm.ring_dimensions("jetson", "canary")
    assert "EdgeAiDevJetsonsCanary" in canary["Properties"]["AlarmDescription"]
    (function,) = fleet.find_resources("AWS::Lambda::Function").values()
    groups = json.loads(function["Properties"]["Environment"]["Variables"]["THING_GROUPS"])
    assert groups == {
        "EdgeAiDevGateways": ["gateway", "fleet"],
        "EdgeAiDevJetsons": ["jetson", "fleet"],
        "EdgeAiDevJetsonsCanary": ["jetson", "canary"],
        "EdgeAiDevOnnx": ["onnx", "fleet"],
    }


def test_the_lambda_may_list_a_things_groups_and_nothing_more_of_iot(fleet: Template) -> None:
    def actions(statement: dict[str, Any]) -> list[str]:
        action = statement["Action"]
        return [action] if isinstance(action, str) else list(action)

    statements = [
        statement
        for policy in fleet.find_resources("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if any(a.startswith("iot:") for a in actions(statement))
    ]
    assert [actions(s) for s in statements] == [["iot:ListThingGroupsForThing"]]
    assert ":thing/*" in json.dumps(statements[0]["Resource"])


def test_thresholds_and_periods_come_from_the_configuration(tmp_path: Path) -> None:
    template = fleet_template(
        tmp_path,
        alarm_failure_rate_percent="12",
        alarm_latency_p95_ms="750",
        alarm_low_confidence_percent="40",
        alarm_period_minutes="10",
        alarm_evaluation_periods="2",
        alarm_drift_psi_hundredths="15",
        alarm_drift_period_minutes="120",
    )
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    by_name = {a["Properties"]["AlarmName"]: a["Properties"] for a in alarms.values()}
    threshold = {name.rsplit("default-fleet-", 1)[1]: p["Threshold"] for name, p in by_name.items()}
    assert threshold == {
        fm.FAILURE_RATE_ALARM: 12,
        fm.LATENCY_ALARM: 750,
        fm.NO_DEVICES_ALARM: 1,
        fm.LOW_CONFIDENCE_ALARM: 40,
        fm.DRIFT_ALARM: 0.15,
    }
    assert {p["EvaluationPeriods"] for p in by_name.values()} == {2}
    drift_alarm = by_name[fm.alarm_name("edge-ai-dev", "default", "fleet", fm.DRIFT_ALARM)]
    assert {q["MetricStat"]["Period"] for q in drift_alarm["Metrics"] if "MetricStat" in q} == {
        7200
    }
    latency = by_name[fm.alarm_name("edge-ai-dev", "default", "fleet", fm.LATENCY_ALARM)]
    assert latency["Period"] == 600 and latency["Statistic"] == "Maximum"


def test_a_prefix_of_several_levels_moves_the_thing_level(tmp_path: Path) -> None:
    template = fleet_template(tmp_path, publish_topic_prefix="plant-7/line-2")
    template.has_resource_properties(
        "AWS::IoT::TopicRule",
        {
            "TopicRulePayload": Match.object_like(
                {"Sql": "SELECT *, topic(3) AS topic_thing FROM 'plant-7/line-2/+/metrics'"}
            )
        },
    )


@pytest.mark.parametrize(
    "key, value", [("alarm_failure_rate_percent", "101"), ("alarm_period_minutes", "0")]
)
def test_an_out_of_range_threshold_is_refused_by_name(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=key):
        load_config({**CDK_JSON_CONTEXT, key: value}, "dev")


def test_the_dashboard_shows_each_asked_view(fleet: Template) -> None:
    dashboards = fleet.find_resources("AWS::CloudWatch::Dashboard")
    (dashboard,) = dashboards.values()
    assert dashboard["Properties"]["DashboardName"] == "edge-ai-dev-fleet"
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for title in (
        "Inputs per period, by class and ring",
        "Failure rate",
        "Latency p95",
        "Low-confidence rate",
        "Devices reporting",
        "Backlog",
        "windows dropped",
        "Free disk",
        "Captures per period",
        "Captures dropped on devices",
    ):
        assert title in body
    for metric in ("Captured", "CaptureUploaded", "CaptureDropped", "CaptureWaiting"):
        assert f'\\"{metric}\\"' in body, metric  # capture volume (issue 15)
    assert "SEARCH('{EdgeAi/dev,Model}" in body


@pytest.mark.parametrize(
    ("period", "count", "fits"),
    [
        ("1440", "7", True),  # 7 days exactly
        ("1440", "8", False),  # past 604,800 s
        ("120", "84", True),  # 2 h periods: the 7-day limit, not the 1-day one
        ("30", "48", True),  # 1 day exactly
        ("30", "49", False),  # under an hour's period: the 1-day limit
    ],
)
def test_the_alarm_window_cloudwatch_refuses_is_refused_at_synth(
    period: str, count: str, fits: bool
) -> None:
    """Found by the hostile review: each key was bounded alone, so 1440 min x 100 periods
    synthesized and would fail at deploy (PutMetricAlarm ``Period`` documentation, botocore:
    at most 604,800 s, or 86,400 s below an hour's period)."""
    context = {
        **CDK_JSON_CONTEXT,
        "alarm_period_minutes": period,
        "alarm_evaluation_periods": count,
    }
    if fits:
        assert load_config(context, "dev").fleet_alarms.evaluation_periods == int(count)
    else:
        with pytest.raises(
            ConfigError, match=r"alarm_evaluation_periods=.*CloudWatch allows at most"
        ):
            load_config(context, "dev")


def test_the_readmes_dashboard_picture_is_the_one_the_stack_defines(dev: Any) -> None:
    """docs/dashboard.svg is drawn from the synthesized dashboard (scripts/dashboard_picture.py):
    a widget added, moved or renamed without redrawing it fails here."""
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    import dashboard_picture

    drawn = dashboard_picture.render(dev.template_json("dev/Fleet"))
    assert "Captures per period" in drawn and "Alarms" in drawn
    assert (REPO_ROOT / "docs" / "dashboard.svg").read_text(encoding="utf-8") == drawn, (
        "redraw it: python app.py && python scripts/dashboard_picture.py"
    )


# ------------------------------------------------------------------ drift (device_contract.drift)
def evaluate(expression: str, values: dict[str, float]) -> float:
    """The alarm's metric-math expression on one period's sums, the way CloudWatch reads it
    (User Guide, "Using metric math"): ``IF(c, a, b)``, ``LOG`` the natural logarithm, and a
    division by zero drops the point (here: NaN, which the IF's false branch replaces)."""
    import ast

    import numpy as np

    tree = ast.parse(expression.replace("IF(", "_if(").replace("LOG(", "_log("), mode="eval")
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert names <= {"_if", "_log", *values}, names - {"_if", "_log", *values}
    scope = {k: np.float64(v) for k, v in values.items()}
    scope.update(_if=lambda c, a, b: a if c else b, _log=np.log)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(eval(compile(tree, "<alarm>", "eval"), {"__builtins__": {}}, scope))


def drift_alarm(template: Template, ring: str = "fleet") -> dict[str, Any]:
    name = fm.alarm_name("edge-ai-dev", "default", ring, fm.DRIFT_ALARM)
    return alarms_by_name(template)[name]["Properties"]  # type: ignore[no-any-return]


def test_the_drift_alarm_is_the_psi_of_the_rings_buckets_against_their_baselines(
    fleet: Template,
) -> None:
    """Eight metrics (observed and expected, per bucket) with the ring's Class and Ring, Sum over
    the drift period, and an expression that computes what drift.psi computes: within the 10
    metrics an alarm may reference (User Guide, "Limits that apply to alarms based on metric
    math expressions") and botocore's 2048-character ``MetricExpression``."""
    from device_contract import drift
    from device_contract.messages import confidence_buckets

    props = drift_alarm(fleet)
    assert props["Threshold"] == 0.25 and props["TreatMissingData"] == "notBreaching"
    stats = {q["Id"]: q["MetricStat"] for q in props["Metrics"] if "MetricStat" in q}
    (expression,) = [q["Expression"] for q in props["Metrics"] if "Expression" in q]
    assert len(stats) == 8 <= 10 and len(expression) <= 2048
    for index, bucket in enumerate(confidence_buckets()):
        for prefix, name in (("o", drift.OBSERVED), ("e", drift.EXPECTED)):
            stat = stats[f"{prefix}{index}"]
            assert stat["Metric"]["MetricName"] == name
            assert stat["Metric"]["Dimensions"] == [
                {"Name": "Bucket", "Value": bucket},
                {"Name": "Class", "Value": "default"},
                {"Name": "Ring", "Value": "fleet"},
            ] or sorted(stat["Metric"]["Dimensions"], key=lambda d: d["Name"]) == [
                {"Name": "Bucket", "Value": bucket},
                {"Name": "Class", "Value": "default"},
                {"Name": "Ring", "Value": "fleet"},
            ]
            assert (stat["Stat"], stat["Period"]) == ("Sum", 3600)
    baseline = [10.0, 10.0, 40.0, 140.0]  # 5%, 5%, 20%, 70% of 200 results
    cases = {
        "as trained": [10.0, 10.0, 40.0, 140.0],
        "a little off": [14.0, 12.0, 40.0, 134.0],
        "shifted to low confidence": [90.0, 40.0, 40.0, 30.0],
    }
    for what, observed in cases.items():
        values = {f"o{i}": v for i, v in enumerate(observed)}
        values.update({f"e{i}": v for i, v in enumerate(baseline)})
        psi = drift.psi(observed, baseline)
        assert evaluate(expression, values) == pytest.approx(psi), what
    assert drift.psi(cases["as trained"], baseline) == 0
    assert drift.psi(cases["a little off"], baseline) < 0.25  # no alarm
    assert drift.psi(cases["shifted to low confidence"], baseline) > 0.25  # alarm
    too_few = {f"o{i}": v / 10 for i, v in enumerate(cases["shifted to low confidence"])}
    too_few.update({f"e{i}": v / 10 for i, v in enumerate(baseline)})
    assert evaluate(expression, too_few) == 0  # 20 results < alarm_drift_min_results (200)
    empty = {f"{p}{i}": 0.0 for p in "oe" for i in range(4)}
    assert evaluate(expression, empty) == 0


def test_the_lambda_reads_the_drift_baselines_and_nothing_else_of_the_bucket(
    fleet: Template,
) -> None:
    """s3 actions of the ingestion Lambda's role: read only, on fleet/baselines/ only."""
    from device_contract import drift

    policies = fleet.find_resources("AWS::IAM::Policy")
    s3_statements = [
        statement
        for policy in policies.values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if any(str(a).startswith("s3:") for a in _as_list(statement["Action"]))
    ]
    assert s3_statements
    for statement in s3_statements:
        actions = _as_list(statement["Action"])
        # the second hostile review: grant_read gave s3:List* and s3:GetBucket* on the whole
        # bucket, so the Lambda could list every capture key
        assert set(actions) <= {"s3:GetObject", "s3:ListBucket"}, actions
        if "s3:ListBucket" in actions:
            assert actions == ["s3:ListBucket"] or actions == "s3:ListBucket"
            assert statement["Condition"] == {"StringLike": {"s3:prefix": f"{drift.PREFIX}*"}}
        else:
            for resource in _as_list(statement["Resource"]):
                assert resource["Fn::Join"][1][-1] == f"/{drift.PREFIX}*", resource


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
