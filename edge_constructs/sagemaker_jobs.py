"""IAM shared by the constructs whose handlers manage SageMaker jobs."""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_iam as iam

from edge_constructs.nag import acknowledge_wildcards, resources


def allow_job_management(
    handler_role: iam.Role,
    *,
    job_kind: str,
    name_pattern: str,
    execution_role: iam.IRole,
) -> str:
    """Let ``handler_role`` create, describe, stop and tag ``job_kind`` jobs named
    ``name_pattern`` and pass exactly ``execution_role`` to SageMaker. Returns the job ARNs.

    ``job_kind`` is the API noun (``TrainingJob``, ``CompilationJob``). The name is a prefix
    pattern, not the current job's name: after an update changes the job name, CloudFormation
    asks the same function to stop the previous job, which the new template no longer names.
    """
    resource_type = RESOURCE_TYPES[job_kind]
    job_arns = (
        f"arn:{Aws.PARTITION}:sagemaker:{Aws.REGION}:{Aws.ACCOUNT_ID}:"
        f"{resource_type}/{name_pattern}"
    )
    handler_role.add_to_policy(
        iam.PolicyStatement(
            sid=f"Manage{job_kind}s",
            actions=[
                f"sagemaker:Create{job_kind}",
                f"sagemaker:Describe{job_kind}",
                f"sagemaker:Stop{job_kind}",
                "sagemaker:AddTags",
            ],
            resources=[job_arns],
        )
    )
    handler_role.add_to_policy(
        iam.PolicyStatement(
            actions=["iam:PassRole"],
            resources=[execution_role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        )
    )
    acknowledge_job_prefix(handler_role, job_kind=job_kind, name_pattern=name_pattern)
    return job_arns


RESOURCE_TYPES = {"TrainingJob": "training-job", "CompilationJob": "compilation-job"}


def acknowledge_job_prefix(role: iam.Role, *, job_kind: str, name_pattern: str) -> None:
    """IAM5 for exactly the job-name-prefix ARN of ``allow_job_management``."""
    arn = (
        f"arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:"
        f"{RESOURCE_TYPES[job_kind]}/{name_pattern}"
    )
    acknowledge_wildcards(
        role,
        "Scoped to this stack's job-name prefix: after an update changes the job name, "
        "CloudFormation asks this same function to stop the previous job, whose name the new "
        "template no longer holds.",
        resources(arn),
    )
