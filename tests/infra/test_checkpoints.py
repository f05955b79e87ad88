"""Spot training: every training job has its own checkpoint prefix.

SageMaker copies whatever is under ``CheckpointConfig.S3Uri`` into a new job's local checkpoint
folder before training starts (https://docs.aws.amazon.com/sagemaker/latest/dg/
model-checkpoints.html), and a training script that resumes from its last checkpoint (ours
does) would then continue another job's run. The job name is a digest of all the job's inputs,
so a prefix named after it changes exactly when the inputs do.

The stacks are deployed into device_sim's simulated account (``tests.infra.conftest.deploy``)
and the training role's requests are decided by ``device_sim.iam``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from device_sim.assembly import Cloud
from device_sim.iam import Request, evaluate
from tests.infra.conftest import deploy, synthesize


def _training(cloud: Cloud) -> dict[str, Any]:
    """The resolved properties of the dev pipeline's Custom::TrainingJob."""
    (training,) = [
        resource
        for stack in cloud.stacks.values()
        for resource in stack.resources.values()
        if resource.type == "Custom::TrainingJob"
    ]
    return training.properties


@pytest.fixture(scope="module")
def retrained(tmp_path_factory) -> Cloud:
    """The dev stage with other hyperparameters: a new job, same run_id."""
    synthesized = synthesize(
        tmp_path_factory.mktemp("retrain"), hyperparameters=json.dumps({"epochs": 7})
    )
    return deploy(synthesized, "dev", tmp_path_factory.mktemp("retrain-cloud"))


def test_checkpoint_prefix_is_the_jobs_own(dev_cloud, retrained) -> None:
    first, second = _training(dev_cloud), _training(retrained)
    assert first["JobName"] != second["JobName"]
    bucket = dev_cloud.output("Artifacts", "ArtifactBucketName")
    for props in (first, second):
        assert props["CheckpointS3Uri"] == f"s3://{bucket}/checkpoints/{props['JobName']}/"
    assert first["CheckpointS3Uri"] != second["CheckpointS3Uri"]


def test_training_role_reaches_only_its_own_checkpoints(dev_cloud) -> None:
    props = _training(dev_cloud)
    (role,) = [r for r in dev_cloud.roles.values() if r.arn == props["RoleArn"]]
    policies = dev_cloud.role_policies(role.name)
    bucket = dev_cloud.output("Artifacts", "ArtifactBucketName")
    objects = f"arn:{dev_cloud.env.partition}:s3:::{bucket}/checkpoints"
    own = f"{objects}/{props['JobName']}/checkpoint-3.pt"
    assert evaluate(policies, Request("s3:PutObject", own)).allowed
    assert evaluate(policies, Request("s3:GetObject", own)).allowed
    other = f"{objects}/edge-ai-dev-train-000000000000/checkpoint-3.pt"
    assert not evaluate(policies, Request("s3:GetObject", other)).allowed
    assert not evaluate(policies, Request("s3:PutObject", other)).allowed
