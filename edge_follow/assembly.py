"""The stage's topic prefix, read from a synthesized cloud assembly (``cdk.out``): the
Pipeline stack's ``PredictionsTopic`` output (``device_contract.topics.predictions_output``).

A cloud assembly is ``manifest.json`` naming its artifacts; each stage is a nested assembly
(type ``cdk:cloud-assembly``, its properties' ``displayName`` the stage, as
``device_sim/assembly.py`` reads it) whose stacks (type
``aws:cloudformation:stack``) name their template (aws-cdk-lib cloud-assembly-schema,
``ArtifactType``). Read with the standard library: following predictions needs no CDK.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from device_contract import topics
from edge_follow.sources import FollowError
from stacks import synth_stamp

OUTPUT = "PredictionsTopic"


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FollowError(f"{path} is missing: is {path.parent} a cloud assembly?") from None
    except (OSError, ValueError) as err:
        raise FollowError(f"cannot read {path}: {err}") from None


def stage_prefix(assembly: Path, stage: str) -> str | None:
    """The prefix ``stage`` publishes under in ``assembly``; None when there is no assembly
    there. :class:`FollowError` when there is one without that stage or without the output."""
    if not (assembly / "manifest.json").is_file():
        return None
    # only a failed synth matters here: the topic prefix, not the rest of cdk.json, is read
    stale = synth_stamp.problem(assembly, check_cdk_json=False)
    if stale is not None:
        raise FollowError(f"{stale}; or pass --topic-prefix")
    manifest = _json(assembly / "manifest.json")
    nested = {
        a.get("properties", {}).get("displayName", a.get("displayName", name)): a.get(
            "properties", {}
        ).get("directoryName")
        for name, a in manifest.get("artifacts", {}).items()
        if isinstance(a, dict) and a.get("type") == "cdk:cloud-assembly"
    }
    if stage not in nested or not isinstance(nested[stage], str):
        known = ", ".join(sorted(str(s) for s in nested)) or "none"
        raise FollowError(
            f"no stage {stage!r} in the cloud assembly {assembly} (stages there: {known}); "
            "pass --stage, or --topic-prefix"
        )
    directory = assembly / nested[stage]
    inner = _json(directory / "manifest.json")
    for artifact in inner.get("artifacts", {}).values():
        if not isinstance(artifact, dict) or artifact.get("type") != "aws:cloudformation:stack":
            continue
        template_file = artifact.get("properties", {}).get("templateFile")
        if not isinstance(template_file, str):
            continue
        output = _json(directory / template_file).get("Outputs", {}).get(OUTPUT, {})
        value = output.get("Value") if isinstance(output, dict) else None
        if isinstance(value, str):
            prefix = topics.prefix_of_predictions_output(value)
            if prefix is not None:
                return prefix
    raise FollowError(
        f"stage {stage!r} in {assembly} has no {OUTPUT} output: synthesize it again "
        "(npx cdk synth), or pass --topic-prefix"
    )
