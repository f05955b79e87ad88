#!/usr/bin/env python3
"""CDK entry point: read configuration, instantiate the stacks of each selected stage.

    cdk synth                 # the stage named by context "stage" (cdk.json: dev)
    cdk synth -c stage=prod   # another stage
    cdk synth -c stage=all    # every stage in cdk.json
    cdk synth -c input_shape=1,3,300,300 -c neo_target_device=jetson_nano   # overrides
    cdk synth -c demo_device=true   # adds the demo core device stack (EC2)

Stacks are environment-agnostic unless an account/region is given with ``-c account=...
-c region=...`` or ``CDK_DEPLOY_ACCOUNT`` / ``CDK_DEPLOY_REGION``.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from app_config import DEFAULTS, ConfigError, PipelineConfig, did_you_mean, load_config
from stacks import synth_stamp
from stacks.artifact_stack import ArtifactStack
from stacks.demo_device_stack import DemoDeviceStack
from stacks.device_stack import DeviceStack
from stacks.fleet_stack import FleetStack
from stacks.pipeline_stack import PipelineStack

REPO_ROOT = Path(__file__).resolve().parent
# Context keys this app reads besides the configuration keys in app_config.DEFAULTS.
APP_KEYS = {"stage", "stages", "pipeline", "account", "region", "releases"}
_PLAIN_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
# A key a user may have meant as one of ours: letters, digits, - and _ ("Pipeline",
# "device-classes"). The CDK's own context keys start with "@" or hold ":" ("@aws-cdk/...",
# "aws:cdk:..."), and lookups cached in cdk.context.json hold ":" too.
_WORD_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def _environment(context: Mapping[str, Any]) -> cdk.Environment | None:
    account = context.get("account") or os.environ.get("CDK_DEPLOY_ACCOUNT")
    region = context.get("region") or os.environ.get("CDK_DEPLOY_REGION")
    if not account and not region:
        return None
    return cdk.Environment(account=account, region=region)


def _check_keys(context: Mapping[str, Any]) -> None:
    """A mistyped ``-c key=value`` or top-level cdk.json context key (a section such as
    ``pipline``) must fail, naming what was probably meant, not be silently ignored."""
    known = [*APP_KEYS, *DEFAULTS]
    for key, value in context.items():
        if key in APP_KEYS or key in DEFAULTS or not _WORD_KEY.match(key):
            continue
        hint = did_you_mean(key, known)
        if not hint and not _PLAIN_KEY.match(key):
            continue  # "SomeTool" context of another tool: not ours to refuse
        what = "section" if isinstance(value, Mapping) else "key"
        raise ConfigError(
            key,
            "{...}" if isinstance(value, Mapping) else value,
            f"unknown {what} (a -c key or a top-level cdk.json context entry){hint}; the "
            "sections are pipeline, stages and releases; the keys: README, Configuration",
        )


def add_stage(app: cdk.App, config: PipelineConfig, env: cdk.Environment | None) -> cdk.Stage:
    stage = cdk.Stage(app, config.stage, env=env)
    name = f"{config.prefix}-{config.stage}"
    artifacts = ArtifactStack(
        stage,
        "Artifacts",
        config=config,
        stack_name=f"{name}-artifacts",
        description="Edge AI pipeline: artifact bucket (stateful, retained)",
        termination_protection=config.stage == "prod",
    )
    devices = DeviceStack(
        stage,
        "Devices",
        config=config,
        bucket=artifacts.bucket,
        stack_name=f"{name}-devices",
        description="Edge AI pipeline: Greengrass core-device prerequisites",
    )
    PipelineStack(
        stage,
        "Pipeline",
        config=config,
        bucket=artifacts.bucket,
        repo_root=REPO_ROOT,
        stack_name=f"{name}-pipeline",
        description="Edge AI pipeline: training, Neo compilation, packaging, Greengrass",
    ).add_stack_dependency(devices)
    FleetStack(
        stage,
        "Fleet",
        config=config,
        bucket=artifacts.bucket,
        stack_name=f"{name}-fleet",
        description="Edge AI pipeline: fleet metrics (IoT rule to CloudWatch), dashboard, alarms",
    )
    if config.demo_device.enabled:
        DemoDeviceStack(
            stage,
            "DemoDevice",
            config=config,
            prerequisites=devices.prerequisites,
            stack_name=f"{name}-demo-device",
            description="Edge AI pipeline: demo Greengrass core device on EC2 (optional)",
        )
    cdk.Aspects.of(stage).add(AwsSolutionsChecks(verbose=True))
    return stage


def create_app(
    context: Mapping[str, Any] | None = None,
    outdir: str | None = None,
    warn: Callable[[str], None] | None = None,
) -> cdk.App:
    """The app with every selected stage; ``context`` is for tests (as if from cdk.json).
    ``warn`` receives each stage's configuration warnings (``PipelineConfig.warnings``), which
    are also the pipeline stack's synth warnings: the CDK CLI prints those only for the stacks
    a command selects, and ``cdk synth`` of this app selects none."""
    # aws-cdk-lib's built-in CloudFormation validation (a WASM schema checker run at every
    # synth) is off: it took 3.1 of the 6 CPU-seconds of Node synth for one stage (node
    # --cpu-prof, bench/synth.py --profile), and it repeats what the pinned cfn-lint already
    # checks on every template in the tests and in scripts/main.sh (tests/infra/test_cfn_lint.py).
    app = cdk.App(
        context=dict(context) if context is not None else None,
        outdir=outdir,
        builtin_cloud_formation_validation=False,
    )
    all_context = app.node.get_all_context()
    _check_keys(all_context)
    selected = str(all_context.get("stage") or "dev")
    stages = all_context.get("stages") or {}
    names = sorted(stages) if selected == "all" else [selected]
    env = _environment(all_context)
    configs = [load_config(all_context, stage_name) for stage_name in names]
    check_stages_apart(configs)
    for config in configs:
        add_stage(app, config, env)
        for warning in config.warnings:
            if warn is not None:
                warn(f"stage {config.stage}: {warning}")
    return app


def check_stages_apart(configs: Sequence[PipelineConfig]) -> None:
    """Two stages deployed to one account and region must not share a thing group: each
    stage's devices stack creates its groups (botocore iot ``CreateThingGroup``: a name that
    exists is ``ResourceAlreadyExistsException``), and a group carries one deployment per
    target (greengrassv2 ``CreateDeployment`` replaces the target's previous one), so the
    second stage's deploy would fail or take the first stage's devices. One thing group set
    for every stage (``-c thing_group=X -c stage=all``, or ``pipeline.thing_group`` with no
    stage override) is the usual way to get here."""
    owner: dict[str, str] = {}
    for config in configs:
        for group in config.thing_groups:
            if group in owner and owner[group] != config.stage:
                raise ConfigError(
                    f"stages.{config.stage}.thing_group",
                    group,
                    f"stage {owner[group]} uses this thing group too; each stage needs its own "
                    "(set stages.<stage>.thing_group, or the class's thing_group, per stage)",
                )
            owner.setdefault(group, config.stage)


def _direct_run_context() -> dict[str, Any] | None:
    """cdk.json's context when ``python app.py`` runs without the CDK CLI, else None.

    The CLI passes cdk.json's context (with any ``-c``) in ``CDK_CONTEXT_JSON`` and names the
    output folder in ``CDK_OUTDIR`` (aws-cdk-lib cx-api: ``cxapi.CONTEXT_ENV``,
    ``cxapi.OUTDIR_ENV``); without them the app would see no stages at all.
    """
    if os.environ.get("CDK_OUTDIR") or os.environ.get("CDK_CONTEXT_JSON"):
        return None
    context: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    return context


def main() -> int:
    context = _direct_run_context()
    if context is not None:
        print(
            "note: run without the CDK CLI: using cdk.json's context, output in cdk.out",
            file=sys.stderr,
        )
    outdir = str(Path.cwd() / "cdk.out") if context is not None else None
    # The folder the templates go to (the CLI names it in CDK_OUTDIR), stamped so that a failed
    # synth is not mistaken for the previous one's templates (stacks/synth_stamp.py).
    stamp_dir = outdir or os.environ.get("CDK_OUTDIR")

    def stamp(status: str, **details: Any) -> None:
        if stamp_dir:
            synth_stamp.write(Path(stamp_dir), status, **details)

    stamp(synth_stamp.RUNNING)
    try:
        app = create_app(
            context, outdir=outdir, warn=lambda text: print(f"warning: {text}", file=sys.stderr)
        )
        app.synth()
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        stamp(synth_stamp.FAILED, error=str(error))
        return 2
    except BaseException as error:
        stamp(synth_stamp.FAILED, error=f"{type(error).__name__}: {error}")
        raise
    cdk_json = Path.cwd() / "cdk.json"
    stamp(synth_stamp.COMPLETE, cdk_json=cdk_json if cdk_json.is_file() else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
