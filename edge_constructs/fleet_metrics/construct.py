"""The fleet's metrics in CloudWatch: an IoT rule on every device's metrics topic, a Lambda that
turns each window into CloudWatch metrics (``runtime/metrics_logic.py``), a dashboard and the
stage's alarms. Metric and alarm names: ``device_contract/fleet_metrics.py``.

Why a Lambda rather than the rule's own ``cloudwatchMetric`` action: that action puts one
metric per action from substitution templates (AWS IoT developer guide, "CloudWatch metrics"
rule action), so 20 datums a window would be 20 actions, with no validation of the payload and
no check of the window's age against what PutMetricData accepts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

import device_contract
from device_contract import drift, topics
from device_contract import fleet_metrics as fm
from device_contract.messages import confidence_buckets
from edge_constructs.lambda_function import PythonFunction
from edge_constructs.nag import acknowledge_wildcards, resource_ending
from edge_constructs.props import FleetAlarmsConfig

RUNTIME_DIR = Path(__file__).parent / "runtime"
NAMESPACE_ENV = "METRICS_NAMESPACE"  # metrics_handler.NAMESPACE_ENV (a test checks they agree)
GROUPS_ENV = "THING_GROUPS"  # metrics_handler.GROUPS_ENV (same test)
BASELINES_BUCKET_ENV = "BASELINES_BUCKET"  # metrics_handler.BASELINES_BUCKET_ENV (same test)


class Ring(NamedTuple):
    """One release ring of one device class: the thing group its devices are in."""

    device_class: str
    ring: str  # fleet_metrics.FLEET_RING or CANARY_RING
    thing_group: str


# AWS IoT SQL version 2016-03-23, the current one (AWS IoT developer guide, "SQL versions").
SQL_VERSION = "2016-03-23"


def metrics_sql(topic_prefix: str) -> str:
    """The rule's statement: the whole message, plus the thing name taken from the topic."""
    level = fm.thing_topic_level(topic_prefix)
    topic_filter = topics.metrics_subscription_filter(topic_prefix)
    # Not injectable: publish_topic_prefix is letters, digits, _ and - in /-separated levels
    # (app_config/components.py parse_topic_prefix), so it cannot close the quote.
    return f"SELECT *, topic({level}) AS topic_thing FROM '{topic_filter}'"  # noqa: S608


class FleetMetrics(Construct):
    """Ingestion, dashboard and alarms of one stage's fleet metrics.

    Props:
        name_prefix: ``<prefix>-<stage>``; names the dashboard and the alarms.
        stage: the stage; the metrics' namespace is ``EdgeAi/<stage>``.
        topic_prefix: the devices' topic prefix (``publish_topic_prefix``).
        rings: every class's rings with their thing groups; each gets its alarms and its lines
            on the dashboard.
        alarms: the alarms' thresholds and periods.
        bucket: the artifact bucket; the Lambda reads the drift baselines in it
            (``device_contract.drift``: ``fleet/baselines/``, nothing else).
        log_retention: retention of the Lambda's and the rule's error logs.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name_prefix: str,
        stage: str,
        topic_prefix: str,
        rings: Sequence[Ring],
        alarms: FleetAlarmsConfig,
        bucket: s3.IBucket,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, id_)
        self.namespace = fm.namespace(stage)
        self.name_prefix = name_prefix
        self.stage = stage
        self.config = alarms
        self.rings = tuple(rings)
        groups = {r.thing_group: [r.device_class, r.ring] for r in self.rings}
        self.handler = PythonFunction(
            self,
            "Ingest",
            code_dir=RUNTIME_DIR,
            handler="metrics_handler.on_message",
            timeout=Duration.seconds(30),
            log_retention=log_retention,
            description="Fleet metrics: one device's Metrics window (IoT rule) into CloudWatch",
            packages=[Path(device_contract.__file__).parent],
            environment={
                NAMESPACE_ENV: self.namespace,
                GROUPS_ENV: json.dumps(groups, sort_keys=True, separators=(",", ":")),
                BASELINES_BUCKET_ENV: bucket.bucket_name,
            },
        )
        # The drift baselines, and nothing else of the bucket: GetObject under the prefix, and
        # ListBucket limited to it by the s3:prefix condition key (Service Authorization
        # Reference, Amazon S3), so a model with no baseline answers NoSuchKey, not
        # AccessDenied (botocore s3 GetObject documentation).
        self.handler.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadDriftBaselines",
                actions=["s3:GetObject"],
                resources=[bucket.arn_for_objects(f"{drift.PREFIX}*")],
            )
        )
        self.handler.role.add_to_policy(
            iam.PolicyStatement(
                sid="ListDriftBaselines",
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": f"{drift.PREFIX}*"}},
            )
        )
        # A window counts for the class and ring of its thing's group: ListThingGroupsForThing
        # on the thing (Service Authorization Reference, AWS IoT: resource type "thing").
        stack = Stack.of(self)
        self.handler.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadThingGroups",
                actions=["iot:ListThingGroupsForThing"],
                resources=[stack.format_arn(service="iot", resource="thing", resource_name="*")],
            )
        )
        # PutMetricData has no resource type; the cloudwatch:namespace condition key narrows
        # it (Service Authorization Reference, "Actions, resources, and condition keys for
        # Amazon CloudWatch").
        self.handler.role.add_to_policy(
            iam.PolicyStatement(
                sid="PutFleetMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": self.namespace}},
            )
        )
        acknowledge_wildcards(
            self.handler.role,
            "cloudwatch:PutMetricData has no resource type; the statement is limited to this "
            "stage's namespace by the cloudwatch:namespace condition key.",
            [
                "Resource::*",
                "Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:thing/*",
                resource_ending(f"/{drift.PREFIX}*"),
            ],
        )

        # The rule's error action: failures to invoke the function land here (AWS IoT
        # developer guide, "Error handling (error action)").
        self.errors = logs.LogGroup(
            self, "RuleErrors", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        error_role = iam.Role(
            self, "RuleErrorRole", assumed_by=iam.ServicePrincipal("iot.amazonaws.com")
        )
        # The CloudWatch Logs rule action needs logs:CreateLogStream, DescribeLogStreams and
        # PutLogEvents (AWS IoT developer guide, "CloudWatch Logs" rule action, Requirements).
        error_role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                resources=[self.errors.log_group_arn],
            )
        )
        self.rule = iot.CfnTopicRule(
            self,
            "Rule",
            topic_rule_payload=iot.CfnTopicRule.TopicRulePayloadProperty(
                sql=metrics_sql(topic_prefix),
                aws_iot_sql_version=SQL_VERSION,
                rule_disabled=False,
                description=f"Fleet metrics of {stage} into CloudWatch ({self.namespace})",
                actions=[
                    iot.CfnTopicRule.ActionProperty(
                        lambda_=iot.CfnTopicRule.LambdaActionProperty(
                            function_arn=self.handler.function.function_arn
                        )
                    )
                ],
                error_action=iot.CfnTopicRule.ActionProperty(
                    cloudwatch_logs=iot.CfnTopicRule.CloudwatchLogsActionProperty(
                        log_group_name=self.errors.log_group_name,
                        role_arn=error_role.role_arn,
                    )
                ),
            ),
        )
        self.rule.node.add_dependency(error_role)
        # IoT invokes the function as iot.amazonaws.com; only this rule may (Lambda developer
        # guide, "Using AWS Lambda with AWS IoT": add-permission with --source-arn).
        self.handler.function.add_permission(
            "InvokedByRule",
            principal=iam.ServicePrincipal("iot.amazonaws.com"),
            source_arn=self.rule.attr_arn,
            source_account=Aws.ACCOUNT_ID,
        )

        self.alarms = self._alarms()
        self.dashboard = self._dashboard()

    # ------------------------------------------------------------------------- metrics
    def metric(self, name: str, statistic: str = "Sum", ring: Ring | None = None) -> cw.Metric:
        """A stage-wide metric, or one class ring's, over the alarms' period."""
        dimensions = None
        if ring is not None:
            dimensions = {
                fm.CLASS_DIMENSION: ring.device_class,
                fm.RING_DIMENSION: ring.ring,
            }
        return cw.Metric(
            namespace=self.namespace,
            metric_name=name,
            statistic=statistic,
            period=Duration.minutes(self.config.period_minutes),
            dimensions_map=dimensions,
        )

    def line(self, name: str, statistic: str = "Sum", ring: Ring | None = None) -> cw.Metric:
        """:meth:`metric`, labelled with its class and ring for a dashboard graph (an alarm on a
        labelled metric renders as a metric-math alarm; the alarms use :meth:`metric`)."""
        metric = self.metric(name, statistic, ring)
        return metric.with_(label=_label(name, ring))

    def failure_rate(self, ring: Ring | None = None, ids: str = "") -> cw.MathExpression:
        """Failed / (Processed + Failed), in percent (0 with no traffic)."""
        return cw.MathExpression(
            expression=f"IF((p{ids} + f{ids}) > 0, 100 * f{ids} / (p{ids} + f{ids}), 0)",
            using_metrics={
                f"p{ids}": self.metric(fm.PROCESSED, ring=ring),
                f"f{ids}": self.metric(fm.FAILED, ring=ring),
            },
            label=_label("failure rate (%)", ring),
            period=Duration.minutes(self.config.period_minutes),
        )

    def low_confidence_rate(self, ring: Ring | None = None, ids: str = "") -> cw.MathExpression:
        """Results in the lowest confidence bucket / results, in percent (0 with none)."""
        return cw.MathExpression(
            expression=f"IF(p{ids} > 0, 100 * l{ids} / p{ids}, 0)",
            using_metrics={
                f"p{ids}": self.metric(fm.PROCESSED, ring=ring),
                f"l{ids}": self.metric(fm.LOW_CONFIDENCE, ring=ring),
            },
            label=_label(f"low-confidence rate (%, top-1 in {fm.low_confidence_bucket()})", ring),
            period=Duration.minutes(self.config.period_minutes),
        )

    def bucket_metric(
        self, ring: Ring, bucket: str, name: str = drift.OBSERVED, label: str | None = None
    ) -> cw.Metric:
        """One ring's ``DriftObserved`` (or ``DriftExpected``) for one confidence bucket: the
        Sum over the drift period."""
        return cw.Metric(
            namespace=self.namespace,
            metric_name=name,
            statistic="Sum",
            period=Duration.minutes(self.config.drift_period_minutes),
            dimensions_map={
                d["Name"]: d["Value"]
                for d in drift.bucket_dimensions(ring.device_class, ring.ring, bucket)
            },
            label=label,
        )

    def drift_psi(self, ring: Ring, ids: str = "") -> cw.MathExpression:
        """The PSI of one ring's confidence buckets against what its models' baselines expected,
        over the drift period (``device_contract.drift.psi_expression``)."""
        buckets = confidence_buckets()
        observed, expected = drift.metric_ids(len(buckets), ids)
        using: dict[str, cw.IMetric] = {}
        for bucket, o_id, e_id in zip(buckets, observed, expected):
            using[o_id] = self.bucket_metric(ring, bucket, drift.OBSERVED)
            using[e_id] = self.bucket_metric(ring, bucket, drift.EXPECTED)
        return cw.MathExpression(
            expression=drift.psi_expression(len(buckets), self.config.drift_min_results, ids),
            using_metrics=using,
            label=_label("drift (PSI vs training)", ring),
            period=Duration.minutes(self.config.drift_period_minutes),
        )

    def _per_model(self, name: str, statistic: str) -> cw.MathExpression:
        """One line per model id: a search expression over the Model dimension."""
        period = self.config.period_minutes * 60
        return cw.MathExpression(
            expression=(
                f"SEARCH('{{{self.namespace},{fm.MODEL_DIMENSION}}} "
                f"MetricName=\"{name}\"', '{statistic}', {period})"
            ),
            using_metrics={},
            label=f"{name} by model",
            period=Duration.minutes(self.config.period_minutes),
        )

    # -------------------------------------------------------------------------- alarms
    def _alarms(self) -> dict[tuple[str, str, str], cw.Alarm]:
        """(class, ring, kind) -> alarm: every kind for every class's every ring."""
        alarms: dict[tuple[str, str, str], cw.Alarm] = {}
        for ring in self.rings:
            for kind in fm.ALARM_KINDS:
                alarms[(ring.device_class, ring.ring, kind)] = self._alarm(ring, kind)
        return alarms

    def _alarm(self, ring: Ring, kind: str) -> cw.Alarm:
        config = self.config
        evaluation = config.evaluation_periods
        specs: dict[str, tuple[cw.IMetric, float, cw.ComparisonOperator, cw.TreatMissingData, str]]
        specs = {
            fm.FAILURE_RATE_ALARM: (
                self.failure_rate(ring),
                config.failure_rate_percent,
                cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                cw.TreatMissingData.NOT_BREACHING,
                f"more than {config.failure_rate_percent}% of the inputs failed",
            ),
            fm.LATENCY_ALARM: (
                self.metric(fm.LATENCY_P95, "Maximum", ring),
                config.latency_p95_ms,
                cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                cw.TreatMissingData.NOT_BREACHING,
                f"a device's p95 latency passed {config.latency_p95_ms} ms",
            ),
            fm.NO_DEVICES_ALARM: (
                self.metric(fm.DEVICES_REPORTING, ring=ring),
                1,
                cw.ComparisonOperator.LESS_THAN_THRESHOLD,
                # No data at all is the case this alarm exists for.
                cw.TreatMissingData.BREACHING,
                "no device reported metrics",
            ),
            fm.LOW_CONFIDENCE_ALARM: (
                self.low_confidence_rate(ring),
                config.low_confidence_percent,
                cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                cw.TreatMissingData.NOT_BREACHING,
                f"more than {config.low_confidence_percent}% of results had top-1 confidence "
                f"in {fm.low_confidence_bucket()} (drift, or inputs the model finds hard)",
            ),
        }
        specs[fm.DRIFT_ALARM] = (
            self.drift_psi(ring),
            config.drift_psi,
            cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            # No baseline (a brought model) or no results: nothing to compare.
            cw.TreatMissingData.NOT_BREACHING,
            f"the top-1 confidence buckets moved from the training baseline's (PSI over "
            f"{config.drift_psi:g}, with at least {config.drift_min_results} results)",
        )
        period_minutes = (
            config.drift_period_minutes if kind == fm.DRIFT_ALARM else config.period_minutes
        )
        metric, threshold, operator, missing, what = specs[kind]
        alarm = cw.Alarm(
            self,
            "Alarm"
            + ring.device_class.title()
            + ring.ring.title()
            + "".join(part.title() for part in kind.split("-")),
            alarm_name=fm.alarm_name(self.name_prefix, ring.device_class, ring.ring, kind),
            alarm_description=f"{ring.device_class} {ring.ring} ring (thing group "
            f"{ring.thing_group}): {what}, {evaluation} periods of "
            f"{period_minutes} min in a row (namespace {self.namespace})",
            metric=metric,
            threshold=threshold,
            comparison_operator=operator,
            evaluation_periods=evaluation,
            treat_missing_data=missing,
        )
        alarm.node.default_child.cfn_options.metadata = {  # type: ignore[union-attr]
            fm.ALARM_METADATA: {
                "stage": self.stage,
                "class": ring.device_class,
                "ring": ring.ring,
                "kind": kind,
            }
        }
        return alarm

    # ------------------------------------------------------------------------ dashboard
    def _dashboard(self) -> cw.Dashboard:
        width = 12
        config = self.config
        rings = self.rings

        def graph(
            title: str, lines: Sequence[cw.IMetric], alarm_at: float | None = None
        ) -> cw.GraphWidget:
            annotations = [_line(alarm_at, "alarm")] if alarm_at is not None else None
            return cw.GraphWidget(
                title=title, left=list(lines), left_annotations=annotations, width=width
            )

        widgets: list[list[cw.IWidget]] = [
            [
                graph(
                    "Inputs per period, by class and ring",
                    [self.line(fm.PROCESSED, ring=r) for r in rings],
                ),
                graph("Inputs per period, by model", [self._per_model(fm.PROCESSED, "Sum")]),
            ],
            [
                graph(
                    "Failure rate (%)",
                    [self.failure_rate(r, f"_{n}") for n, r in enumerate(rings)],
                    config.failure_rate_percent,
                ),
                graph(
                    "Latency p95 (ms, worst device)",
                    [self.line(fm.LATENCY_P95, "Maximum", r) for r in rings],
                    config.latency_p95_ms,
                ),
            ],
            [
                graph(
                    "Low-confidence rate (%)",
                    [self.low_confidence_rate(r, f"_{n}") for n, r in enumerate(rings)],
                    config.low_confidence_percent,
                ),
                graph(
                    "Devices reporting (device-windows per period)",
                    [self.line(fm.DEVICES_REPORTING, ring=r) for r in rings],
                ),
            ],
            [
                graph(
                    "Backlog: files waiting (max of devices)",
                    [self.line(fm.BACKLOG_FILES, "Maximum", r) for r in rings],
                ),
                graph(
                    "Backlog: oldest waiting input (s, max of devices)",
                    [self.line(fm.BACKLOG_OLDEST_SECONDS, "Maximum", r) for r in rings],
                ),
            ],
            [
                graph(
                    "Metrics windows dropped on devices (offline too long)",
                    [self.line(fm.DROPPED_WINDOWS, ring=r) for r in rings],
                ),
                graph(
                    "Free disk (bytes, least of devices)",
                    [self.line(fm.DISK_FREE_BYTES, "Minimum", r) for r in rings],
                ),
            ],
            [
                graph(
                    "Captures per period (low confidence, failed, sampled)",
                    [self.line(fm.CAPTURED, ring=r) for r in rings]
                    + [self.line(fm.CAPTURE_UPLOADED, ring=r) for r in rings],
                ),
                graph(
                    "Captures dropped on devices (CaptureMaxMB), waiting (max of devices)",
                    [self.line(fm.CAPTURE_DROPPED, ring=r) for r in rings]
                    + [self.line(fm.CAPTURE_WAITING, "Maximum", r) for r in rings],
                ),
            ],
            [
                graph(
                    f"Drift: PSI of top-1 confidence vs training baseline "
                    f"({config.drift_period_minutes} min)",
                    [self.drift_psi(r, f"_{n}") for n, r in enumerate(rings)],
                    config.drift_psi,
                ),
                graph(
                    "Results by top-1 confidence bucket (observed)",
                    [
                        self.bucket_metric(r, b, label=f"{r.device_class} {r.ring} {b}")
                        for r in rings
                        for b in confidence_buckets()
                    ],
                ),
            ],
            [
                cw.AlarmStatusWidget(
                    title="Alarms", alarms=list(self.alarms.values()), width=2 * width
                )
            ],
        ]
        return cw.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"{self.name_prefix}-fleet",
            widgets=widgets,
        )


def _label(what: str, ring: Ring | None) -> str:
    return f"{ring.device_class} {ring.ring}: {what}" if ring is not None else what


def _line(value: float, label: str) -> cw.HorizontalAnnotation:
    return cw.HorizontalAnnotation(value=value, label=label)
