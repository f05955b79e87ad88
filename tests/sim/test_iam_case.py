"""ARN resource matching in device_sim.iam is case-sensitive, as IAM's is.

Sources: IAM User Guide, "IAM JSON policy elements: Resource"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html):
"In the Resource element, the IAM user name is case sensitive"; the ARN condition operators
``ArnEquals``/``ArnLike`` are "Case-sensitive matching of the ARN" (AWS SDK for Java,
``ArnCondition.ArnComparisonType``, after the IAM "Condition operators" page,
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html).
Only the Action element is matched case-insensitively (tests/sim/test_iam.py covers that).

A simulator that matched ARNs ignoring case would let a device publish to ``edge/Dev/...``
with a policy for ``edge/dev/...``, or read ``Models/`` with a grant for ``models/``, and a
test would pass that AWS refuses."""

from __future__ import annotations

from device_sim.iam import Policy, Request, evaluate

TOPIC = "arn:aws:iot:eu-west-1:111122223333:topic/edge/dev/jetson/predictions"


def policy(*statements: dict[str, object]) -> Policy:
    return Policy("p", {"Version": "2012-10-17", "Statement": list(statements)})


def test_an_iot_topic_arn_differing_only_in_case_is_not_allowed() -> None:
    p = policy({"Effect": "Allow", "Action": "iot:Publish", "Resource": TOPIC})
    assert evaluate([p], Request("iot:Publish", TOPIC)).allowed
    decision = evaluate([p], Request("iot:Publish", TOPIC.replace("/dev/", "/Dev/")))
    assert not decision.allowed, decision.reason
    assert decision.reason == "no statement allows it (implicit deny)"


def test_a_wildcard_resource_keeps_the_case_of_its_literal_part() -> None:
    p = policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/models/*"})
    assert evaluate([p], Request("s3:GetObject", "arn:aws:s3:::b/models/m.tar.gz")).allowed
    assert not evaluate([p], Request("s3:GetObject", "arn:aws:s3:::b/Models/m.tar.gz")).allowed


def test_a_deny_does_not_reach_an_arn_differing_only_in_case() -> None:
    """The other direction: case-blind matching would also widen a Deny."""
    p = policy(
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/Secret/*"},
    )
    assert not evaluate([p], Request("s3:GetObject", "arn:aws:s3:::b/Secret/k")).allowed
    assert evaluate([p], Request("s3:GetObject", "arn:aws:s3:::b/secret/k")).allowed


def test_arn_like_condition_is_case_sensitive() -> None:
    p = policy(
        {
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Resource": "*",
            "Condition": {
                "ArnLike": {"aws:SourceArn": "arn:aws:iot:*:111122223333:rolealias/Edge*"}
            },
        }
    )
    source = "arn:aws:iot:eu-west-1:111122223333:rolealias/EdgeTokenExchange"
    assert evaluate([p], Request("sts:AssumeRole", "*", {"aws:SourceArn": source})).allowed
    lower = source.replace("Edge", "edge")
    assert not evaluate([p], Request("sts:AssumeRole", "*", {"aws:SourceArn": lower})).allowed
