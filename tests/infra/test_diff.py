"""The diff a reviewer sees: synthesize twice with one input changed and compare templates."""

from __future__ import annotations

import json
import shutil

import pytest

import app as cdk_app
from tests.infra.conftest import REPO_ROOT, synthesize
from tests.infra.rendering import component_recipes


def changed(before: dict, after: dict) -> dict[str, set[str]]:
    """Logical IDs of resources that differ, grouped by type (added/removed count as changed)."""
    a, b = before["Resources"], after["Resources"]
    result: dict[str, set[str]] = {}
    for logical_id in set(a) | set(b):
        if json.dumps(a.get(logical_id), sort_keys=True) != json.dumps(
            b.get(logical_id), sort_keys=True
        ):
            type_ = (a.get(logical_id) or b.get(logical_id))["Type"]
            result.setdefault(type_, set()).add(logical_id)
    return result


def pipeline(synthesized) -> dict:
    return synthesized.template_json("dev/Pipeline")


@pytest.fixture(scope="module")
def edited_component(tmp_path_factory, monkeypatch_module) -> dict:
    root = tmp_path_factory.mktemp("repo")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")
    for folder in ("component_src", "training_src"):
        shutil.copytree(REPO_ROOT / folder, root / folder, ignore=ignore)
    main = root / "component_src" / "edge_inference" / "__init__.py"
    main.write_text(main.read_text() + "\n# a reviewer should see only this component change\n")
    monkeypatch_module.setattr(cdk_app, "REPO_ROOT", root)
    return pipeline(synthesize(tmp_path_factory.mktemp("edited")))


@pytest.fixture(scope="module")
def monkeypatch_module():
    patcher = pytest.MonkeyPatch()
    yield patcher
    patcher.undo()


def test_no_change_gives_identical_templates(dev, tmp_path_factory) -> None:
    again = synthesize(tmp_path_factory.mktemp("again"))
    for name in dev.stacks:
        assert again.template_json(name) == dev.template_json(name), name


def test_component_src_change_touches_only_the_inference_component_and_deployment(
    dev, edited_component
) -> None:
    diff = changed(pipeline(dev), edited_component)
    assert set(diff) == {
        "Custom::PublishedArtifact",
        "AWS::GreengrassV2::ComponentVersion",
        "AWS::GreengrassV2::Deployment",
    }
    (component,) = diff["AWS::GreengrassV2::ComponentVersion"]
    assert component.startswith("InferenceComponent")
    (artifact,) = diff["Custom::PublishedArtifact"]
    assert artifact.startswith("InferenceArtifact")


def test_neo_target_change_leaves_training_alone(dev, tmp_path_factory) -> None:
    jetson = synthesize(
        tmp_path_factory.mktemp("jetson"), neo_target_device="jetson_nano", neo_target_platform=""
    )
    diff = changed(pipeline(dev), pipeline(jetson))
    for type_ in (
        "Custom::CompilationJob",
        "Custom::ModelPackage",
        "AWS::GreengrassV2::Deployment",
    ):
        assert type_ in diff, type_
    versions = diff["AWS::GreengrassV2::ComponentVersion"]
    assert any(v.startswith("ModelComponent") for v in versions)
    assert not any(v.startswith("RuntimeComponent") for v in versions)
    for untouched in (
        "Custom::TrainingJob",
        "AWS::CloudFormation::WaitCondition",
        "AWS::CloudFormation::WaitConditionHandle",
        "AWS::Events::Rule",
    ):
        assert untouched not in diff, untouched


def test_training_input_change_renames_the_job_and_its_wait_condition(
    dev, tmp_path_factory
) -> None:
    retrained = synthesize(tmp_path_factory.mktemp("retrain"), run_id="2")
    diff = changed(pipeline(dev), pipeline(retrained))
    assert "Custom::TrainingJob" in diff
    # New digest, new handle and condition: CloudFormation replaces them and waits afresh.
    assert len(diff["AWS::CloudFormation::WaitCondition"]) == 2
    assert "Custom::CompilationJob" in diff  # the new model is compiled again


def test_unchanged_components_keep_their_versions(dev, edited_component) -> None:
    before = component_recipes(pipeline(dev))
    after = component_recipes(edited_component)
    for part in ("Model", "DlrRuntime"):
        name = f"com.example.edgeai.dev.{part}"
        assert after[name]["ComponentVersion"] == before[name]["ComponentVersion"]
    inference = "com.example.edgeai.dev.DlrInference"
    assert after[inference]["ComponentVersion"] != before[inference]["ComponentVersion"]
