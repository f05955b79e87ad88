"""Spot training: every training job has its own checkpoint prefix.

SageMaker copies whatever is under ``CheckpointConfig.S3Uri`` into a new job's local checkpoint
folder before training starts (https://docs.aws.amazon.com/sagemaker/latest/dg/
model-checkpoints.html), and a training script that resumes from its last checkpoint (ours
does) would then continue another job's run. The job name is a digest of all the job's inputs,
so a prefix named after it changes exactly when the inputs do.
"""

from __future__ import annotations

import json

import pytest

from tests.infra.conftest import synthesize
from tests.infra.iam_eval import BUCKET, PARTITION, Resolver, evaluate
from tests.infra.rendering import resources_of_type


def _training(synthesized) -> tuple[dict, dict]:
    template = synthesized.template_json("dev/Pipeline")
    (training,) = resources_of_type(template, "Custom::TrainingJob").values()
    return template, Resolver(template).resolve(training["Properties"])


@pytest.fixture(scope="module")
def retrained(tmp_path_factory):
    """The dev stage with other hyperparameters: a new job, same run_id."""
    return synthesize(tmp_path_factory.mktemp("retrain"), hyperparameters=json.dumps({"epochs": 7}))


def test_checkpoint_prefix_is_the_jobs_own(dev, retrained) -> None:
    _, first = _training(dev)
    _, second = _training(retrained)
    assert first["JobName"] != second["JobName"]
    for props in (first, second):
        assert props["CheckpointS3Uri"] == f"s3://{BUCKET}/checkpoints/{props['JobName']}/"
    assert first["CheckpointS3Uri"] != second["CheckpointS3Uri"]


def test_training_role_reaches_only_its_own_checkpoints(dev) -> None:
    template, props = _training(dev)
    role_arn = props["RoleArn"]
    (role_id,) = [
        logical_id
        for logical_id, r in template["Resources"].items()
        if r["Type"] == "AWS::IAM::Role"
        and Resolver(template).resolve({"Fn::GetAtt": [logical_id, "Arn"]}) == role_arn
    ]
    statements = [
        statement
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in r["Properties"].get("Roles", [])
        for statement in Resolver(template).resolve(r["Properties"]["PolicyDocument"])["Statement"]
    ]
    objects = f"arn:{PARTITION}:s3:::{BUCKET}/checkpoints"
    own = f"{objects}/{props['JobName']}/checkpoint-3.pt"
    assert evaluate(statements, "s3:PutObject", own).allowed
    assert evaluate(statements, "s3:GetObject", own).allowed
    other = f"{objects}/edge-ai-dev-train-000000000000/checkpoint-3.pt"
    assert not evaluate(statements, "s3:GetObject", other).allowed
    assert not evaluate(statements, "s3:PutObject", other).allowed
