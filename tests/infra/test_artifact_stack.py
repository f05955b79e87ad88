from __future__ import annotations

from aws_cdk.assertions import Match

from edge_constructs.artifact_bucket.construct import (
    ACCESS_LOG_BUCKET_LOGICAL_ID,
    ARTIFACT_BUCKET_LOGICAL_ID,
)


def test_bucket_logical_ids_are_pinned(dev) -> None:
    # A refactor that changes these would make CloudFormation replace the bucket.
    resources = dev.template_json("dev/Artifacts")["Resources"]
    assert ARTIFACT_BUCKET_LOGICAL_ID == "ArtifactBucket"
    assert resources["ArtifactBucket"]["Type"] == "AWS::S3::Bucket"
    assert resources[ACCESS_LOG_BUCKET_LOGICAL_ID]["Type"] == "AWS::S3::Bucket"


def test_bucket_is_retained_versioned_encrypted_private_and_logged(dev) -> None:
    template = dev.template("dev/Artifacts")
    template.has_resource(
        "AWS::S3::Bucket",
        {
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": Match.object_like(
                {
                    "VersioningConfiguration": {"Status": "Enabled"},
                    "BucketEncryption": {
                        "ServerSideEncryptionConfiguration": [
                            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                        ]
                    },
                    "PublicAccessBlockConfiguration": {
                        "BlockPublicAcls": True,
                        "BlockPublicPolicy": True,
                        "IgnorePublicAcls": True,
                        "RestrictPublicBuckets": True,
                    },
                    "LoggingConfiguration": {
                        "DestinationBucketName": {"Ref": "ArtifactAccessLogBucket"},
                        "LogFilePrefix": "artifact-bucket/",
                    },
                }
            ),
        },
    )


def test_noncurrent_versions_expire_but_current_ones_never(dev) -> None:
    rules = dev.template_json("dev/Artifacts")["Resources"]["ArtifactBucket"]["Properties"][
        "LifecycleConfiguration"
    ]["Rules"]
    assert len(rules) == 1
    assert rules[0]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 90}
    assert "ExpirationInDays" not in rules[0]


def test_bucket_policy_denies_plain_http(dev) -> None:
    dev.template("dev/Artifacts").has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": "ArtifactBucket"},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "s3:*",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            },
        },
    )


def test_prod_artifacts_stack_has_termination_protection(dev, prod) -> None:
    assert prod.stacks["prod/Artifacts"].termination_protection is True
    assert dev.stacks["dev/Artifacts"].termination_protection is False
