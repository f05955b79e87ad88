"""cdk-nag acknowledgements shared by several constructs, each with its reason."""

from __future__ import annotations

from aws_cdk import custom_resources as cr
from cdk_nag import NagSuppressions
from constructs import IConstruct


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


def acknowledge_scoped_wildcards(role: IConstruct, reason: str) -> None:
    """IAM5 on a role whose wildcards are prefix-scoped (say which, and why, in ``reason``)."""
    NagSuppressions.add_resource_suppressions(
        role, [{"id": "AwsSolutions-IAM5", "reason": reason}], apply_to_children=True
    )
