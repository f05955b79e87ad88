"""What every resource provider is handed (:class:`Context`), what a create returns, and how a
resource operation fails: apart from :mod:`~device_sim.cloud.cloudformation.providers` so that
the custom-resource provider, which the dispatcher picks, does not import the dispatcher back."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from device_sim.cloud.account import Cloud
from device_sim.cloud.cloudformation.stack import StackArtifact
from device_sim.cloud.standins import StandIns


@dataclass
class Context:
    cloud: Cloud
    artifact: StackArtifact
    stack_id: str
    operation: int
    stand_ins: StandIns | None
    brought: set[str] = field(default_factory=set)

    @property
    def env(self) -> Any:
        return self.cloud.env

    def generated_name(self, logical: str, limit: int, lower: bool = False) -> str:
        """CloudFormation names unnamed resources ``<stack>-<logical id>-<random>`` ("Name
        type" page of the CloudFormation User Guide); the random part is a digest of the
        account, region, stack, logical ID and the operation that creates it (a replacement
        gets a new name, as in AWS)."""
        env, stack = self.env, self.artifact.stack_name
        seed = f"{env.account}/{env.region}/{stack}/{logical}"
        if self.operation > 1:
            seed += f"/{self.operation}"
        suffix = hashlib.sha256(seed.encode()).hexdigest()
        name = f"{stack[: limit // 2]}-{logical[: limit // 3]}-{suffix[:12].upper()}"
        name = name[:limit]
        return name.lower() if lower else name


Created = tuple[str, dict[str, Any]]  # physical ID, Fn::GetAtt attributes


class ResourceFailed(RuntimeError):
    """A resource operation failed (CloudFormation's status reason)."""
