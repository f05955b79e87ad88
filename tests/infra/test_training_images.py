"""Training images: the region -> registry table is the SageMaker Python SDK's own.

The SDK resolves images from ``image_uri_config/pytorch.json`` (``sagemaker.image_uris``);
``scripts/generate_training_images.py`` reads that file from the pinned SDK wheel. The
``network`` tests download the wheel from PyPI and re-derive the table; the others check the
synthesized mapping offline.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app_config import CLOUD_PYTORCH_VERSIONS, EDGE_PYTORCH_VERSIONS
from tests.infra.rendering import resources_of_type

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "generate_training_images.py"
# Regions the SDK lists that the hand-written table missed (issue 8), and the account
# pytorch.json gives ap-northeast-3.
NEWER_REGIONS = ("ap-east-2", "ap-southeast-5", "ap-southeast-6", "ap-southeast-7", "mx-central-1")


def _mapping(synthesized, stage: str = "dev") -> dict[str, str]:
    template = synthesized.template_json(f"{stage}/Pipeline")
    (mapping,) = [
        m for name, m in template.get("Mappings", {}).items() if name.startswith("DlcRegistry")
    ]
    return {region: entry["account"] for region, entry in mapping.items()}


def _image_account(synthesized, stage: str, region: str) -> str:
    template = synthesized.template_json(f"{stage}/Pipeline")
    (training,) = resources_of_type(template, "Custom::TrainingJob").values()
    image = training["Properties"]["ImageUri"]
    assert "Fn::FindInMap" in json.dumps(image)
    return _mapping(synthesized, stage)[region]


@pytest.fixture(scope="module")
def sdk_table() -> dict[str, dict[str, str]]:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--json"], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_registry_accounts_of_regions_the_sdk_lists(dev) -> None:
    accounts = _mapping(dev)
    assert accounts["ap-northeast-3"] == "364406365360"
    assert accounts["eu-west-1"] == "763104351884"
    for region in NEWER_REGIONS:
        assert region in accounts, region
    assert _image_account(dev, "dev", "ap-northeast-3") == "364406365360"


@pytest.mark.network
def test_synthesized_mapping_is_the_sdks_table(dev, sdk_table) -> None:
    """dev trains with PyTorch 1.8: its mapping must be exactly the SDK's for 1.8."""
    assert _mapping(dev) == sdk_table["1.8"]


@pytest.mark.network
def test_every_accepted_version_and_region_resolves(sdk_table) -> None:
    from edge_constructs.training_job import images

    for version in sorted(set(EDGE_PYTORCH_VERSIONS) | set(CLOUD_PYTORCH_VERSIONS)):
        assert images.registry_accounts(version) == sdk_table[version], version
        assert images.image_tag(version, "ml.m5.xlarge").startswith(version)


@pytest.mark.network
def test_generated_module_is_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_a_known_region_the_sdk_does_not_list_fails_at_synth(tmp_path) -> None:
    from tests.infra.conftest import synthesize

    with pytest.raises(ValueError, match=r"region xx-nowhere-1 has no SageMaker PyTorch 1\.8"):
        synthesize(tmp_path, account="111122223333", region="xx-nowhere-1")


# ---------------------------------------------------------------- user-given image URIs
ACCOUNT = "123456789012"
REGISTRY = f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com"
DIGEST = "sha256:" + "0123456789abcdef" * 4


def _pull_statement_resources(tmp_path, image_uri: str) -> tuple[list[str], str]:
    """(the PullTrainingImage statement's resources, the job's ImageUri), each rendered."""
    import dataclasses

    import aws_cdk as cdk
    from aws_cdk import aws_logs as logs
    from aws_cdk import aws_s3 as s3

    from edge_constructs.training_job.construct import TrainingJob
    from tests.infra.test_constructs import TRAINING

    stack = cdk.Stack(cdk.App(outdir=str(tmp_path)), "Bare")
    TrainingJob(
        stack,
        "Training",
        name_prefix="edge-ai-dev",
        bucket=s3.Bucket.from_bucket_name(stack, "B", "artifact-bucket"),
        training=dataclasses.replace(TRAINING, image_uri=image_uri),
        architecture="vgg16",
        input_shape=(1, 3, 224, 224),
        framework_version="1.8",
        source_dir=REPO_ROOT / "training_src",
        log_retention=logs.RetentionDays.ONE_WEEK,
    )
    template = cdk.assertions.Template.from_stack(stack).to_json()
    statements = [
        s
        for policy in resources_of_type(template, "AWS::IAM::Policy").values()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Sid") == "PullTrainingImage"
    ]
    (statement,) = statements
    resources = statement["Resource"]
    rendered = [_render(r) for r in (resources if isinstance(resources, list) else [resources])]
    (training,) = resources_of_type(template, "Custom::TrainingJob").values()
    return rendered, _render(training["Properties"]["ImageUri"])


def _render(value) -> str:
    """A template string with pseudo parameters written as ${Name}, Fn::Join flattened."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Ref" in value:
        return "${" + value["Ref"] + "}"
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_render(p) for p in parts)
    raise AssertionError(f"unexpected template value {value!r}")


@pytest.mark.parametrize(
    ("image_uri", "repository"),
    [
        (f"{REGISTRY}/my-training:1.8.1-cpu", "my-training"),
        # Issue 17 part 2, item 8: by digest. The old code split on ':' and granted
        # repository/my-training@sha256, a repository that does not exist.
        (f"{REGISTRY}/my-training@{DIGEST}", "my-training"),
        # Repository names may hold '/' (ECR RepositoryName pattern, botocore ecr model).
        (f"{REGISTRY}/team/vision/pytorch-training:v2", "team/vision/pytorch-training"),
        (f"{REGISTRY}/team/pytorch-training@{DIGEST}", "team/pytorch-training"),
    ],
)
def test_pull_statement_names_the_image_repository_exactly(
    tmp_path, image_uri: str, repository: str
) -> None:
    resources, job_image = _pull_statement_resources(tmp_path, image_uri)
    assert resources == [f"arn:${{AWS::Partition}}:ecr:eu-west-1:{ACCOUNT}:repository/{repository}"]
    assert job_image == image_uri  # SageMaker gets the URI exactly as given


def test_pull_statement_uses_the_region_in_the_image_uri(tmp_path) -> None:
    """The repository's ARN carries the registry's region (ECR repositoryArn: region of the
    repository), not the stack's."""
    uri = f"{ACCOUNT}.dkr.ecr.us-west-2.amazonaws.com/my-training:1"
    resources, _ = _pull_statement_resources(tmp_path, uri)
    assert resources == [f"arn:${{AWS::Partition}}:ecr:us-west-2:{ACCOUNT}:repository/my-training"]


@pytest.mark.parametrize(
    ("image_uri", "fragment"),
    [
        ("pytorch:latest", "ECR image URI"),
        ("docker.io/library/pytorch:1.8.1", "ECR image URI"),
        (f"{REGISTRY}/My-Training:1", "repository name"),  # ECR names are lower case
        (f"{REGISTRY}/my-training", "tag or a digest"),  # which image? (latest moves)
        (f"{REGISTRY}/my-training@sha256:abc", "digest"),
        (f"{REGISTRY}/my-training:1@{DIGEST}", "not both"),
        (f"{REGISTRY}/my-training:bad tag", "ECR image URI"),
        (f"{REGISTRY}/my-training:-x", "tag"),
        ("12345.dkr.ecr.eu-west-1.amazonaws.com/my-training:1", "ECR image URI"),
    ],
)
def test_a_training_image_uri_that_is_no_ecr_image_is_a_config_error(
    image_uri: str, fragment: str
) -> None:
    from app_config import ConfigError, build_config, merge_context

    with pytest.raises(ConfigError) as raised:
        build_config("dev", merge_context({}, {}, {"training_image_uri": image_uri}))
    assert raised.value.key == "training_image_uri"
    assert f"training_image_uri={image_uri!r}" in str(raised.value)
    assert fragment in str(raised.value)


@pytest.mark.parametrize(
    "image_uri",
    [
        f"{REGISTRY}/my-training:1.8.1-cpu-py36",
        f"{REGISTRY}/my-training@{DIGEST}",
        f"{REGISTRY}/team/vision/pytorch-training:v2",
        f"{ACCOUNT}.dkr.ecr.cn-north-1.amazonaws.com.cn/my-training:1",
    ],
)
def test_ecr_image_uris_by_tag_or_digest_are_accepted(image_uri: str) -> None:
    from app_config import build_config, merge_context

    config = build_config("dev", merge_context({}, {}, {"training_image_uri": image_uri}))
    assert config.training.image_uri == image_uri
