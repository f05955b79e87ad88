"""The device stack's IAM and IoT policies against the calls AWS's own code makes.

Each call list below is read from the Greengrass nucleus source
(github.com/aws-greengrass/aws-greengrass-nucleus) and cited at the call; the resource each
IAM action is authorized against follows the Service Authorization Reference
(https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsiot.html,
list_awsidentityandaccessmanagementiam.html, list_amazons3.html).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.iam_eval import BUCKET, PARTITION, evaluate, policies_of_role

STAGES = ["dev", "prod"]


def _logical_id(template: dict[str, Any], type_: str, **props: str) -> str:
    matches = [
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == type_
        and all(resource["Properties"].get(k) == v for k, v in props.items())
    ]
    assert len(matches) == 1, (type_, props, matches)
    return matches[0]


@pytest.fixture(params=STAGES)
def devices(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    synthesized = request.getfixturevalue(request.param)
    return request.param, synthesized.template_json(f"{request.param}/Devices")


def tes_role_statements(stage: str, template: dict[str, Any]) -> list[dict[str, Any]]:
    role = _logical_id(
        template, "AWS::IAM::Role", RoleName=f"edge-ai-{stage}-GreengrassTokenExchangeRole"
    )
    return policies_of_role(template, role)


def test_tes_role_allows_the_calls_of_an_artifact_download(devices) -> None:
    """Before every download the nucleus asks for the bucket's region with
    ``s3:GetBucketLocation`` (``S3Downloader.getRegionClientForBucket``), then reads the size
    with ``HeadObject`` (``S3Downloader.getDownloadSize``; authorized as ``s3:GetObject``) and
    the bytes with ``GetObject`` (``S3Downloader.download``). A denied GetBucketLocation fails
    the deployment. GetBucketLocation is authorized against the bucket ARN, object reads
    against the object ARN (Service Authorization Reference, Amazon S3)."""
    stage, template = devices
    statements = tes_role_statements(stage, template)
    bucket_arn = f"arn:{PARTITION}:s3:::{BUCKET}"
    calls = [
        ("s3:GetBucketLocation", bucket_arn),
        ("s3:GetObject", f"{bucket_arn}/components/abc/artifact.zip"),
        ("s3:GetObject", f"{bucket_arn}/packages/abc/model.zip"),
    ]
    for action, resource in calls:
        decision = evaluate(statements, action, resource)
        assert decision.allowed, decision.reason
    # ...and nothing else of the bucket.
    assert not evaluate(statements, "s3:GetObject", f"{bucket_arn}/training/data.zip").allowed
    assert not evaluate(statements, "s3:ListBucket", bucket_arn).allowed
    assert not evaluate(statements, "s3:GetBucketLocation", "arn:aws:s3:::other-bucket").allowed
