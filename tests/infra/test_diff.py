"""The diff a reviewer sees: synthesize twice with one input changed and compare templates."""

from __future__ import annotations

import json
import shutil

import pytest

import app as cdk_app
from tests.infra.conftest import REPO_ROOT, synthesize
from tests.infra.fast import pipeline_template
from tests.infra.rendering import COMPONENT_VERSION_TYPE, component_recipes


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
        COMPONENT_VERSION_TYPE,
        "Custom::GreengrassDeployment",
    }
    (component,) = diff[COMPONENT_VERSION_TYPE]
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
        "Custom::GreengrassDeployment",
    ):
        assert type_ in diff, type_
    versions = diff[COMPONENT_VERSION_TYPE]
    assert any(v.startswith("ModelComponent") for v in versions)
    # The runtime's manifest names the platform (jetson_nano: aarch64), so it moves too.
    assert any(v.startswith("RuntimeComponent") for v in versions)
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


# ------------------------------------------------------------------------------------------
# Each kind of input yields a new job name or component version (the pipeline stack alone).


def identities(template: dict) -> dict[str, str]:
    """Job names (``train``, ``neo``) and ``<component name>`` -> version of one template."""
    result = {}
    for resource in template["Resources"].values():
        if resource["Type"] == "Custom::TrainingJob":
            result["train"] = resource["Properties"]["JobName"]
        if resource["Type"] == "Custom::CompilationJob":
            result["neo"] = resource["Properties"]["JobName"]
    for name, recipe in component_recipes(template).items():
        result[name] = recipe["ComponentVersion"]
    return result


MODEL = "com.example.edgeai.dev.Model"
RUNTIME = "com.example.edgeai.dev.DlrRuntime"
INFERENCE = "com.example.edgeai.dev.DlrInference"


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> dict[str, str]:
    return identities(pipeline_template(tmp_path_factory.mktemp("base")))


def copy_repo(root) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")
    for folder in ("component_src", "training_src"):
        shutil.copytree(REPO_ROOT / folder, root / folder, ignore=ignore)


@pytest.mark.parametrize(
    "overrides",
    [
        {"hyperparameters": {"epochs": "11", "batch-size": "32", "lr": "0.001"}},
        {"training_data_uri": "s3://my-data/train/"},
        {"training_data_uri": "s3://my-data/train/", "validation_data_uri": "s3://my-data/v/"},
        {"training_instance_type": "ml.c5.2xlarge"},
        {"run_id": "2"},
        {"architecture": "resnet18"},
    ],
    ids=["hyperparameters", "data", "validation-data", "instance", "run_id", "architecture"],
)
def test_each_training_input_renames_the_training_job(tmp_path, baseline, overrides) -> None:
    after = identities(pipeline_template(tmp_path, **overrides))
    assert after["train"] != baseline["train"]
    # ...and everything built from the model follows, by construction.
    assert after["neo"] != baseline["neo"]
    assert after[MODEL] != baseline[MODEL]
    assert after[INFERENCE] != baseline[INFERENCE]  # it pins the model version
    assert after[RUNTIME] == baseline[RUNTIME]


def test_training_src_renames_the_training_job(tmp_path, baseline) -> None:
    copy_repo(tmp_path / "repo")
    script = tmp_path / "repo" / "training_src" / "train.py"
    script.write_text(script.read_text() + "\n# changed\n")
    after = identities(pipeline_template(tmp_path / "out", repo_root=tmp_path / "repo"))
    assert after["train"] != baseline["train"]
    assert after[MODEL] != baseline[MODEL]


def test_upstream_model_renames_the_compilation_job(tmp_path) -> None:
    one = identities(
        pipeline_template(
            tmp_path / "a", model_artifact_uri="s3://models-a/m/model.tar.gz", architecture="mine"
        )
    )
    two = identities(
        pipeline_template(
            tmp_path / "b", model_artifact_uri="s3://models-a/n/model.tar.gz", architecture="mine"
        )
    )
    assert "train" not in one
    assert one["neo"] != two["neo"]
    assert one[MODEL] != two[MODEL]


def test_target_renames_compilation_not_training(tmp_path, baseline) -> None:
    after = identities(pipeline_template(tmp_path, neo_target_platform="LINUX/ARM64"))
    assert after["train"] == baseline["train"]
    assert after["neo"] != baseline["neo"]
    assert after[MODEL] != baseline[MODEL]


def test_packager_code_gives_a_new_model_version(tmp_path, baseline, monkeypatch) -> None:
    from edge_constructs.model_packaging import construct as packaging

    runtime = tmp_path / "packaging_runtime"
    shutil.copytree(packaging.RUNTIME_DIR, runtime, ignore=shutil.ignore_patterns("__pycache__"))
    logic = runtime / "packaging_logic.py"
    logic.write_text(logic.read_text() + "\n# a new package layout\n")
    monkeypatch.setattr(packaging, "RUNTIME_DIR", runtime)
    after = identities(pipeline_template(tmp_path / "out"))
    assert after["train"] == baseline["train"] and after["neo"] == baseline["neo"]
    assert after[MODEL] != baseline[MODEL]
    assert after[INFERENCE] != baseline[INFERENCE]


def test_component_code_gives_a_new_inference_version_only(tmp_path, baseline) -> None:
    copy_repo(tmp_path / "repo")
    main = tmp_path / "repo" / "component_src" / "edge_inference" / "__init__.py"
    main.write_text(main.read_text() + "\n# changed\n")
    after = identities(pipeline_template(tmp_path / "out", repo_root=tmp_path / "repo"))
    assert after[INFERENCE] != baseline[INFERENCE]
    for same in ("train", "neo", MODEL, RUNTIME):
        assert after[same] == baseline[same], same


def test_runtime_requirements_give_a_new_runtime_version_only(tmp_path, baseline) -> None:
    copy_repo(tmp_path / "repo")
    requirements = tmp_path / "repo" / "component_src" / "requirements.txt"
    requirements.write_text(requirements.read_text() + "# changed\n")
    after = identities(pipeline_template(tmp_path / "out", repo_root=tmp_path / "repo"))
    assert after[RUNTIME] != baseline[RUNTIME]
    assert after[INFERENCE] != baseline[INFERENCE]  # it pins the runtime version
    assert after[MODEL] == baseline[MODEL]


def test_digest_exclusions_name_real_properties() -> None:
    from edge_constructs.naming import without

    with pytest.raises(ValueError, match="absent properties: Gone"):
        without({"Kept": 1}, {"Gone": "why"})


@pytest.mark.parametrize(
    "overrides",
    [{"inference_top_k": "3"}, {"publish_topic_prefix": "acme/cams"}],
    ids=["top_k", "topic_prefix"],
)
def test_a_component_setting_key_gives_a_new_inference_version_only(
    tmp_path, baseline, overrides
) -> None:
    """Issue 18, "settings that are settings": a ``-c`` component setting is written into the
    inference recipe's DefaultConfiguration, so it makes a new inference component version (and
    deployment), not a configuration update of the running version; nothing upstream moves. The
    README's diff table says so."""
    after = identities(pipeline_template(tmp_path, **overrides))
    assert after[INFERENCE] != baseline[INFERENCE]
    for same in ("train", "neo", MODEL, RUNTIME):
        assert after[same] == baseline[same], same


def test_a_fleet_alarm_key_leaves_the_pipeline_alone(tmp_path) -> None:
    """The alarms live in the fleet stack: a threshold change touches no pipeline resource."""
    before = pipeline_template(tmp_path / "a")
    after = pipeline_template(tmp_path / "b", alarm_failure_rate_percent="9")
    assert json.dumps(after["Resources"], sort_keys=True) == json.dumps(
        before["Resources"], sort_keys=True
    )


@pytest.mark.parametrize(
    ("overrides", "moved"),
    [
        ({"rollout_max_per_minute": "20"}, {"Custom::GreengrassDeployment"}),
        ({"component_update_timeout_seconds": "90"}, {"Custom::GreengrassDeployment"}),
        ({"log_retention_days": "60"}, {"AWS::Logs::LogGroup", "Custom::GreengrassLogGroup"}),
    ],
    ids=["rollout", "update-timeout", "log-retention"],
)
def test_deployment_and_retention_keys_move_only_what_the_readme_says(
    tmp_path, overrides, moved
) -> None:
    """The README's diff table rows for the deployment keys and log_retention_days."""
    before = pipeline_template(tmp_path / "a")["Resources"]
    after = pipeline_template(tmp_path / "b", **overrides)["Resources"]
    assert set(after) == set(before)
    changed = {
        after[lid]["Type"]
        for lid in after
        if json.dumps(after[lid], sort_keys=True) != json.dumps(before[lid], sort_keys=True)
    }
    assert changed == moved
