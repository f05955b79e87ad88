"""Snapshot of every stack's template, per configuration.

A change here is a change a reviewer will see in `cdk diff`. After an intended change, review
the diff and refresh with `pytest tests/infra/test_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

import pytest
from syrupy.extensions.json import JSONSnapshotExtension


@pytest.fixture
def snapshot_json(snapshot):
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize("configuration", ["dev", "prod", "byo_jetson", "demo"])
def test_templates_match_snapshots(configuration, request, snapshot_json) -> None:
    synthesized = request.getfixturevalue(configuration)
    for name in sorted(synthesized.stacks):
        assert synthesized.template_json(name) == snapshot_json(name=name.replace("/", "-"))
