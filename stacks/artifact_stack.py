"""The stateful stack: the artifact bucket, kept apart from everything that can be replaced."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from app_config import PipelineConfig
from edge_constructs.artifact_bucket.construct import ArtifactBucket


class ArtifactStack(Stack):
    def __init__(self, scope: Construct, id_: str, *, config: PipelineConfig, **kwargs: Any):
        super().__init__(scope, id_, **kwargs)
        self.artifacts = ArtifactBucket(
            self,
            "Artifacts",
            noncurrent_version_expiration_days=config.noncurrent_version_expiration_days,
        )
        self.bucket = self.artifacts.bucket
        CfnOutput(self, "ArtifactBucketName", value=self.bucket.bucket_name)
