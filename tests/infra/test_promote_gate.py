"""``python -m rollout.promote`` checks the canary before it writes (issue 15): against the
synthesized three-class app (jetson has a canary ring) and botocore's Stubber, which checks
every call against the real service models (botocore ``cloudwatch/2010-08-01``,
``greengrassv2/2020-11-30``).

What AWS answers, as those models document it: ``DescribeAlarms`` gives each metric alarm's
``StateValue`` (OK, ALARM, INSUFFICIENT_DATA) and omits names that do not exist;
``ListDeployments`` with ``historyFilter`` ``LATEST_ONLY`` gives "only the latest revision of
each deployment" to the target; ``GetMetricStatistics`` returns at most 1,440 data points, and
data points "are not returned in chronological order" (so they are summed, never indexed).
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from device_contract import fleet_metrics as fm
from rollout import canary as gate
from rollout import promote
from tests.infra.conftest import CDK_JSON_CONTEXT, THREE_CLASSES

NOW = datetime.datetime(2026, 12, 4, 12, 0, tzinfo=datetime.timezone.utc)
ACCOUNT = "123456789012"
REGION = "eu-west-1"
CANARY_GROUP = THREE_CLASSES["jetson"]["canary_thing_group"]
CANARY_ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/{CANARY_GROUP}"
ALARMS = sorted(fm.alarm_name("edge-ai-dev", "jetson", "canary", k) for k in fm.ALARM_KINDS)


@pytest.fixture(scope="module")
def session() -> boto3.Session:
    return boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )


class Aws:
    """Stubbed CloudWatch and Greengrass clients, answering as a scenario says."""

    def __init__(self, session: boto3.Session) -> None:
        self.cloudwatch = session.client("cloudwatch")
        self.greengrass = session.client("greengrassv2")
        self.cw_stub = Stubber(self.cloudwatch)
        self.gg_stub = Stubber(self.greengrass)

    def alarms(self, states: dict[str, str]) -> None:
        self.cw_stub.add_response(
            "describe_alarms",
            {
                "MetricAlarms": [
                    {"AlarmName": name, "StateValue": state, "StateReason": f"{name} says {state}"}
                    for name, state in states.items()
                ]
            },
            {"AlarmNames": ALARMS},
        )

    def deployments(self, *created: datetime.datetime) -> None:
        self.gg_stub.add_response(
            "list_deployments",
            {
                "deployments": [
                    {"targetArn": CANARY_ARN, "deploymentId": f"d{n}", "creationTimestamp": c}
                    for n, c in enumerate(created)
                ]
            },
            {"targetArn": CANARY_ARN, "historyFilter": "LATEST_ONLY"},
        )

    def processed(self, sums: list[float], start: datetime.datetime, period: int) -> None:
        self.cw_stub.add_response(
            "get_metric_statistics",
            {
                "Label": fm.PROCESSED,
                "Datapoints": [
                    {"Timestamp": start + datetime.timedelta(minutes=n), "Sum": value}
                    for n, value in enumerate(sums)
                ],
            },
            {
                "Namespace": "EdgeAi/dev",
                "MetricName": fm.PROCESSED,
                "Dimensions": [
                    {"Name": "Class", "Value": "jetson"},
                    {"Name": "Ring", "Value": "canary"},
                ],
                "StartTime": start,
                "EndTime": NOW,
                "Period": period,
                "Statistics": ["Sum"],
            },
        )


@pytest.fixture
def aws(session: boto3.Session, monkeypatch: pytest.MonkeyPatch) -> Any:
    stubbed = Aws(session)
    monkeypatch.setattr(
        gate,
        "aws_clients",
        lambda region: (stubbed.cloudwatch, stubbed.greengrass, f"arn:aws:iot:{REGION}:{ACCOUNT}"),
    )
    monkeypatch.setattr(gate, "utc_now", lambda: NOW)
    with stubbed.cw_stub, stubbed.gg_stub:
        yield stubbed
        stubbed.cw_stub.assert_no_pending_responses()
        stubbed.gg_stub.assert_no_pending_responses()


def run(tmp_path: Path, assembly: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    cdk_json = tmp_path / "cdk.json"
    if not cdk_json.exists():
        context = {**CDK_JSON_CONTEXT, "device_classes": THREE_CLASSES}
        cdk_json.write_text(json.dumps({"app": "python3 app.py", "context": context}))
    args = ["--stage", "dev", "--class", "jetson", "--assembly", str(assembly)]
    code = promote.main([*args, "--cdk-json", str(cdk_json), *extra])
    return code, json.loads(cdk_json.read_text())


def promoted(document: dict[str, Any]) -> bool:
    return "jetson" in document["context"].get("releases", {}).get("dev", {})


def all_ok() -> dict[str, str]:
    return dict.fromkeys(ALARMS, "OK")


def test_a_healthy_canary_with_enough_hours_and_inputs_is_promoted(
    tmp_path: Path, three_classes: Any, aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed = NOW - datetime.timedelta(hours=3)
    aws.alarms(all_ok())
    # an older revision's creation time is ignored: the latest one starts the count
    aws.deployments(deployed - datetime.timedelta(days=2), deployed)
    aws.processed([60.0, 40.0, 25.0], deployed, 60)  # 3 h: one-minute points
    code, document = run(tmp_path, three_classes.assembly_dir)
    out = capsys.readouterr().out
    assert code == 0 and promoted(document)
    assert f"alarm {ALARMS[0]}: OK" in out
    assert "canary inputs processed since: 125" in out
    assert f"deployed 3.0 h ago to {CANARY_GROUP}" in out


@pytest.mark.parametrize(
    ("scenario", "reason"),
    [
        ("alarm", f"alarm {ALARMS[1]} is in ALARM: {ALARMS[1]} says ALARM"),
        ("missing", f"alarm {ALARMS[2]} does not exist in this account and region"),
        ("young", "deployed 0.5 h ago"),
        ("few", "processed 99 inputs since then; --min-canary-images is 100"),
        ("undeployed", f"no Greengrass deployment to the canary thing group {CANARY_GROUP}"),
    ],
)
def test_the_canary_refuses_and_nothing_is_written(
    tmp_path: Path,
    three_classes: Any,
    aws: Aws,
    capsys: pytest.CaptureFixture[str],
    scenario: str,
    reason: str,
) -> None:
    states = all_ok()
    hours = 3.0
    images = [500.0]
    if scenario == "alarm":
        states[ALARMS[1]] = "ALARM"
    if scenario == "missing":
        del states[ALARMS[2]]
    if scenario == "young":
        hours = 0.5
    if scenario == "few":
        images = [50.0, 49.0]
    deployed = NOW - datetime.timedelta(hours=hours)
    aws.alarms(states)
    if scenario == "undeployed":
        aws.deployments()
    else:
        aws.deployments(deployed)
        aws.processed(images, deployed, 60)
    code, document = run(tmp_path, three_classes.assembly_dir)
    err = capsys.readouterr().err
    assert code == 1 and not promoted(document)
    assert reason in err
    assert "--force promotes anyway" in err


def test_force_promotes_past_a_refusal_and_says_so(
    tmp_path: Path, three_classes: Any, aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    states = all_ok()
    states[ALARMS[0]] = "ALARM"
    deployed = NOW - datetime.timedelta(hours=5)
    aws.alarms(states)
    aws.deployments(deployed)
    aws.processed([1000.0], deployed, 60)
    code, document = run(tmp_path, three_classes.assembly_dir, "--force")
    err = capsys.readouterr().err
    assert code == 0 and promoted(document)
    assert "Promoting anyway (--force)" in err and f"alarm {ALARMS[0]} is in ALARM" in err


def test_the_thresholds_are_the_users(tmp_path: Path, three_classes: Any, aws: Aws) -> None:
    """0.5 h and 99 inputs pass when the user asks for less."""
    deployed = NOW - datetime.timedelta(hours=0.5)
    aws.alarms(all_ok())
    aws.deployments(deployed)
    aws.processed([99.0], deployed, 60)
    code, document = run(
        tmp_path,
        three_classes.assembly_dir,
        "--min-canary-hours",
        "0.25",
        "--min-canary-images",
        "50",
    )
    assert code == 0 and promoted(document)


def test_a_long_running_canary_is_counted_in_coarser_periods(
    tmp_path: Path, three_classes: Any, aws: Aws
) -> None:
    """Three days at one-minute points would be 4,320 points, past GetMetricStatistics's
    1,440: five-minute points then."""
    deployed = NOW - datetime.timedelta(days=3)
    aws.alarms(all_ok())
    aws.deployments(deployed)
    aws.processed([100.0, 100.0], deployed, 300)
    code, _ = run(tmp_path, three_classes.assembly_dir)
    assert code == 0


def test_access_denied_refuses_unless_forced(
    tmp_path: Path, three_classes: Any, aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.cw_stub.add_client_error("describe_alarms", "AccessDenied", "not allowed", 403)
    code, document = run(tmp_path, three_classes.assembly_dir)
    assert code == 1 and not promoted(document)
    assert "check failed" in capsys.readouterr().err


@pytest.fixture
def no_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


def test_without_credentials_it_says_it_could_not_check_and_promotes(
    tmp_path: Path, three_classes: Any, no_credentials: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, document = run(tmp_path, three_classes.assembly_dir)
    err = capsys.readouterr().err
    assert code == 0 and promoted(document)
    assert "The jetson canary was NOT checked: no AWS credentials" in err


def test_require_check_refuses_what_it_cannot_check(
    tmp_path: Path, three_classes: Any, no_credentials: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, document = run(tmp_path, three_classes.assembly_dir, "--require-check")
    assert code == 1 and not promoted(document)
    assert "Refused (--require-check)" in capsys.readouterr().err


def test_an_assembly_without_the_fleet_stack_is_not_checked_and_says_why(
    tmp_path: Path, three_classes: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """An assembly of the pipeline stack alone (``cdk synth dev/Pipeline``)."""
    partial = tmp_path / "partial"
    partial.mkdir()
    for path in three_classes.assembly_dir.rglob("*Pipeline*.template.json"):
        (partial / path.name).write_bytes(path.read_bytes())
    code, document = run(tmp_path, partial, "--require-check")
    assert code == 1 and not promoted(document)
    assert "holds no fleet alarms of the jetson canary in stage dev" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--min-canary-hours", "--min-canary-images"])
def test_a_negative_or_unreadable_threshold_is_refused_by_argparse(
    tmp_path: Path, three_classes: Any, flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for value in ("-1", "lots"):
        with pytest.raises(SystemExit):
            run(tmp_path, three_classes.assembly_dir, flag, value)
        assert flag in capsys.readouterr().err


@pytest.mark.parametrize(
    ("window", "period"),
    [
        (datetime.timedelta(hours=24), 60),
        (datetime.timedelta(hours=25), 300),
        (datetime.timedelta(days=5), 300),
        (datetime.timedelta(days=6), 3600),
    ],
)
def test_the_period_keeps_every_request_within_1440_points(
    window: datetime.timedelta, period: int
) -> None:
    assert gate.period_for(window) == period
    assert window.total_seconds() / period <= 1440


def test_without_a_region_it_names_where_to_set_one(
    tmp_path: Path,
    three_classes: Any,
    no_credentials: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    code, document = run(tmp_path, three_classes.assembly_dir)
    assert code == 0 and promoted(document)
    assert "no AWS region: pass --region or set AWS_DEFAULT_REGION" in capsys.readouterr().err


def test_a_profile_that_does_not_exist_is_named_not_a_traceback(
    tmp_path: Path,
    three_classes: Any,
    no_credentials: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """botocore raises ProfileNotFound lazily, from the first credential lookup."""
    monkeypatch.setenv("AWS_PROFILE", "nope")
    code, document = run(tmp_path, three_classes.assembly_dir, "--require-check")
    assert code == 1 and not promoted(document)
    assert "cannot call AWS: The config profile (nope) could not be found" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_threshold_that_is_not_finite_is_refused(
    tmp_path: Path, three_classes: Any, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the hostile review: ``nan`` passed and turned the hours check off (every
    comparison with it is false)."""
    with pytest.raises(SystemExit):
        run(tmp_path, three_classes.assembly_dir, f"--min-canary-hours={value}")
    assert "is not a finite number" in capsys.readouterr().err


def test_force_says_it_overrides_require_check(
    tmp_path: Path, three_classes: Any, no_credentials: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, document = run(tmp_path, three_classes.assembly_dir, "--require-check", "--force")
    assert code == 0 and promoted(document)
    assert "--force overrides --require-check" in capsys.readouterr().err


def test_a_fraction_of_an_image_is_named_as_such(
    tmp_path: Path, three_classes: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        run(tmp_path, three_classes.assembly_dir, "--min-canary-images", "1.5")
    assert "'1.5' is not a whole number" in capsys.readouterr().err
