"""The moto 5.2.5 gaps that sagemaker_fake.SageMakerFake fills. If moto closes one, this test
fails: then drop that part of the wrapper and let moto answer for itself."""

from __future__ import annotations

from typing import Any

import pytest

REQUEST = {
    "TrainingJobName": "gap-check",
    "RoleArn": "arn:aws:iam::123456789012:role/training",
    "AlgorithmSpecification": {"TrainingImage": "image", "TrainingInputMode": "File"},
    "OutputDataConfig": {"S3OutputPath": "s3://bucket/training"},
    "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
    "StoppingCondition": {"MaxRuntimeInSeconds": 600},
}


def test_moto_gaps_are_still_there(sagemaker: Any) -> None:
    sagemaker.create_training_job(**REQUEST)
    # Born terminal: no running job exists in moto.
    assert sagemaker.describe_training_job(TrainingJobName="gap-check")["TrainingJobStatus"] == (
        "Completed"
    )
    # A duplicate name silently replaces the job (SageMaker: ResourceInUse).
    sagemaker.create_training_job(**REQUEST)
    assert len(sagemaker.list_training_jobs()["TrainingJobSummaries"]) == 1
    # No Stop* actions.
    with pytest.raises(NotImplementedError):
        sagemaker.stop_training_job(TrainingJobName="gap-check")
    with pytest.raises(NotImplementedError):
        sagemaker.stop_compilation_job(CompilationJobName="gap-check")
