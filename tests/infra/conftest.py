"""One synthesized app per configuration (session-scoped), shared by the small tests."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk
from aws_cdk.assertions import Template

import app as cdk_app

if TYPE_CHECKING:
    from device_sim.assembly import Cloud

REPO_ROOT = Path(__file__).resolve().parents[2]
CDK_JSON_CONTEXT: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]


@dataclass
class Synthesized:
    app: cdk.App
    assembly_dir: Path
    stacks: dict[str, cdk.Stack]

    def template(self, name: str) -> Template:
        return Template.from_stack(self.stacks[name])

    def template_json(self, name: str) -> dict[str, Any]:
        return self.template(name).to_json()  # type: ignore[no-any-return]


def synthesize(outdir: Path, **overrides: Any) -> Synthesized:
    """Synthesize the app with cdk.json's context plus ``overrides`` (like ``-c key=value``)."""
    context = {**CDK_JSON_CONTEXT, **overrides}
    app = cdk_app.create_app(context=context, outdir=str(outdir))
    app.synth()
    stacks: dict[str, cdk.Stack] = {}
    for stage in app.node.children:
        if isinstance(stage, cdk.Stage):
            for child in stage.node.children:
                if isinstance(child, cdk.Stack):
                    stacks[f"{stage.stage_name}/{child.node.id}"] = child
    return Synthesized(app=app, assembly_dir=outdir, stacks=stacks)


@pytest.fixture(scope="session")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The default configuration (stage dev)."""
    return synthesize(tmp_path_factory.mktemp("dev"))


@pytest.fixture(scope="session")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("prod"), stage="prod")


@pytest.fixture(scope="session")
def byo_jetson(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """A brought model, a named Neo device, and the public variant.DLR runtime."""
    return synthesize(
        tmp_path_factory.mktemp("byo"),
        model_artifact_uri="s3://my-models/vgg16/model.tar.gz",
        architecture="vgg16",  # a brought model is named (app_config refuses the default)
        neo_target_device="jetson_nano",
        neo_target_platform="",
        runtime_component="variant.DLR",
        nucleus_version="2.12.6",  # inside variant.DLR's nucleus range (public_components.py)
    )


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The default configuration plus the optional demo core device stack."""
    return synthesize(tmp_path_factory.mktemp("demo"), demo_device="true")


def deploy(synthesized: Synthesized, stage: str, workdir: Path) -> Cloud:
    """The stage's stacks deployed into device_sim's simulated account: intrinsics resolved,
    roles with their inline and attached policies, IoT policies, outputs (device_sim.assembly)."""
    from device_sim.assembly import Env, default_stand_ins, deploy_stage, load_stage
    from device_sim.device import model_input_shape

    loaded = load_stage(synthesized.assembly_dir, stage)
    stand_ins = default_stand_ins(workdir, model_input_shape(loaded))
    return deploy_stage(loaded, Env(), stand_ins)


@pytest.fixture(scope="session")
def dev_cloud(dev: Synthesized, tmp_path_factory: pytest.TempPathFactory) -> Cloud:
    return deploy(dev, "dev", tmp_path_factory.mktemp("dev-cloud"))


@pytest.fixture(scope="session")
def prod_cloud(prod: Synthesized, tmp_path_factory: pytest.TempPathFactory) -> Cloud:
    return deploy(prod, "prod", tmp_path_factory.mktemp("prod-cloud"))


# Three device classes (the "done" configuration): x86_64 DLR, aarch64 jetson_nano DLR
# with a canary ring and a promoted release, x86_64 ONNX.
THREE_CLASSES: dict[str, Any] = {
    "gateway": {"thing_group": "EdgeAiDevGateways", "neo_target_platform": "LINUX/X86_64"},
    "jetson": {
        "thing_group": "EdgeAiDevJetsons",
        "canary_thing_group": "EdgeAiDevJetsonsCanary",
        "neo_target_device": "jetson_nano",
    },
    "onnx": {"thing_group": "EdgeAiDevOnnx", "build": "onnx", "platform_architecture": "amd64"},
}
JETSON_RELEASE: dict[str, Any] = {
    "com.example.edgeai.dev.jetson.Model": {"version": "1.0.1"},
    "com.example.edgeai.dev.jetson.DlrRuntime": {"version": "1.0.2"},
    "com.example.edgeai.dev.jetson.DlrInference": {"version": "1.0.3", "merge": {"TopK": 5}},
    "aws.greengrass.LogManager": {"version": "2.3.7"},
}


@pytest.fixture(scope="session")
def three_classes(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(
        tmp_path_factory.mktemp("three"),
        device_classes=THREE_CLASSES,
        releases={"dev": {"jetson": JETSON_RELEASE}},
    )
