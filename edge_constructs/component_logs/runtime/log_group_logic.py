"""Custom::GreengrassLogGroup logic: create or adopt a Greengrass component's CloudWatch log
group, and put its retention policy. Delete leaves the group (and its retention) in place.

Why not ``AWS::Logs::LogGroup``: the log manager writes a component's logs to the fixed name
``/aws/greengrass/UserComponent/<region>/<component>``, and when the group is missing it
creates it itself (aws-greengrass-logmanager
``src/main/java/com/aws/greengrass/logmanager/CloudWatchLogsUploader.java``: ``uploadLogs``
calls ``createNewLogGroup`` on ResourceNotFoundException, which tolerates
ResourceAlreadyExistsException). Devices keep running after a stack delete, so a deleted group
comes back, without retention; the next stack create of an ``AWS::Logs::LogGroup`` with that
name then fails, since ``LogGroupName`` is create-only and the primary identifier (the
resource's registry schema as cfn-lint ships it) and CreateLogGroup refuses an existing name
with ResourceAlreadyExistsException (botocore ``logs/2014-03-28/service-2.json``).

So, for every request type:

* Create / Update: ``CreateLogGroup`` (ResourceAlreadyExistsException: adopt the group the log
  manager, or an earlier stack, left), then ``PutRetentionPolicy``. The physical ID is the
  group name: a new name is a replacement, and CloudFormation sends Delete for the old one.
* Delete: nothing. Deleting would not stop the devices writing: the log manager would recreate
  the group without retention, so its logs would never expire. A kept group keeps its
  retention, so old events still expire; an empty group costs nothing. Clean-up, once the
  devices are gone: ``aws logs delete-log-group --log-group-name <name>``. Delete is therefore
  safe to run twice, and a rolled-back create leaves a group the retry adopts.

Standard library and botocore only; clients are passed in.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from botocore.exceptions import ClientError
from cr_properties import PropertyError, string

LOGGER = logging.getLogger(__name__)

#: The only groups this resource may create or adopt: a Greengrass user component's
#: (the log manager's naming; never an arbitrary group a bad property could name).
NAME_PREFIX = "/aws/greengrass/UserComponent/"
# CloudWatch Logs log group names: 1-512 of [.-_/#A-Za-z0-9] (botocore logs LogGroupName).
NAME_RE = re.compile(r"^[.\-_/#A-Za-z0-9]{1,512}$")
# PutRetentionPolicy retentionInDays: "Possible values are" (botocore logs documentation).
RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557}
    | {2922, 3288, 3653}
)
# "Multiple concurrent requests to update the same resource were in conflict" (botocore logs
# OperationAbortedException): the log manager may create the group at the same moment.
CONCURRENT = "OperationAbortedException"
ATTEMPTS = 5
RETRY_SECONDS = 2.0

Sleep = Callable[[float], None]


@dataclass(frozen=True)
class LogGroupProps:
    name: str
    retention_days: int


def parse_props(props: Mapping[str, Any]) -> LogGroupProps:
    name = string(props, "LogGroupName")
    if not name.startswith(NAME_PREFIX) or not NAME_RE.match(name):
        raise PropertyError(
            f"Property LogGroupName must be a CloudWatch Logs name under {NAME_PREFIX} "
            f"(a Greengrass user component's log group), got {name!r}"
        )
    raw = string(props, "RetentionInDays")
    try:
        days = int(raw)
    except ValueError:
        raise PropertyError(f"Property RetentionInDays must be an integer, got {raw!r}") from None
    if days not in RETENTION_DAYS:
        raise PropertyError(
            f"Property RetentionInDays must be one of {sorted(RETENTION_DAYS)}, got {days}"
        )
    return LogGroupProps(name=name, retention_days=days)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _retrying(call: Callable[[], Any], sleep: Sleep) -> None:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            call()
            return
        except ClientError as error:
            if _code(error) != CONCURRENT or attempt == ATTEMPTS:
                raise
            sleep(RETRY_SECONDS * attempt)


def ensure(logs: Any, props: LogGroupProps, sleep: Sleep = time.sleep) -> bool:
    """Create the group or adopt an existing one, then put the retention. True if adopted."""
    adopted = False

    def create() -> None:
        nonlocal adopted
        try:
            logs.create_log_group(logGroupName=props.name)
        except ClientError as error:
            if _code(error) != "ResourceAlreadyExistsException":
                raise
            adopted = True

    _retrying(create, sleep)
    _retrying(
        lambda: logs.put_retention_policy(
            logGroupName=props.name, retentionInDays=props.retention_days
        ),
        sleep,
    )
    LOGGER.info(
        "%s %s, retention %d days",
        "adopted" if adopted else "created",
        props.name,
        props.retention_days,
    )
    return adopted


def on_event(
    event: Mapping[str, Any], logs_client: Callable[[], Any], sleep: Sleep = time.sleep
) -> dict[str, Any]:
    request = event["RequestType"]
    if request == "Delete":
        # Left in place on purpose (module docstring); nothing to call, so never fails.
        physical = str(event.get("PhysicalResourceId", ""))
        LOGGER.info("leaving %s in place (devices may still write to it)", physical)
        return {"PhysicalResourceId": physical}
    if request not in ("Create", "Update"):
        raise ValueError(f"unknown RequestType {request!r}")
    props = parse_props(event["ResourceProperties"])
    adopted = ensure(logs_client(), props, sleep)
    return {
        "PhysicalResourceId": props.name,
        "Data": {"LogGroupName": props.name, "Adopted": "true" if adopted else "false"},
    }
