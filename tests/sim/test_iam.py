"""device_sim.iam on hand-written policies (IAM "Policy evaluation logic", "Policy variables",
"Condition operators" pages; IoT "Thing policy variables")."""

from __future__ import annotations

import pytest

from device_sim.iam import Policy, PolicyError, Request, arn_matches, evaluate

ACCOUNT = "111122223333"


def policy(*statements: dict[str, object]) -> Policy:
    return Policy("p", {"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: object, resource: object, **extra: object) -> dict[str, object]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def test_default_deny_names_it() -> None:
    decision = evaluate([policy(allow("s3:GetObject", "*"))], Request("s3:GetBucketLocation", "x"))
    assert not decision.allowed
    assert decision.reason == "no statement allows it (implicit deny)"


def test_explicit_deny_wins_over_allow() -> None:
    p = policy(
        allow("s3:*", "*"),
        {
            "Sid": "NoLogs",
            "Effect": "Deny",
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::b/logs/*",
        },
    )
    assert evaluate([p], Request("s3:GetObject", "arn:aws:s3:::b/data/x")).allowed
    decision = evaluate([p], Request("s3:GetObject", "arn:aws:s3:::b/logs/x"))
    assert not decision.allowed and decision.statement == "p#NoLogs"


def test_action_wildcards_are_case_insensitive() -> None:
    p = policy(allow(["iot:Get*", "s3:Get?bject"], "*"))
    assert evaluate([p], Request("IOT:GETPOLICY", "*")).allowed
    assert evaluate([p], Request("s3:GetObject", "*")).allowed
    assert not evaluate([p], Request("s3:GetObjectAcl", "*")).allowed


def test_resource_wildcard_stays_in_its_arn_segment() -> None:
    assert arn_matches(
        "arn:aws:iot:*:111122223333:thing/edge-*", "arn:aws:iot:eu-west-1:111122223333:thing/edge-1"
    )
    # '*' in the region segment cannot swallow the account segment
    assert not arn_matches("arn:aws:iot:*:thing/x", "arn:aws:iot:eu-west-1:111122223333:thing/x")
    # the resource segment spans '/' and ':'
    assert arn_matches(
        "arn:aws:logs:r:a:log-group:/aws/greengrass/*",
        "arn:aws:logs:r:a:log-group:/aws/greengrass/x:log-stream:y",
    )


def test_not_action_and_not_resource() -> None:
    p = policy({"Effect": "Allow", "NotAction": "iam:*", "NotResource": "arn:aws:s3:::secret/*"})
    assert evaluate([p], Request("s3:GetObject", "arn:aws:s3:::public/x")).allowed
    assert not evaluate([p], Request("iam:GetRole", "arn:aws:s3:::public/x")).allowed
    assert not evaluate([p], Request("s3:GetObject", "arn:aws:s3:::secret/x")).allowed


def test_thing_policy_variable_resolves_only_when_present() -> None:
    p = policy(
        allow("iot:Publish", "arn:aws:iot:r:a:topic/edge-ai/${iot:Connection.Thing.ThingName}/*")
    )
    resource = "arn:aws:iot:r:a:topic/edge-ai/dev-1/predictions"
    own = {"iot:Connection.Thing.ThingName": "dev-1"}
    assert evaluate([p], Request("iot:Publish", resource, own)).allowed
    other = {"iot:Connection.Thing.ThingName": "dev-2"}
    assert not evaluate([p], Request("iot:Publish", resource, other)).allowed
    # a thing#2 connection: the variable is not set, so the statement cannot match
    assert not evaluate([p], Request("iot:Publish", resource, {"iot:ClientId": "dev-1#2"})).allowed


def test_variable_value_is_literal_not_a_wildcard() -> None:
    p = policy(allow("s3:GetObject", "arn:aws:s3:::b/${aws:username}/*"))
    star_user = {"aws:username": "*"}
    assert not evaluate([p], Request("s3:GetObject", "arn:aws:s3:::b/alice/x", star_user)).allowed
    assert evaluate([p], Request("s3:GetObject", "arn:aws:s3:::b/*/x", star_user)).allowed


def test_conditions_string_like_bool_arn_like() -> None:
    p = policy(
        allow(
            "s3:GetObject",
            "*",
            Condition={
                "Bool": {"aws:SecureTransport": "true"},
                "StringLike": {"aws:userid": ["AROA*:device-*"]},
                "ArnLike": {"aws:SourceArn": "arn:aws:iot:*:111122223333:thing/*"},
            },
        )
    )
    ok = {
        "aws:SecureTransport": True,
        "aws:userid": "AROAXYZ:device-7",
        "aws:SourceArn": "arn:aws:iot:eu-west-1:111122223333:thing/t",
    }
    assert evaluate([p], Request("s3:GetObject", "x", ok)).allowed
    assert not evaluate(
        [p], Request("s3:GetObject", "x", {**ok, "aws:SecureTransport": False})
    ).allowed
    missing = {k: v for k, v in ok.items() if k != "aws:userid"}
    assert not evaluate([p], Request("s3:GetObject", "x", missing)).allowed


def test_negated_operator_matches_a_missing_key_and_if_exists() -> None:
    deny_plain_http = policy(
        allow("s3:*", "*"),
        {
            "Effect": "Deny",
            "Action": "s3:*",
            "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    )
    assert evaluate([deny_plain_http], Request("s3:GetObject", "x", {"aws:SecureTransport": True}))
    assert not evaluate(
        [deny_plain_http], Request("s3:GetObject", "x", {"aws:SecureTransport": False})
    )
    p = policy(allow("s3:*", "*", Condition={"StringNotEquals": {"aws:PrincipalTag/team": "x"}}))
    assert evaluate([p], Request("s3:GetObject", "x")).allowed  # key absent: negated matches
    q = policy(allow("s3:*", "*", Condition={"StringEqualsIfExists": {"aws:PrincipalTag/t": "x"}}))
    assert evaluate([q], Request("s3:GetObject", "x")).allowed
    assert not evaluate([q], Request("s3:GetObject", "x", {"aws:PrincipalTag/t": "y"})).allowed


def test_unknown_condition_operator_is_an_error_not_true() -> None:
    p = policy(allow("s3:*", "*", Condition={"DateGreaterThan": {"aws:CurrentTime": "2020"}}))
    with pytest.raises(PolicyError, match="DateGreaterThan"):
        evaluate([p], Request("s3:GetObject", "x", {"aws:CurrentTime": "2021"}))
