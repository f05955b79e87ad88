"""Promotion replaces the fleet's release with the canary's; it never merges the two.

A component the canary no longer pins (a part dropped from the device class) must leave the
fleet release too, or the fleet deployment keeps deploying a component the canary proved it can
run without. No synth: the assembly is one hand-written template carrying the canary
deployment's ring metadata, as ``cdk synth`` writes it."""

from __future__ import annotations

import json
from pathlib import Path

from rollout import promote


def canary_assembly(root: Path, components: dict[str, str]) -> Path:
    """A cloud assembly whose dev/jetson canary deployment pins ``components`` (name -> version)."""
    folder = root / "cdk.out" / "assembly-dev"
    folder.mkdir(parents=True)
    deployment = {
        "Type": promote.DEPLOYMENT_TYPE,
        "Metadata": {promote.RING_METADATA: {"stage": "dev", "class": "jetson", "ring": "canary"}},
        "Properties": {
            "Components": {name: {"ComponentVersion": v} for name, v in components.items()}
        },
    }
    template = {"Resources": {"Canary": deployment}}
    (folder / "dev-Pipeline.template.json").write_text(json.dumps(template))
    return root / "cdk.out"


def test_a_component_the_canary_dropped_leaves_the_fleet_release(tmp_path: Path) -> None:
    previous = {"x.Model": {"version": "1.0.6"}, "x.Dropped": {"version": "1.0.2"}}
    cdk_json = tmp_path / "cdk.json"
    cdk_json.write_text(json.dumps({"context": {"releases": {"dev": {"jetson": previous}}}}))
    assembly = canary_assembly(tmp_path, {"x.Model": "1.0.7"})

    lines = promote.promote(assembly, cdk_json, "dev", "jetson")

    release = json.loads(cdk_json.read_text())["context"]["releases"]["dev"]["jetson"]
    assert release == {"x.Model": {"version": "1.0.7"}}
    assert lines == ["  x.Dropped: 1.0.2 -> -", "  x.Model: 1.0.6 -> 1.0.7"]


def test_a_configuration_merge_the_canary_no_longer_sets_is_not_kept(tmp_path: Path) -> None:
    """The canary's pin replaces the previous pin whole: a ``merge`` from the previous release
    must not survive when the canary deploys the component without one."""
    previous = {"x.Model": {"version": "1.0.6", "merge": {"threshold": 0.9}}}
    cdk_json = tmp_path / "cdk.json"
    cdk_json.write_text(json.dumps({"context": {"releases": {"dev": {"jetson": previous}}}}))

    promote.promote(canary_assembly(tmp_path, {"x.Model": "1.0.7"}), cdk_json, "dev", "jetson")

    release = json.loads(cdk_json.read_text())["context"]["releases"]["dev"]["jetson"]
    assert release == {"x.Model": {"version": "1.0.7"}}
