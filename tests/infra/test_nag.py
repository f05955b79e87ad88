"""cdk-nag AwsSolutions: no unacknowledged finding; every acknowledgement says why."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Annotations, Match

CONFIGURATIONS = ["dev", "prod", "byo_jetson", "three_classes"]


@pytest.mark.parametrize("configuration", CONFIGURATIONS)
def test_no_unacknowledged_findings(configuration, request) -> None:
    synthesized = request.getfixturevalue(configuration)
    for name, stack in synthesized.stacks.items():
        annotations = Annotations.from_stack(stack)
        errors = annotations.find_error("*", Match.string_like_regexp("AwsSolutions-.*"))
        warnings = annotations.find_warning("*", Match.string_like_regexp("AwsSolutions-.*"))
        assert errors == [], f"{name}: {[e.entry.data for e in errors]}"
        assert warnings == [], f"{name}: {[w.entry.data for w in warnings]}"


def test_every_acknowledgement_carries_a_specific_reason(dev) -> None:
    reasons = []
    for name in dev.stacks:
        for resource in dev.template_json(name)["Resources"].values():
            rules = resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
            reasons.extend(rule["reason"] for rule in rules)
    assert reasons, "expected acknowledgements (IAM wildcards on prefixes, Provider framework)"
    for reason in reasons:
        assert len(reason) >= 60, reason


def test_the_checks_do_find_a_non_compliant_resource() -> None:
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3
    from cdk_nag import AwsSolutionsChecks

    app = cdk.App()
    stack = cdk.Stack(app, "Probe")
    s3.Bucket(stack, "Plain")  # no TLS-only policy, no access logs
    cdk.Aspects.of(app).add(AwsSolutionsChecks())
    app.synth()
    errors = Annotations.from_stack(stack).find_error(
        "*", Match.string_like_regexp("AwsSolutions-S(1|10).*")
    )
    assert len(errors) >= 2


# ------------------------------------------------------------------------------------------
# Acknowledgements are scoped to the exact findings: a new wildcard on the same role fails.


def _pipeline_with(mutate, tmp_path):
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3
    from cdk_nag import AwsSolutionsChecks

    from app_config import load_config
    from stacks.pipeline_stack import PipelineStack
    from tests.infra.conftest import CDK_JSON_CONTEXT, REPO_ROOT

    app = cdk.App(outdir=str(tmp_path))
    shared = cdk.Stack(app, "Shared")
    bucket = s3.Bucket(shared, "ArtifactBucket", enforce_ssl=True)
    stack = PipelineStack(
        app,
        "Pipeline",
        config=load_config(CDK_JSON_CONTEXT, "dev"),
        bucket=bucket,
        repo_root=REPO_ROOT,
    )
    mutate(stack, bucket)
    cdk.Aspects.of(stack).add(AwsSolutionsChecks())
    return stack  # Annotations.from_stack synthesizes it, aspects included


def _iam5(stack) -> list[str]:
    errors = Annotations.from_stack(stack).find_error(
        "*", Match.string_like_regexp("AwsSolutions-IAM5.*")
    )
    return [e.entry.data.split(":")[0] for e in errors]


def test_the_pipeline_as_built_has_no_unacknowledged_wildcard(tmp_path) -> None:
    assert _iam5(_pipeline_with(lambda stack, bucket: None, tmp_path)) == []


@pytest.mark.parametrize(
    "mutation",
    ["read-write-whole-bucket", "create-star-on-star", "create-job-on-star", "handler-any-job"],
)
def test_a_new_wildcard_on_an_acknowledged_role_fails(tmp_path, mutation) -> None:
    from aws_cdk import aws_iam as iam

    def mutate(stack, bucket) -> None:
        role = stack.training.role
        if mutation == "read-write-whole-bucket":
            bucket.grant_read_write(role)
        elif mutation == "create-star-on-star":
            role.add_to_policy(iam.PolicyStatement(actions=["sagemaker:Create*"], resources=["*"]))
        elif mutation == "create-job-on-star":
            role.add_to_policy(
                iam.PolicyStatement(actions=["sagemaker:CreateTrainingJob"], resources=["*"])
            )
        else:
            handler_role = stack.compilation.node.find_child("Handler").role
            handler_role.add_to_policy(
                iam.PolicyStatement(
                    actions=["sagemaker:DescribeCompilationJob"],
                    resources=["arn:aws:sagemaker:*:*:compilation-job/*"],
                )
            )

    findings = _iam5(_pipeline_with(mutate, tmp_path))
    assert findings, f"{mutation}: cdk-nag found no unacknowledged wildcard"
