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


# ------------------------------------------------------------ grammar and Version (issue 17)
def test_without_version_2012_variables_are_literal_text() -> None:
    """IAM "IAM JSON policy elements: Version": without ``"Version": "2012-10-17"`` a variable
    such as ``${aws:username}`` is not recognized as a variable but treated as a literal string.
    AWS IoT Core policies use the IAM variable rules ("AWS IoT Core policy variables")."""
    statement = allow(
        "iot:Publish", "arn:aws:iot:r:a:topic/edge-ai/${iot:Connection.Thing.ThingName}/*"
    )
    own = {"iot:Connection.Thing.ThingName": "dev-1"}
    resource = "arn:aws:iot:r:a:topic/edge-ai/dev-1/predictions"
    versioned = Policy("p", {"Version": "2012-10-17", "Statement": [statement]})
    assert evaluate([versioned], Request("iot:Publish", resource, own)).allowed
    for document in (
        {"Statement": [statement]},
        {"Version": "2008-10-17", "Statement": [statement]},
    ):
        unversioned = Policy("p", document)
        assert not evaluate([unversioned], Request("iot:Publish", resource, own)).allowed
        literal = "arn:aws:iot:r:a:topic/edge-ai/${iot:Connection.Thing.ThingName}/predictions"
        assert evaluate([unversioned], Request("iot:Publish", literal, own)).allowed


def test_without_version_condition_values_are_literal_too() -> None:
    condition = {"StringEquals": {"aws:PrincipalTag/owner": "${aws:username}"}}
    ctx = {"aws:username": "alice", "aws:PrincipalTag/owner": "alice"}
    statement = allow("s3:GetObject", "*", Condition=condition)
    assert evaluate([policy(statement)], Request("s3:GetObject", "x", ctx)).allowed
    old = Policy("p", {"Version": "2008-10-17", "Statement": [statement]})
    assert not evaluate([old], Request("s3:GetObject", "x", ctx)).allowed


def test_an_unknown_version_is_an_error() -> None:
    bad = Policy("p", {"Version": "2012-10-18", "Statement": [allow("s3:*", "*")]})
    with pytest.raises(PolicyError, match="Version"):
        evaluate([bad], Request("s3:GetObject", "x"))


def test_condition_key_names_are_case_insensitive() -> None:
    """IAM "IAM JSON policy elements: Condition": context key names are not case-sensitive
    (``aws:SourceIP`` tests ``AWS:SourceIp``); the values' case depends on the operator."""
    p = policy(allow("s3:*", "*", Condition={"StringEquals": {"AWS:SecureTRANSPORT": "true"}}))
    assert evaluate([p], Request("s3:GetObject", "x", {"aws:SecureTransport": "true"})).allowed
    assert not evaluate([p], Request("s3:GetObject", "x", {"aws:SecureTransport": "True"})).allowed
    q = policy(allow("s3:*", "*", Condition={"Null": {"AWS:USERNAME": "false"}}))
    assert evaluate([q], Request("s3:GetObject", "x", {"aws:username": "alice"})).allowed


@pytest.mark.parametrize(
    ("element", "negated"),
    [("Action", "NotAction"), ("Resource", "NotResource"), ("Principal", "NotPrincipal")],
)
def test_an_element_and_its_negation_together_are_invalid(element: str, negated: str) -> None:
    """IAM "IAM JSON policy grammar": a statement's action block is ``"Action"`` OR
    ``"NotAction"``, its resource block ``"Resource"`` OR ``"NotResource"``, its principal block
    ``"Principal"`` OR ``"NotPrincipal"``: a statement with both is not a valid policy."""
    statement: dict[str, object] = {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}
    statement[element] = statement.get(element, {"AWS": "*"})
    statement[negated] = (
        "iam:*"
        if element == "Action"
        else ({"AWS": "*"} if element == "Principal" else "arn:aws:s3:::b/*")
    )
    with pytest.raises(PolicyError, match=f"both {element} and {negated}"):
        evaluate([policy(statement)], Request("s3:GetObject", "arn:aws:s3:::a/x"))
