"""The pipeline stack alone, in a bare app: no cdk-nag aspect, no other stacks (fast).

For tests of one behaviour of the constructs; the whole app is synthesized by conftest.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3

from app_config import load_config
from stacks.pipeline_stack import PipelineStack
from tests.infra.conftest import CDK_JSON_CONTEXT, REPO_ROOT


def pipeline_warnings(outdir: Path, **overrides: Any) -> list[str]:
    """The warnings synth gives for the dev stage's pipeline stack (what ``cdk synth`` prints
    as ``[Warning at /Pipeline] ...``), with ``overrides`` as ``-c key=value``."""
    artifact = _synth(outdir, REPO_ROOT, None, overrides)
    return [
        str(message.entry.data)
        for message in artifact.messages
        if message.level == cdk.cx_api.SynthesisMessageLevel.WARNING
    ]


def pipeline_template(
    outdir: Path,
    *,
    repo_root: Path = REPO_ROOT,
    context: dict[str, Any] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """The dev stage's pipeline template with cdk.json's context, ``context`` merged over it
    (e.g. ``releases``) and ``overrides`` as ``-c key=value``."""
    return _synth(outdir, repo_root, context, overrides).template  # type: ignore[no-any-return]


def _synth(
    outdir: Path, repo_root: Path, context: dict[str, Any] | None, overrides: dict[str, Any]
) -> Any:
    merged = {**CDK_JSON_CONTEXT, **(context or {}), **overrides}
    config = load_config(merged, "dev")
    app = cdk.App(outdir=str(outdir))
    # An imported bucket (a literal name): no cross-stack reference to synthesize.
    shared = cdk.Stack(app, "Shared")
    cdk.CfnWaitConditionHandle(shared, "NotEmpty")  # an empty stack draws a warning
    bucket = s3.Bucket.from_bucket_name(shared, "Bucket", "artifact-bucket")
    stack = PipelineStack(
        app,
        "Pipeline",
        config=config,
        bucket=bucket,
        repo_root=repo_root,
    )
    return app.synth().get_stack_artifact(stack.artifact_id)
