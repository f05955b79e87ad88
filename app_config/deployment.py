"""The deployment section: the rollout and abort policy of every deployment (plain keys)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edge_constructs.props import DeploymentConfig


def parse_deployment(values: Mapping[str, Any]) -> DeploymentConfig:
    """The deployment policy from the parsed plain keys (bounds: app_config/keys.py)."""
    return DeploymentConfig(
        timeout_minutes=values["deployment_timeout_minutes"],
        rollout_max_per_minute=values["rollout_max_per_minute"],
        abort_failure_threshold_percent=values["abort_failure_threshold_percent"],
        abort_min_executed_things=values["abort_min_executed_things"],
        component_update_policy=values["component_update_policy"],
        component_update_timeout_seconds=values["component_update_timeout_seconds"],
    )
