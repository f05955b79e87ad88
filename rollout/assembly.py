"""The templates a cloud assembly holds *now*: the ones its ``manifest.json`` lists.

A synth writes ``manifest.json`` afresh but leaves what an earlier synth wrote beside it: after
``cdk synth -c stage=prod --output cdk.out``, ``cdk.out/assembly-dev/`` still holds the last dev
synth's templates, which the manifest no longer names. Reading every ``*.template.json`` under
the folder would take those as current. The manifest names each stage as a nested assembly
(type ``cdk:cloud-assembly``, ``properties.directoryName``) whose own manifest names its stacks
(type ``aws:cloudformation:stack``, ``properties.templateFile``) (aws-cdk-lib
cloud-assembly-schema, ``ArtifactType``). A folder with no manifest (a hand-made one) is read
whole. Standard library only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

NESTED = "cdk:cloud-assembly"
STACK = "aws:cloudformation:stack"


def _artifacts(folder: Path) -> dict[str, Any]:
    manifest = json.loads((folder / "manifest.json").read_text())
    artifacts = manifest.get("artifacts", {}) if isinstance(manifest, dict) else {}
    return artifacts if isinstance(artifacts, dict) else {}


def templates(assembly: Path) -> list[Path]:
    """The template files ``assembly`` lists (every stage's), sorted; every
    ``*.template.json`` when there is no ``manifest.json``."""
    if not (assembly / "manifest.json").is_file():
        return sorted(assembly.rglob("*.template.json"))
    found: list[Path] = []
    folders = [assembly]
    while folders:
        folder = folders.pop()
        for artifact in _artifacts(folder).values():
            if not isinstance(artifact, dict):
                continue
            properties = artifact.get("properties") or {}
            if artifact.get("type") == NESTED and properties.get("directoryName"):
                nested = folder / str(properties["directoryName"])
                if (nested / "manifest.json").is_file():
                    folders.append(nested)
            elif artifact.get("type") == STACK and properties.get("templateFile"):
                found.append(folder / str(properties["templateFile"]))
    return sorted(path for path in found if path.is_file())
