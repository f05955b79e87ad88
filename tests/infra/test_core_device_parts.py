"""The small constructs of edge_constructs/core_device/ on their own: the IoT policy builder's
refusals and rendering, the logical-ID helper against CDK's own algorithm, and the parts'
refusals of input a caller can get wrong. No app synth: each test builds what it needs."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from constructs import Construct

from edge_constructs.core_device.device_policies import core_device_policy_document
from edge_constructs.core_device.logical_ids import keep_flat_logical_ids, unique_id
from edge_constructs.core_device.policy_document import IotPolicyDocument
from edge_constructs.core_device.thing_groups import ThingGroups
from edge_constructs.core_device.token_exchange import TokenExchange

ARN = "arn:aws:iot:eu-west-1:123456789012"


def test_statements_render_in_the_order_added_with_single_values_as_strings() -> None:
    document = IotPolicyDocument()
    document.add_statement(sid="B", actions=["iot:Connect"], resources=[f"{ARN}:client/b"])
    document.add_statement(
        sid="A", actions=["iot:Publish", "iot:Receive"], resources=[f"{ARN}:topic/x", "*"]
    )
    document.add_statement(actions=["iot:AssumeRoleWithCertificate"], resources=["*"])
    expected = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "B", "Effect": "Allow", "Action": "iot:Connect", "Resource": f"{ARN}:client/b"},
            {
                "Sid": "A",
                "Effect": "Allow",
                "Action": ["iot:Publish", "iot:Receive"],
                "Resource": [f"{ARN}:topic/x", "*"],
            },
            {"Effect": "Allow", "Action": "iot:AssumeRoleWithCertificate", "Resource": "*"},
        ],
    }
    rendered = document.render()
    assert rendered == expected
    # Key order too: the synthesized template is compared byte for byte.
    assert list(rendered["Statement"][0]) == ["Sid", "Effect", "Action", "Resource"]
    # A caller changing one rendering changes neither the document nor the next rendering.
    rendered["Statement"][1]["Action"].append("iot:Subscribe")
    assert document.render() == expected


def test_the_same_sid_twice_is_refused() -> None:
    document = IotPolicyDocument()
    document.add_statement(sid="Own", actions=["iot:Connect"], resources=["*"])
    with pytest.raises(ValueError, match="Sid 'Own' is already used"):
        document.add_statement(sid="Own", actions=["iot:Publish"], resources=["*"])
    assert document.statement_count == 1


@pytest.mark.parametrize(
    ("actions", "resources", "message"),
    [
        ([], ["*"], "statement Empty: no actions"),
        (["iot:Connect"], [], "statement Empty: no resources"),
        (["Connect"], ["*"], "action 'Connect' has no service prefix"),
    ],
)
def test_an_empty_or_malformed_statement_is_refused(
    actions: list[str], resources: list[str], message: str
) -> None:
    document = IotPolicyDocument()
    with pytest.raises(ValueError, match=message):
        document.add_statement(sid="Empty", actions=actions, resources=resources)
    assert document.statement_count == 0


def test_a_bare_string_for_actions_is_refused() -> None:
    """A str is a Sequence of one-letter strings: refused rather than rendered letter by
    letter."""
    with pytest.raises(TypeError, match="sequences of strings"):
        IotPolicyDocument().add_statement(actions="iot:Connect", resources=["*"])


@pytest.mark.parametrize("sid", ["Own-Thing", "Own Thing", ""])
def test_a_sid_with_other_than_letters_and_digits_is_refused(sid: str) -> None:
    with pytest.raises(ValueError, match="only ASCII letters and digits"):
        IotPolicyDocument().add_statement(sid=sid, actions=["iot:Connect"], resources=["*"])


def test_a_document_without_statements_does_not_render() -> None:
    with pytest.raises(ValueError, match="at least one statement"):
        IotPolicyDocument().render()


def test_core_device_policy_document_sids_and_order() -> None:
    """The order and Sids the deployed policy has had since before the split: a reorder or a
    rename is a policy version on every device's policy."""
    document = core_device_policy_document(
        name_prefix="edge-ai-dev", publish_topic_prefix="edge-ai", role_alias_arn=f"{ARN}:x"
    ).render()
    assert [s.get("Sid") for s in document["Statement"]] == [
        "OwnThingConnect",
        "OwnThingTopics",
        "OwnThingTopicFilters",
        "ExtraConnectionsConnect",
        "ExtraConnectionsTopics",
        "ExtraConnectionsTopicFilters",
        None,
        None,
    ]


@pytest.mark.parametrize(
    "path",
    [
        ["Bucket"],
        ["Bucket", "Resource"],
        ["CoreDevices", "ThingGroup"],
        ["CoreDevices", "TokenExchangeRole", "DefaultPolicy", "Resource"],
        ["CoreDevices", "Default", "Thing-Group.x"],
        ["Role", "Role"],
        ["A" * 300, "B"],
    ],
)
def test_unique_id_is_the_logical_id_cdk_gives_that_path(path: list[str]) -> None:
    stack = cdk.Stack(cdk.App(), "S")
    scope: Construct = stack
    for part in path[:-1]:
        scope = Construct(scope, part)
    resource = cdk.CfnResource(scope, path[-1], type="Test::Thing")
    assert unique_id(path) == stack.resolve(resource.logical_id)


def test_keep_flat_logical_ids_drops_only_the_part_level() -> None:
    stack = cdk.Stack(cdk.App(), "S")
    parent = Construct(stack, "CoreDevices")
    flat = cdk.CfnResource(parent, "Group", type="Test::Thing")
    part = Construct(parent, "Part")
    nested = cdk.CfnResource(Construct(part, "Inner"), "Resource", type="Test::Thing")
    keep_flat_logical_ids(part)
    assert stack.resolve(nested.logical_id) == unique_id(["CoreDevices", "Inner", "Resource"])
    assert stack.resolve(flat.logical_id) == unique_id(["CoreDevices", "Group"])


def test_two_resources_flattened_onto_one_logical_id_fail_the_synth() -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "S")
    parent = Construct(stack, "CoreDevices")
    cdk.CfnResource(parent, "Group", type="Test::Thing")
    part = Construct(parent, "Part")
    cdk.CfnResource(part, "Group", type="Test::Thing")
    keep_flat_logical_ids(part)
    with pytest.raises(Exception, match="CoreDevicesGroup"):
        app.synth()


def test_thing_groups_refuse_no_name_and_a_name_given_twice() -> None:
    stack = cdk.Stack(cdk.App(), "S")
    with pytest.raises(ValueError, match="at least one thing group"):
        ThingGroups(stack, "None", names=[], description="d")
    with pytest.raises(ValueError, match="named twice"):
        ThingGroups(stack, "Twice", names=["A", "B", "A"], description="d")


def test_token_exchange_refuses_no_readable_prefix() -> None:
    stack = cdk.Stack(cdk.App(), "S")
    bucket = s3.Bucket(stack, "Bucket")
    with pytest.raises(ValueError, match="device_prefixes is empty"):
        TokenExchange(stack, "Tes", name_prefix="p", bucket=bucket, device_prefixes=[])
