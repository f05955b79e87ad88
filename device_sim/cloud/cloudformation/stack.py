"""What a cloud assembly holds (stack artifacts, assets) and what a deployed stack is."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from device_sim.cloud.errors import AssemblyError


@dataclass(frozen=True)
class AssetFile:
    asset_hash: str
    source: Path
    packaging: str  # "file" or "zip"
    bucket_template: str
    object_key: str


@dataclass
class StackArtifact:
    artifact_id: str
    stack_name: str
    display_name: str
    template: dict[str, Any]
    assets: dict[str, AssetFile]
    dependencies: list[str]


@dataclass
class Stage:
    name: str
    directory: Path
    stacks: list[StackArtifact]  # in deployment (dependency) order

    def stack(self, suffix: str) -> StackArtifact:
        for s in self.stacks:
            if s.display_name.endswith("/" + suffix):
                return s
        raise AssemblyError(f"stage {self.name} has no stack {suffix!r}")


@dataclass
class DeployedResource:
    logical_id: str
    type: str
    properties: dict[str, Any]
    physical_id: str
    attributes: dict[str, Any]
    # The resource attributes CloudFormation reads on delete and replacement (User Guide,
    # "DeletionPolicy attribute", "UpdateReplacePolicy attribute"); default Delete.
    deletion_policy: str = "Delete"
    update_replace_policy: str = "Delete"
    created_by: int = 0  # the stack operation that created this physical resource


@dataclass
class StackEvent:
    logical_id: str
    status: str
    reason: str = ""


@dataclass
class DeployedStack:
    name: str
    display_name: str
    resources: dict[str, DeployedResource]
    outputs: dict[str, Any]
    # Stack status names as CloudFormation's DescribeStacks returns them (botocore
    # cloudformation ``StackStatus`` enum: CREATE_COMPLETE, ROLLBACK_COMPLETE, UPDATE_COMPLETE,
    # UPDATE_ROLLBACK_COMPLETE, UPDATE_ROLLBACK_FAILED, DELETE_COMPLETE, DELETE_FAILED, ...).
    status: str = "CREATE_COMPLETE"
    stack_id: str = ""
    artifact: StackArtifact | None = None
    events: list[StackEvent] = field(default_factory=list)
    retained: list[DeployedResource] = field(default_factory=list)

    def failures(self) -> list[StackEvent]:
        return [e for e in self.events if e.status.endswith("_FAILED")]
