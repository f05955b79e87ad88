"""Construct checks at synth, each construct alone in a bare Stack (no app, no other stacks)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3

from app_config import ComponentPin, DeploymentConfig, TrainingConfig
from edge_constructs.greengrass.construct import ROLLOUT_PER_MINUTE, ThingGroupDeployment
from edge_constructs.training_job.construct import TrainingJob
from tests.infra.conftest import REPO_ROOT

POLICY = DeploymentConfig(
    timeout_minutes=60,
    rollout_max_per_minute=50,
    abort_failure_threshold_percent=10,
    abort_min_executed_things=5,
    component_update_policy="NOTIFY_COMPONENTS",
    component_update_timeout_seconds=60,
)
TRAINING = TrainingConfig(
    instance_type="ml.m5.xlarge",
    instance_count=1,
    volume_gb=30,
    max_runtime_seconds=3600,
    use_spot=False,
    max_wait_seconds=3600,
    image_uri="",
    data_uri="",
    validation_uri="",
    hyperparameters={"epochs": "1"},
    run_id="1",
)


def bare_stack(tmp_path: Path) -> cdk.Stack:
    return cdk.Stack(cdk.App(outdir=str(tmp_path)), "Bare")


def deploy(stack: cdk.Stack, policy: DeploymentConfig) -> ThingGroupDeployment:
    return ThingGroupDeployment(
        stack,
        "Deployment",
        name="d",
        target_arn="arn:aws:iot:eu-west-1:123456789012:thinggroup/G",
        components={"x.Model": ComponentPin("1.0.0")},
        policy=policy,
        ring={"stage": "dev", "class": "default", "ring": "all"},
    )


@pytest.mark.parametrize("rate", [0, ROLLOUT_PER_MINUTE[1] + 1])
def test_rollout_rate_outside_the_schema_fails_at_synth(tmp_path, rate) -> None:
    policy = dataclasses.replace(POLICY, rollout_max_per_minute=rate)
    with pytest.raises(ValueError, match=r"rollout_max_per_minute=.*1-1000"):
        deploy(bare_stack(tmp_path), policy)


def test_rollout_rate_at_the_schema_bounds_synthesizes(tmp_path) -> None:
    for rate in ROLLOUT_PER_MINUTE:
        stack = bare_stack(tmp_path / str(rate))
        deploy(stack, dataclasses.replace(POLICY, rollout_max_per_minute=rate))
        rollout = cdk.assertions.Template.from_stack(stack).find_resources(
            "Custom::GreengrassDeployment"
        )
        (deployment,) = rollout.values()
        config = deployment["Properties"]["IotJobConfiguration"]["JobExecutionsRolloutConfig"]
        assert config == {"MaximumPerMinute": rate}


def test_the_rollout_bounds_are_the_cloudformation_schemas() -> None:
    """The bounds come from AWS::GreengrassV2::Deployment's schema, as cfn-lint ships it."""
    import json

    import cfnlint

    schemas = Path(cfnlint.__file__).parent / "data" / "schemas" / "resources"
    for path in schemas.glob("*.json"):
        text = path.read_text()
        if '"IoTJobExecutionsRolloutConfig"' in text and "GreengrassV2" in text:
            rollout = json.loads(text)["definitions"]["IoTJobExecutionsRolloutConfig"]
            limits = rollout["properties"]["MaximumPerMinute"]
            assert (limits["minimum"], limits["maximum"]) == ROLLOUT_PER_MINUTE
            return
    pytest.fail("no AWS::GreengrassV2::Deployment schema found in cfn-lint's data")


@pytest.mark.parametrize("run_id", ["", "has space", "x" * 33, "under_score"])
def test_a_bad_run_id_fails_at_synth(tmp_path, run_id) -> None:
    stack = bare_stack(tmp_path)
    with pytest.raises(ValueError, match="run_id"):
        TrainingJob(
            stack,
            "Training",
            name_prefix="edge-ai-dev",
            bucket=s3.Bucket.from_bucket_name(stack, "B", "artifact-bucket"),
            training=dataclasses.replace(TRAINING, run_id=run_id),
            architecture="vgg16",
            input_shape=(1, 3, 224, 224),
            framework_version="1.8",
            source_dir=REPO_ROOT / "training_src",
            log_retention=logs.RetentionDays.ONE_WEEK,
        )
