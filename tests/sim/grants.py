"""Test-only grants that stand in for issue 8's fixes, so the steps after a known defect can be
exercised on today's templates. Each names the defect it papers over; the strict-xfail tests
run without them."""

from __future__ import annotations

from device_sim.assembly import Cloud
from device_sim.iam import Policy


def grant_installer_tes_policies(cloud: Cloud) -> None:
    """Defect 1: let the installer look up/create/attach the policies it wants."""
    arn = str(cloud.output("Devices", "InstallerPolicyArn"))
    policy = cloud.managed_policies[arn]
    statements = list(policy.document["Statement"])
    statements.append(
        {
            "Sid": "TestGrantDefect1",
            "Effect": "Allow",
            "Action": [
                "iot:GetPolicy",
                "iot:CreatePolicy",
                "iot:AttachPolicy",
                "iam:GetPolicy",
                "iam:CreatePolicy",
                "iam:AttachRolePolicy",
            ],
            "Resource": "*",
        }
    )
    cloud.managed_policies[arn] = Policy(policy.name, {**policy.document, "Statement": statements})


def grant_get_bucket_location(cloud: Cloud) -> None:
    """Defect 2: give the token-exchange role s3:GetBucketLocation."""
    alias = str(cloud.output("Devices", "TokenExchangeRoleAlias"))
    role_arn = cloud.role_aliases[alias]
    role = next(r for r in cloud.roles.values() if r.arn == role_arn)
    role.policies.append(
        Policy(
            "TestGrantDefect2",
            {"Statement": [{"Effect": "Allow", "Action": "s3:GetBucketLocation", "Resource": "*"}]},
        )
    )


def grant_all(cloud: Cloud) -> None:
    grant_installer_tes_policies(cloud)
    grant_get_bucket_location(cloud)
