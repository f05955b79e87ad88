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
