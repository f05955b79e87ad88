"""Amazon CloudWatch Logs in the simulated account: log groups.

botocore's Logs model (``botocore/data/logs/2014-03-28/service-2.json``): ``CreateLogGroup``
("Log group names must be unique within a Region for an Amazon Web Services account") of an
existing name -> ``ResourceAlreadyExistsException`` ("The specified resource already exists");
``DeleteLogGroup`` of a missing one -> ``ResourceNotFoundException``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from device_sim.cloud.env import Env
from device_sim.cloud.errors import ServiceError


@dataclass
class LogGroup:
    name: str
    retention_days: int | None
    created_by: str  # "stack <name>" or "device <thing>": who called CreateLogGroup


class LogsBackend:
    def __init__(self, env: Env) -> None:
        self.env = env
        self.groups: dict[str, LogGroup] = {}

    def arn(self, name: str) -> str:
        return self.env.arn("logs", f"log-group:{name}:*")

    def create_log_group(
        self, name: str, created_by: str, retention_days: int | None = None
    ) -> str:
        if name in self.groups:
            raise ServiceError(
                "CreateLogGroup",
                "ResourceAlreadyExistsException",
                f"The specified log group already exists: {name} "
                f"(created by {self.groups[name].created_by})",
                400,
            )
        self.groups[name] = LogGroup(name, retention_days, created_by)
        return self.arn(name)

    def put_retention_policy(self, name: str, days: int | None) -> None:
        self.groups[name].retention_days = days

    def delete_log_group(self, name: str) -> None:
        if name not in self.groups:
            raise ServiceError(
                "DeleteLogGroup",
                "ResourceNotFoundException",
                f"The specified log group does not exist: {name}",
                400,
            )
        del self.groups[name]

    def device_uploads(self, thing: str, names: list[str]) -> list[str]:
        """The log manager on a running core device uploading to ``names``: a
        ``PutLogEvents`` answered ``ResourceNotFoundException`` makes it create the group and
        stream and retry (aws-greengrass-logmanager ``CloudWatchLogsUploader.uploadLogs``:
        ``catch (ResourceNotFoundException e) { createNewLogGroup(logGroupName); ...}``).
        Returns the groups it created."""
        created = []
        for name in names:
            if name not in self.groups:
                self.create_log_group(name, f"device {thing}")
                created.append(name)
        return created

    def client(self, caller: str) -> LogsClient:
        return LogsClient(self, caller)


class LogsClient:
    """The boto3 ``logs`` client calls the project's handlers make (``log_group_logic``)."""

    def __init__(self, backend: LogsBackend, caller: str) -> None:
        self.backend = backend
        self.caller = caller

    def create_log_group(self, logGroupName: str, **_: Any) -> dict[str, Any]:
        self.backend.create_log_group(logGroupName, self.caller)
        return {}

    def put_retention_policy(self, logGroupName: str, retentionInDays: int) -> dict[str, Any]:
        if logGroupName not in self.backend.groups:
            raise ServiceError(
                "PutRetentionPolicy",
                "ResourceNotFoundException",
                f"The specified log group does not exist: {logGroupName}",
            )
        self.backend.put_retention_policy(logGroupName, retentionInDays)
        return {}
