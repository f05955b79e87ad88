"""Limits that both the configuration (``app_config``) and the constructs depend on.

Standard library only: ``app_config`` imports it, and nothing in ``edge_constructs`` imports
``app_config``.
"""

from __future__ import annotations

# A WaitCondition's Timeout is at most 43200 s, 12 hours (CloudFormation Template Reference,
# AWS::CloudFormation::WaitCondition, Timeout:
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-cloudformation-waitcondition.html).
MAX_WAIT_CONDITION_SECONDS = 43_200
# The training job's end is signalled after it stops; keep this margin for the signal.
SIGNAL_MARGIN_SECONDS = 1_800
#: The longest a training job may run (or, with spot, wait) for its WaitCondition to hear.
MAX_TRAINING_WAIT_SECONDS = MAX_WAIT_CONDITION_SECONDS - SIGNAL_MARGIN_SECONDS

#: The log retentions the stacks offer, in days, with the member of ``aws_logs.RetentionDays``
#: for each (CloudWatch Logs PutRetentionPolicy ``retentionInDays`` allows these among others:
#: botocore ``logs/2014-03-28/service-2.json``, shape ``Days``).
LOG_RETENTION_NAMES: dict[int, str] = {
    1: "ONE_DAY",
    3: "THREE_DAYS",
    5: "FIVE_DAYS",
    7: "ONE_WEEK",
    14: "TWO_WEEKS",
    30: "ONE_MONTH",
    60: "TWO_MONTHS",
    90: "THREE_MONTHS",
    120: "FOUR_MONTHS",
    150: "FIVE_MONTHS",
    180: "SIX_MONTHS",
    365: "ONE_YEAR",
    400: "THIRTEEN_MONTHS",
    545: "EIGHTEEN_MONTHS",
    731: "TWO_YEARS",
    1827: "FIVE_YEARS",
    3653: "TEN_YEARS",
}
LOG_RETENTION_DAYS = tuple(LOG_RETENTION_NAMES)
