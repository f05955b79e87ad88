"""The simulated account, region and partition (CloudFormation pseudo parameters)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Env:
    """``AWS::AccountId``, ``AWS::Region``, ``AWS::Partition``, ``AWS::URLSuffix``."""

    account: str = "111122223333"
    region: str = "eu-west-1"
    partition: str = "aws"
    url_suffix: str = "amazonaws.com"

    def arn(
        self, service: str, resource: str, *, region: str | None = None, account: str | None = None
    ) -> str:
        r = self.region if region is None else region
        a = self.account if account is None else account
        return f"arn:{self.partition}:{service}:{r}:{a}:{resource}"
