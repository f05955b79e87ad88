"""Limits written once (edge_constructs/limits.py) and read by both the configuration and the
stacks: the log retentions and the training job's wait."""

from __future__ import annotations

import re

import aws_cdk as cdk
import botocore.session
import pytest
from aws_cdk import aws_logs as logs
from aws_cdk.assertions import Template

from app_config import ConfigError, build_config, keys, merge_context
from edge_constructs.limits import (
    LOG_RETENTION_DAYS,
    LOG_RETENTION_NAMES,
    MAX_TRAINING_WAIT_SECONDS,
    MAX_WAIT_CONDITION_SECONDS,
    SIGNAL_MARGIN_SECONDS,
)
from stacks.pipeline_stack import retention_days


def _cloudwatch_days() -> set[int]:
    """CloudWatch Logs' allowed retentions, from botocore's service model (shape ``Days``:
    "Possible values are: 1, 3, 5, ...")."""
    documentation = botocore.session.get_session().get_service_model("logs").shape_for("Days")
    text = documentation.documentation.split("Possible values")[1]
    return {int(d) for d in re.findall(r"\b\d+\b", text)}


def test_each_retention_the_stacks_offer_is_cloudwatchs_and_cdks_own() -> None:
    """The stacks turn each configured retention into the CDK enum member written beside it;
    the synthesized log group carries exactly that many days."""
    assert set(LOG_RETENTION_DAYS) <= _cloudwatch_days()
    stack = cdk.Stack(cdk.App(), "Logs")
    for days in LOG_RETENTION_DAYS:
        logs.LogGroup(stack, f"Group{days}", retention=retention_days(days))
    groups = Template.from_stack(stack).find_resources("AWS::Logs::LogGroup")
    assert sorted(g["Properties"]["RetentionInDays"] for g in groups.values()) == sorted(
        LOG_RETENTION_NAMES
    )


@pytest.mark.parametrize("days", LOG_RETENTION_DAYS)
def test_the_configuration_accepts_each_offered_retention(days: int) -> None:
    config = build_config("dev", merge_context({}, {}, {"log_retention_days": str(days)}))
    assert config.log_retention_days == days


@pytest.mark.parametrize("days", [2, 10, 1096])
def test_the_configuration_refuses_a_retention_the_stacks_do_not_offer(days: int) -> None:
    with pytest.raises(ConfigError, match="CloudWatch Logs allows 1, 3, 5"):
        build_config("dev", merge_context({}, {}, {"log_retention_days": str(days)}))


def test_training_may_wait_as_long_as_the_wait_condition_minus_the_signal_margin() -> None:
    assert MAX_TRAINING_WAIT_SECONDS + SIGNAL_MARGIN_SECONDS == MAX_WAIT_CONDITION_SECONDS
    for name in ("training_max_runtime_seconds", "training_max_wait_seconds"):
        assert keys.key(name).maximum == MAX_TRAINING_WAIT_SECONDS
    at_limit = {
        "training_max_runtime_seconds": str(MAX_TRAINING_WAIT_SECONDS),
        "training_max_wait_seconds": str(MAX_TRAINING_WAIT_SECONDS),
    }
    assert build_config("dev", merge_context({}, {}, at_limit)).training.max_wait_seconds == (
        MAX_TRAINING_WAIT_SECONDS
    )
    with pytest.raises(ConfigError, match=f"at most {MAX_TRAINING_WAIT_SECONDS}"):
        build_config(
            "dev",
            merge_context(
                {}, {}, {"training_max_runtime_seconds": str(MAX_TRAINING_WAIT_SECONDS + 1)}
            ),
        )
