"""Grants on S3 locations given as ``s3://`` URIs from outside this app (brought models, data)."""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_iam as iam


def _split(uri: str) -> tuple[str, str]:
    bucket_name, _, key = uri[len("s3://") :].partition("/")
    return f"arn:{Aws.PARTITION}:s3:::{bucket_name}", key


def grant_read_object(role: iam.IRole, uri: str) -> None:
    """``s3:GetObject`` on exactly the object ``uri``."""
    bucket_arn, key = _split(uri)
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=["s3:GetObject"], resources=[f"{bucket_arn}/{key}"])
    )


def grant_read_prefix(role: iam.IRole, uri: str) -> None:
    """``s3:GetObject`` under the prefix ``uri`` and ``s3:ListBucket`` limited to it."""
    bucket_arn, prefix = _split(uri)
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=["s3:GetObject"], resources=[f"{bucket_arn}/{prefix}*"])
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=[bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}},
        )
    )


def prefix_finding(uri: str) -> str:
    """cdk-nag's IAM5 finding for :func:`grant_read_prefix` on ``uri`` (to acknowledge it)."""
    _, prefix = _split(uri)
    bucket_name = uri[len("s3://") :].split("/", 1)[0]
    return f"Resource::arn:<AWS::Partition>:s3:::{bucket_name}/{prefix}*"
