"""Lambda functions for the custom-resource handlers, built the same way everywhere."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Size
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

# Files that must never reach an asset: they change its hash (flaky snapshots) and are not code.
ASSET_EXCLUDES = ["__pycache__", "*.pyc", ".*", "tests", "*.egg-info"]
RUNTIME = lambda_.Runtime.PYTHON_3_14


class PythonFunction(Construct):
    """A Python Lambda with its own role and log group (no managed policies, set retention).

    Props:
        code_dir: folder deployed as the function's code (its root is on ``sys.path``).
        handler: ``module.function``.
        timeout: function timeout; custom-resource work must fit in it.
        log_retention: retention of the function's log group.
        memory_mb: memory (default 256).
        ephemeral_storage_mb: /tmp size (default 512).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        code_dir: Path,
        handler: str,
        timeout: Duration,
        log_retention: logs.RetentionDays,
        memory_mb: int = 256,
        ephemeral_storage_mb: int = 512,
        description: str,
    ) -> None:
        super().__init__(scope, id_)
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            code=lambda_.Code.from_asset(str(code_dir), exclude=ASSET_EXCLUDES),
            handler=handler,
            timeout=timeout,
            memory_size=memory_mb,
            ephemeral_storage_size=Size.mebibytes(ephemeral_storage_mb),
            role=self.role,
            log_group=self.log_group,
            description=description,
        )
