"""cdk-nag acknowledgements shared by several constructs, each with its reason."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from aws_cdk import CfnResource
from aws_cdk import aws_iam as iam
from aws_cdk import custom_resources as cr
from cdk_nag import NagSuppressions
from constructs import IConstruct

# cdk-nag's IAM5 findings name each wildcard: "Action::<action>" or "Resource::<resource>",
# tokens written as <LogicalId.Attr> or <AWS::Region> (cdk-nag README, "Suppressing a rule",
# granular rules and appliesTo). An acknowledgement lists the findings it covers, so a new
# wildcard on the same role is a new, unacknowledged finding.
AppliesTo = Any  # a finding string, or {"regex": "/.../"}


def resource_ending(suffix: str) -> dict[str, str]:
    """The finding of any resource ARN that ends with ``suffix`` (e.g. ``/training/*``): for
    bucket ARNs, which read differently in each stack (a cross-stack reference, an import)."""
    return {"regex": f"/^Resource::\\S+{_js_escape(suffix)}$/"}


def _js_escape(text: str) -> str:
    return re.sub(r"([\\^$.*+?()\[\]{}|/])", r"\\\1", text)


def actions(*names: str) -> list[str]:
    return [f"Action::{name}" for name in names]


def resources(*arns: str) -> list[str]:
    return [f"Resource::{arn}" for arn in arns]


#: What grant_read / grant_put / grant_read_write add on a prefix (and an asset's bucket).
S3_OBJECT_ACTIONS = actions("s3:GetObject*", "s3:GetBucket*", "s3:List*", "s3:Abort*")
S3_DELETE = actions("s3:DeleteObject*")
#: The default synthesizer's file-asset bucket, whose keys are content hashes.
ASSET_OBJECTS = {
    "regex": "/^Resource::arn:<AWS::Partition>:s3:::cdk-[a-z0-9]+-assets-<AWS::AccountId>-"
    "<AWS::Region>\\/\\*$/"
}


def acknowledge_provider_framework(provider: cr.Provider) -> None:
    """The CDK Provider framework's own Lambda(s) and state machine are not ours to shape."""
    NagSuppressions.add_resource_suppressions(
        provider,
        [
            {
                "id": "AwsSolutions-IAM4",
                "reason": "The CDK custom-resource Provider framework function uses "
                "AWSLambdaBasicExecutionRole for its own logs; our handler functions use "
                "inline policies scoped to their log groups.",
            },
            {
                "id": "AwsSolutions-IAM5",
                "reason": "The Provider framework grants itself lambda:InvokeFunction on the "
                "handler function ARN and its versions (ARN:*), which CDK generates.",
                "appliesTo": [{"regex": "/^Resource::<[A-Za-z0-9]+\\.Arn>:\\*$/"}],
            },
            {
                "id": "AwsSolutions-L1",
                "reason": "The Provider framework's Node.js runtime is chosen and updated by "
                "aws-cdk-lib, not by this app.",
            },
            {
                "id": "AwsSolutions-SF1",
                "reason": "The Provider framework's waiter state machine logs through its "
                "Lambda functions; CDK offers no logging option for it.",
            },
            {
                "id": "AwsSolutions-SF2",
                "reason": "X-Ray tracing of the Provider framework's waiter state machine "
                "would only trace CDK's own polling loop.",
            },
        ],
        apply_to_children=True,
    )


def acknowledge_wildcards(
    policy: iam.Role | iam.Policy, reason: str, applies_to: Sequence[AppliesTo]
) -> None:
    """IAM5 for exactly the findings in ``applies_to`` on one policy resource (a role's
    default policy, or an inline policy): never the role's other wildcards, nor its children.
    """
    if not applies_to:
        raise ValueError("an IAM5 acknowledgement must name the findings it covers")
    target: IConstruct = policy
    if isinstance(policy, iam.Role):
        found = policy.node.try_find_child("DefaultPolicy")
        if found is None:
            raise ValueError(f"{policy.node.path} has no policy statements to acknowledge")
        target = found
    resource = target.node.default_child
    if not isinstance(resource, CfnResource):
        raise TypeError(f"{target.node.path} has no CloudFormation resource")
    NagSuppressions.add_resource_suppressions(
        resource,
        [{"id": "AwsSolutions-IAM5", "reason": reason, "appliesTo": list(applies_to)}],
    )
