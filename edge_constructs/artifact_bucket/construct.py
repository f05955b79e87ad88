"""The artifact bucket: the one stateful resource of the pipeline."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from cdk_nag import NagSuppressions
from constructs import Construct

# Pinned so a refactor can never replace the bucket (and lose every artifact a device runs).
ARTIFACT_BUCKET_LOGICAL_ID = "ArtifactBucket"
ACCESS_LOG_BUCKET_LOGICAL_ID = "ArtifactAccessLogBucket"


class ArtifactBucket(Construct):
    """Versioned, encrypted, TLS-only bucket for training output, Neo output and components.

    Props:
        noncurrent_version_expiration_days: how long an overwritten or deleted object version is
            kept. Current versions never expire: a deployed component version needs its artifact.
        access_log_retention_days: how long server access logs are kept (default 365).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        noncurrent_version_expiration_days: int,
        access_log_retention_days: int = 365,
    ) -> None:
        super().__init__(scope, id_)
        self.access_log_bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(access_log_retention_days))],
        )
        _pin_logical_id(self.access_log_bucket, ACCESS_LOG_BUCKET_LOGICAL_ID)
        NagSuppressions.add_resource_suppressions(
            self.access_log_bucket,
            [
                {
                    "id": "AwsSolutions-S1",
                    "reason": "This is the server access log bucket itself; logging it into "
                    "itself would loop, and S3 recommends a separate target.",
                }
            ],
        )
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_log_bucket,
            server_access_logs_prefix="artifact-bucket/",
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireNoncurrentVersions",
                    noncurrent_version_expiration=Duration.days(noncurrent_version_expiration_days),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                )
            ],
        )
        _pin_logical_id(self.bucket, ARTIFACT_BUCKET_LOGICAL_ID)


def _pin_logical_id(bucket: s3.Bucket, logical_id: str) -> None:
    cfn_bucket = bucket.node.default_child
    assert isinstance(cfn_bucket, s3.CfnBucket)
    cfn_bucket.override_logical_id(logical_id)


class Prefixes:
    """Key prefixes of the artifact bucket; IAM grants are scoped to exactly these."""

    TRAINING = "training/"
    CHECKPOINTS = "checkpoints/"
    COMPILED = "compiled/"
    PACKAGES = "packages/"
    COMPONENTS = "components/"
    # What a core device downloads: model packages and component artifacts, nothing else.
    DEVICE_READABLE = (PACKAGES, COMPONENTS)
