"""``device_sim.ipc.authorization`` against the nucleus's own expectations.

The matching cases are the nucleus's ``src/test/java/com/aws/greengrass/authorization/
WildcardTrieTest.java`` (aws-greengrass-nucleus, v2.8.0 and later), rewritten as data: the Java
test adds patterns to one trie one after another, so each case lists every pattern added so far
and expects a match when any of them allows the resource.
"""

from __future__ import annotations

import json
from typing import List

import pytest

from device_sim.ipc.authorization import (
    MQTT_PROXY_SERVICE,
    PUBLISH_TO_IOT_CORE,
    PolicyError,
    authorize,
    parse_access_control,
    resource_matches,
    resource_problem,
)

# (patterns in the trie, resource, matchesMQTT, matchesStandard)
CASES = [
    (["nowildcard"], "nowildcard", True, True),
    (["nowildcard"], "topic", False, False),
    (["abc*xy*z"], "abc123xyabc!@/<>#$%^&*()_+-=z", True, True),
    (["abc*xy*z"], "abcxy/ 7895z", True, True),
    (["abc*xy*z"], "abc123xy90zABCxyABCz", True, True),
    (["abc*xy*z"], "ab789xyz123", False, False),
    (["abc*xy*z"], "abc123xy90zABCzz0", False, False),
    (["abc*xy*z"], "", False, False),
    (["abc*xy*z", "abc*xy*23"], "abc789xy56z123", True, True),
    (["*qwe*90*"], "789qwe-+9qwe-+90ABC", True, True),
    (["*qwe*90*"], "789qwe-+9A", False, False),
    (["ab/*/c"], "ab/1/3/2/c", True, True),
    (["ab/*/c"], "ab/1/34/2/c/", False, False),
    (["*wer"], "123werX", False, False),
    (["**/abc"], "7/8/abc", True, True),
    (["abc/#"], "abc/1/2/3", True, False),
    (["abc/#"], "abc", True, False),
    (["abc/#"], "abc/", True, False),
    (["abc/#"], "abcd/e/f123/4/5/6", False, False),
    (["abc/#"], "abc/#", True, True),
    (["abc/#", "123/#/xyz/#"], "123/#/xyz", True, False),
    (["abc/#", "123/#/xyz/#"], "123/4/5/6/xyz/abc", False, False),
    (["#/zzz/45"], "x/zzz/45", False, False),
    (["#/zzz/45"], "#/zzz/45", True, True),
    (["#"], "asdu76/asdas/23", True, False),
    (["#"], "#", True, True),
    (["/#"], "", True, False),
    (["/#"], "/a/b/c/d/e", True, False),
    (["/#"], "a/b/c/d", False, False),
    (["w/qqq#"], "w/qqq/e/r", False, False),
    (["w/qqq#"], "w/qqq#", True, True),
    (["12/#/"], "12/4/5/6", False, False),
    (["##"], "abcd", False, False),
    (["##"], "##", True, True),
    (["abc/+/123"], "abc/def/123", True, False),
    (["abc/+/123"], "abc/def/g/123", False, False),
    (["abc/+/123"], "abc/+/123", True, True),
    (["+/56"], "123/56", True, False),
    (["+/56"], "89/1/56", False, False),
    (["xyz/+/abcd/+/1"], "xyz/ghj/abcd//1", True, False),
    (["123/fgh/+"], "123/fgh/12/34", False, False),
    (["89/+/+/+/90"], "89/1/2//90", True, False),
    (["89/+/+/+/90"], "89/1/2/90", False, False),
    (["+"], "abc", True, False),
    (["+"], "/123", False, False),
    (["+", "+/+"], "/123", True, False),
    (["+", "+/+"], "/123/", False, False),
    (["ax/qwe+/123"], "ax/qwert/123", False, False),
    (["ax/qwe+/123"], "ax/qwe+/123", True, True),
    (["12/+23"], "12/x23", False, False),
    (["/+/++"], "/33/ty", False, False),
    (["/+/++"], "/zz/++", True, False),
    (["xyz*/+/*room/#"], "xyzzzz/89/fan2/bedroom/light/5", True, False),
    (["12/*#"], "12/34/5#", True, True),
    (["12/*#"], "12/45/67", False, False),
    (["x*ui/+/#"], "xyz/zz34ui/matchPlus/23", True, False),
    (["x*ui/+/#"], "xyz/zz34/matchPlus/23", False, False),
    (["x*ui/+/#"], "xyzzz34", False, False),
    (["a/+/+/#/+"], "a/b/c/#/d", True, False),
    (["a/+/+/#/+"], "a/+/+/#/+", True, True),
    (["a/+/+/#/+"], "a/b/c/d/e", False, False),
    (["2131/#/#/+/ui/#"], "2131/x/y/z/ui/1", False, False),
    (["2131/#/#/+/ui/#"], "2131/#/#/z/ui/1/56", True, False),
    (["abc*/#"], "abc123", True, False),
    (["x*/+/#"], "xcvb/123/4/5", True, False),
    (["a/*bc/#"], "a/xyzbc", True, False),
    (["a/*bc/#"], "a/xyzbcnt/bc/", True, False),
    (["a/+/#"], "a", False, False),
    (["a/+/#"], "a/", True, False),
    (["acv/rt${*}mk", "${$}/begin", "end/${?}"], "acv/rt*mk", True, True),
    (["acv/rt${*}mk", "${$}/begin", "end/${?}"], "acv/rt${*}mk", False, False),
    (["acv/rt${*}mk", "${$}/begin", "end/${?}"], "acv/rt123mk", False, False),
    (["acv/rt${*}mk", "${$}/begin", "end/${?}"], "$/begin", True, True),
    (["acv/rt${*}mk", "${$}/begin", "end/${?}"], "end/?", True, True),
    (["acv/rt${$}{*}mk"], "acv/rt${abc/123/=-_+}mk", True, True),
    (["${*}"], "*", True, True),
    (["${*}"], "*ab", False, False),
    (["abc${"], "abc${", True, True),
    (["456$*"], "456$123/abc", True, True),
    (["456$*"], "456*", False, False),
    (["qwe${ca}"], "qwe${ca}", True, True),
    (["qwe${ca}"], "qweca", False, False),
]


@pytest.mark.parametrize(("patterns", "resource", "mqtt", "standard"), CASES)
def test_matching_follows_the_nucleus_wildcard_trie(
    patterns: List[str], resource: str, mqtt: bool, standard: bool
) -> None:
    assert any(resource_matches(p, resource, mqtt=True) for p in patterns) is mqtt
    assert any(resource_matches(p, resource, mqtt=False) for p in patterns) is standard


@pytest.mark.parametrize(
    ("resource", "problem"),
    [
        ("a/${*}/b", None),
        ("${$}${?}", None),
        ("a?", "invalid character: '?'"),
        ("a/${c}", "invalid escape sequence: ${c}"),
        ("a/${*", "invalid escape sequence"),
        ("", "cannot be empty"),
        ("$a", None),
    ],
)
def test_resource_validation_follows_authorization_module(resource: str, problem: str) -> None:
    found = resource_problem(resource)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def policies_for(*resources: str, operations: object = None) -> object:
    return {
        MQTT_PROXY_SERVICE: {
            "p1": {
                "operations": [PUBLISH_TO_IOT_CORE] if operations is None else operations,
                "resources": list(resources),
            }
        }
    }


def allowed(access_control: object, topic: str) -> bool:
    decision = authorize(
        parse_access_control(access_control),
        destination=MQTT_PROXY_SERVICE,
        operation=PUBLISH_TO_IOT_CORE,
        resource=topic,
        mqtt=True,
    )
    return decision.allowed


def test_policies_parse_and_decide_like_the_nucleus() -> None:
    assert allowed(policies_for("a/b"), "a/b")
    assert allowed(json.dumps(policies_for("a/b")), "a/b")  # a JSON string is parsed too
    assert not allowed(policies_for("a/b"), "")  # empty resource: "Resource cannot be empty"
    assert not allowed(policies_for("a/b", operations=[]), "a/b")  # policy skipped
    assert allowed(policies_for("a/b", operations=["*"]), "a/b")
    assert not allowed(policies_for("a/?", "a/b"), "a/?")  # invalid resource dropped ...
    assert allowed(policies_for("a/?", "a/b"), "a/b")  # ... the rest of the policy stays
    assert not allowed(policies_for(), "a/b")  # no resources: nothing allowed
    assert not allowed(None, "a/b")
    decision = authorize(
        parse_access_control(policies_for("*")),
        destination=MQTT_PROXY_SERVICE,
        operation="aws.greengrass#PublishToTopic",
        resource="a",
        mqtt=True,
    )
    assert not decision.allowed and "not registered for operation" in decision.reason


@pytest.mark.parametrize(
    "access_control",
    ["not json", [1, 2], {MQTT_PROXY_SERVICE: "x"}, policies_for(operations="one-string")],
)
def test_unparseable_access_control_is_an_error(access_control: object) -> None:
    with pytest.raises(PolicyError):
        parse_access_control(access_control)
