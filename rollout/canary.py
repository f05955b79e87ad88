"""Is a device class's canary fit to promote? Its alarms and its numbers, read from AWS.

``python -m rollout.promote`` asks this before it writes ``cdk.json``. It refuses while:

* one of the canary ring's fleet alarms (``edge_constructs/fleet_metrics``, found in the cloud
  assembly by their ``EdgeAiAlarm`` metadata) is in ``ALARM``, or does not exist in the
  account and region (the fleet stack is not deployed there);
* the canary has run its current release for less than ``--min-canary-hours``: the time since
  the latest revision of the deployment to the canary thing group (Greengrass
  ``ListDeployments``, ``historyFilter`` ``LATEST_ONLY``: "only the latest revision of each
  deployment", botocore ``greengrassv2/2020-11-30``), or there is no such deployment;
* the canary ring processed fewer than ``--min-canary-images`` inputs since then (the
  ``Processed`` metric with its ``Class`` and ``Ring`` dimensions, ``GetMetricStatistics``).

The numbers start at that deployment's creation, rounded down to the minute by CloudWatch
(GetMetricStatistics ``StartTime`` documentation), and count windows by their start: a
window a device began under the previous release and published after the deployment counts.
Devices apply a deployment when they next connect, so the hours say how long the release has
been offered, not how long every canary device has run it; the images say how much it did.

Nothing here needs the CDK; it reads the templates as JSON and calls AWS through boto3.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from device_contract import fleet_metrics as fm
from rollout.assembly import templates as assembly_templates

DEFAULT_MIN_HOURS = 1.0
DEFAULT_MIN_IMAGES = 100
ALARM_TYPE = "AWS::CloudWatch::Alarm"
#: GetMetricStatistics returns at most 1,440 data points per call (its documentation); the
#: period is the shortest of these that keeps the window under that.
PERIODS = (60, 300, 3600)
MAX_DATAPOINTS = 1440
#: CloudWatch keeps 1-hour data points for 455 days, but the longest window at 3600 s under
#: 1,440 points is 60 days; a canary older than that is counted over its last 60 days.
MAX_WINDOW = datetime.timedelta(seconds=PERIODS[-1] * MAX_DATAPOINTS)


class CannotCheck(Exception):
    """The canary could not be checked (no credentials, no region, no alarms in the
    assembly); the message says why in words a user can act on."""


class CheckFailed(Exception):
    """AWS refused or failed a call of the check (access denied, throttled, no network)."""


@dataclass(frozen=True)
class Canary:
    """What the cloud assembly says about a class's canary ring."""

    stage: str
    device_class: str
    thing_group: str
    alarms: tuple[str, ...]


@dataclass
class Evidence:
    """What AWS said about the canary."""

    alarm_states: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> state, why
    deployed_at: datetime.datetime | None = None
    images: float = 0.0


def _templates(assembly: Path) -> Iterable[Mapping[str, Any]]:
    for path in assembly_templates(assembly):
        resources = json.loads(path.read_text()).get("Resources", {})
        if isinstance(resources, dict):
            yield from (r for r in resources.values() if isinstance(r, dict))


def thing_group_of(deployment: Mapping[str, Any]) -> str:
    """The thing group of a synthesized deployment (its ``TargetArn``, a ``Fn::Join`` whose
    last literal part ends ``thinggroup/<name>``, or a literal ARN)."""
    target = deployment.get("Properties", {}).get("TargetArn")
    parts = target.get("Fn::Join", ["", []])[1] if isinstance(target, dict) else [target]
    text = "".join(part for part in parts if isinstance(part, str))
    marker = "thinggroup/"
    if marker not in text:
        raise CannotCheck(f"the canary deployment's TargetArn names no thing group: {target!r}")
    return text.rsplit(marker, 1)[1]


def find_canary(
    assembly: Path, canary_deployment: Mapping[str, Any], stage: str, device_class: str
) -> Canary:
    """The canary ring's thing group (from its deployment) and its fleet alarms (from the
    fleet stack's template in the same assembly)."""
    alarms = []
    for resource in _templates(assembly):
        meta = (resource.get("Metadata") or {}).get(fm.ALARM_METADATA)
        if resource.get("Type") != ALARM_TYPE or not isinstance(meta, dict):
            continue
        if (meta.get("stage"), meta.get("class"), meta.get("ring")) == (
            stage,
            device_class,
            fm.CANARY_RING,
        ):
            alarms.append(str(resource["Properties"]["AlarmName"]))
    if not alarms:
        raise CannotCheck(
            f"{assembly} holds no fleet alarms of the {device_class} canary in stage {stage} "
            f"(the fleet stack: synthesize every stack of the stage, `cdk synth -c "
            f"stage={stage}`)"
        )
    return Canary(stage, device_class, thing_group_of(canary_deployment), tuple(sorted(alarms)))


def period_for(window: datetime.timedelta) -> int:
    """The shortest of :data:`PERIODS` that covers ``window`` in at most 1,440 points."""
    for period in PERIODS:
        if window.total_seconds() <= period * MAX_DATAPOINTS:
            return period
    return PERIODS[-1]


def gather(
    canary: Canary,
    *,
    cloudwatch: Any,
    greengrass: Any,
    thing_group_arn: str,
    now: datetime.datetime,
) -> Evidence:
    """Ask CloudWatch and Greengrass about ``canary``."""
    evidence = Evidence()
    pages = cloudwatch.get_paginator("describe_alarms").paginate(AlarmNames=list(canary.alarms))
    for page in pages:
        for alarm in page.get("MetricAlarms", []):
            evidence.alarm_states[alarm["AlarmName"]] = (
                alarm.get("StateValue", "?"),
                alarm.get("StateReason", ""),
            )
    created = [
        deployment["creationTimestamp"]
        for page in greengrass.get_paginator("list_deployments").paginate(
            targetArn=thing_group_arn, historyFilter="LATEST_ONLY"
        )
        for deployment in page.get("deployments", [])
        if deployment.get("creationTimestamp") is not None
    ]
    if not created:
        return evidence
    evidence.deployed_at = max(created)
    start = max(evidence.deployed_at, now - MAX_WINDOW)
    if start >= now:
        return evidence
    period = period_for(now - start)
    answer = cloudwatch.get_metric_statistics(
        Namespace=fm.namespace(canary.stage),
        MetricName=fm.PROCESSED,
        Dimensions=fm.ring_dimensions(canary.device_class, fm.CANARY_RING),
        StartTime=start,
        EndTime=now,
        Period=period,
        Statistics=["Sum"],
    )
    evidence.images = sum(float(point.get("Sum", 0.0)) for point in answer.get("Datapoints", []))
    return evidence


def refusals(
    canary: Canary,
    evidence: Evidence,
    *,
    now: datetime.datetime,
    min_hours: float,
    min_images: int,
) -> list[str]:
    """Why the canary may not be promoted (empty: it may)."""
    reasons = []
    for name in canary.alarms:
        state = evidence.alarm_states.get(name)
        if state is None:
            reasons.append(
                f"alarm {name} does not exist in this account and region: deploy the stage's "
                "fleet stack, or check --region"
            )
        elif state[0] == "ALARM":
            reasons.append(f"alarm {name} is in ALARM: {state[1]}")
    if evidence.deployed_at is None:
        reasons.append(
            f"no Greengrass deployment to the canary thing group {canary.thing_group} in this "
            "account and region"
        )
    else:
        hours = (now - evidence.deployed_at).total_seconds() / 3600
        if hours < min_hours:
            reasons.append(
                f"the canary release was deployed {hours:.1f} h ago "
                f"({evidence.deployed_at.isoformat()}); --min-canary-hours is {min_hours:g}"
            )
        if evidence.images < min_images:
            reasons.append(
                f"the canary ring processed {evidence.images:.0f} inputs since then; "
                f"--min-canary-images is {min_images}"
            )
    return reasons


def summary(canary: Canary, evidence: Evidence, now: datetime.datetime) -> list[str]:
    """What was checked, one line each, for the promote command's output."""
    lines = []
    for name in canary.alarms:
        state = evidence.alarm_states.get(name, ("missing", ""))[0]
        lines.append(f"  alarm {name}: {state}")
    if evidence.deployed_at is not None:
        hours = (now - evidence.deployed_at).total_seconds() / 3600
        lines.append(f"  canary release deployed {hours:.1f} h ago to {canary.thing_group}")
        lines.append(f"  canary inputs processed since: {evidence.images:.0f}")
    return lines


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def aws_clients(region: str | None) -> tuple[Any, Any, str]:
    """CloudWatch and Greengrass clients, and this account's AWS IoT ARN prefix
    (``arn:<partition>:iot:<region>:<account>``, AWS IoT ARN format); or
    :class:`CannotCheck` naming what is missing (boto3, credentials, a region)."""
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise CannotCheck("boto3 is not installed (scripts/setup.sh installs it)") from None
    try:
        session = boto3.Session(region_name=region)
        if session.region_name is None:
            # botocore configprovider: the region comes from AWS_DEFAULT_REGION or the config
            raise CannotCheck("no AWS region: pass --region or set AWS_DEFAULT_REGION")
        if session.get_credentials() is None:
            raise CannotCheck("no AWS credentials: run `aws configure` or set AWS_PROFILE")
        account = session.client("sts").get_caller_identity()["Account"]
        partition = session.get_partition_for_region(session.region_name)
    except (BotoCoreError, ClientError) as error:
        # a profile that does not exist (ProfileNotFound), no network, expired credentials
        raise CannotCheck(f"cannot call AWS: {error}") from None
    iot_arn = f"arn:{partition}:iot:{session.region_name}:{account}"
    return session.client("cloudwatch"), session.client("greengrassv2"), iot_arn


def check(
    canary: Canary,
    *,
    cloudwatch: Any,
    greengrass: Any,
    iot_arn: str,
    now: datetime.datetime,
    min_hours: float,
    min_images: int,
) -> tuple[list[str], list[str]]:
    """(what was checked, why it may not be promoted). ``iot_arn``: as :func:`aws_clients`
    gives it."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        evidence = gather(
            canary,
            cloudwatch=cloudwatch,
            greengrass=greengrass,
            thing_group_arn=f"{iot_arn}:thinggroup/{canary.thing_group}",
            now=now,
        )
    except (BotoCoreError, ClientError) as error:
        raise CheckFailed(str(error)) from None
    return summary(canary, evidence, now), refusals(
        canary, evidence, now=now, min_hours=min_hours, min_images=min_images
    )
