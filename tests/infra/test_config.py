"""Every value a user can get wrong fails with one message naming key, value and what is allowed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import app as cdk_app
from app_config import DEFAULTS, ConfigError, build_config, load_config, merge_context
from tests.infra.conftest import CDK_JSON_CONTEXT, REPO_ROOT


def config_with(**overrides: object):
    return build_config("dev", merge_context({}, {}, overrides))


def test_defaults_are_valid_and_typed() -> None:
    config = config_with()
    assert config.input_shape == (1, 3, 224, 224)
    assert config.input_mean == (0.485, 0.456, 0.406)
    assert config.input_std == (0.229, 0.224, 0.225)
    (default,) = config.device_classes
    assert default.name == "default" and default.build == "neo"
    assert default.neo_target is not None
    assert default.neo_target.os == "LINUX" and default.neo_target.arch == "X86_64"
    assert default.architecture == "amd64" and default.runtime == "bundled"
    assert config.pytorch_version == "1.8"
    assert config.trains is True


@pytest.mark.parametrize(
    ("overrides", "key", "fragment"),
    [
        (
            {"neo_target_device": "raspberry_pi_9", "neo_target_platform": ""},
            "neo_target_device",
            "jetson_nano",
        ),
        ({"neo_target_platform": "LINUX/SPARC"}, "neo_target_platform", "X86_64"),
        ({"neo_target_platform": "LINUX/ARM64/TPU"}, "neo_target_platform", "NVIDIA"),
        ({"neo_target_device": "rasp4b"}, "neo_target_device", "not both"),
        ({"neo_target_platform": ""}, "neo_target_platform", "set a Neo target"),
        ({"pytorch_version": "2.0"}, "pytorch_version", "accepts PyTorch 1.7, 1.8"),
        ({"pytorch_version": "1.10"}, "pytorch_version", "accepts PyTorch"),
        ({"input_shape": "1,3,224"}, "input_shape", "N,C,H,W"),
        ({"input_mean": "0.5,0.5"}, "input_mean", "three numbers"),
        ({"input_mean": "127,127,127"}, "input_mean", "0-1 scale"),
        ({"input_std": "0.5,0,0.5"}, "input_std", "each > 0"),
        ({"input_std": "a,b,c"}, "input_std", "three numbers"),
        ({"input_shape": "2,3,224,224"}, "input_shape", "N=1"),
        ({"input_shape": "1,1,224,224"}, "input_shape", "C=3"),
        ({"input_shape": "1,3,abc,224"}, "input_shape", "N,C,H,W"),
        ({"input_shape": "1,3,8,8"}, "input_shape", "32 <= H"),
        ({"input_shape": "1,3,224,160"}, "input_shape", "square"),
        ({"thing_group": "my group!"}, "thing_group", "letters, digits"),
        ({"thing_group": ""}, "thing_group", "1-128"),
        ({"training_instance_count": 0}, "training_instance_count", "at least 1"),
        ({"training_instance_count": "-3"}, "training_instance_count", "at least 1"),
        ({"training_volume_gb": "many"}, "training_volume_gb", "integer"),
        ({"training_max_runtime_seconds": 0}, "training_max_runtime_seconds", "at least 60"),
        ({"training_max_runtime_seconds": 90000}, "training_max_runtime_seconds", "at most"),
        (
            {"compilation_max_runtime_seconds": 3601},
            "compilation_max_runtime_seconds",
            "at most 3000",
        ),
        ({"training_use_spot": "maybe"}, "training_use_spot", "true or false"),
        (
            {"training_use_spot": True, "training_max_wait_seconds": 100},
            "training_max_wait_seconds",
            ">= training_max_runtime_seconds",
        ),
        ({"training_instance_type": "m5.xlarge"}, "training_instance_type", "ml.m5.xlarge"),
        ({"training_data_uri": "https://bucket/data"}, "training_data_uri", "s3://"),
        ({"validation_data_uri": "s3://bucket/val"}, "validation_data_uri", "training channel"),
        (
            {"model_artifact_uri": "/local/model.tar.gz", "architecture": "mine"},
            "model_artifact_uri",
            "s3://",
        ),
        # a brought model named by the default would be "vgg16" in its model id (issue 18)
        ({"model_artifact_uri": "s3://b/m/model.tar.gz"}, "architecture", "name it"),
        ({"prefix": "Edge_AI"}, "prefix", "lower-case"),
        ({"component_namespace": "edgeai"}, "component_namespace", "dotted"),
        ({"runtime_component": "tflite"}, "runtime_component", "bundled"),
        (
            {"neo_target_platform": "LINUX/ARM64/NVIDIA"},
            "neo_compiler_options",
            "required for the NVIDIA platform target",
        ),
        (
            {
                "neo_target_platform": "LINUX/ARM64/NVIDIA",
                "neo_compiler_options": '{"gpu-code": "sm_72"}',
            },
            "neo_compiler_options",
            "missing trt-ver, cuda-ver",
        ),
        ({"neo_compiler_options": "[1, 2]"}, "neo_compiler_options", "JSON object"),
        ({"neo_compiler_options": "{oops"}, "neo_compiler_options", "JSON object"),
        ({"runtime_component": "variant.DLR"}, "nucleus_version", "must be set"),
        (
            {"runtime_component": "variant.DLR", "nucleus_version": "2.18.2"},
            "nucleus_version",
            "outside variant.DLR's nucleus range",
        ),
        ({"log_retention_days": 10}, "log_retention_days", "14"),
        ({"log_manager_version": "latest"}, "log_manager_version", "X.Y.Z"),
        ({"nucleus_version": "2.x"}, "nucleus_version", "X.Y.Z"),
        ({"nucleus_version": "2.5.6"}, "nucleus_version", "at least 2.6.0"),
        ({"hyperparameters": "{not json"}, "hyperparameters", "JSON object"),
        ({"hyperparameters": {"arch": "resnet18"}}, "hyperparameters", "architecture"),
        ({"hyperparameters": {"sagemaker_program": "x.py"}}, "hyperparameters", "sagemaker_"),
        ({"inference_top_k": 0}, "inference_top_k", "at least 1"),
        ({"publish_topic_prefix": "edge ai/#"}, "publish_topic_prefix", "MQTT"),
        (
            {"abort_failure_threshold_percent": 101},
            "abort_failure_threshold_percent",
            "at most 100",
        ),
        ({"component_update_policy": "FORCE"}, "component_update_policy", "NOTIFY_COMPONENTS"),
        ({"training_image_uri": "pytorch:latest"}, "training_image_uri", "ECR image URI"),
        ({"architecture": "VGG-16"}, "architecture", "torchvision model name"),
    ],
)
def test_invalid_value_names_key_value_and_allowed(overrides, key, fragment) -> None:
    with pytest.raises(ConfigError) as raised:
        config_with(**overrides)
    message = str(raised.value)
    assert raised.value.key == key
    assert f"{key}=" in message
    assert fragment in message


def test_cloud_target_accepts_pytorch_2() -> None:
    config = config_with(neo_target_device="ml_c5", neo_target_platform="", pytorch_version="2.0")
    target = config.device_classes[0].neo_target
    assert target is not None and target.is_cloud and config.pytorch_version == "2.0"


def test_cli_strings_are_parsed_like_json_values() -> None:
    config = config_with(
        training_use_spot="true",
        training_instance_count="2",
        input_shape="1, 3, 300, 300",
        hyperparameters='{"epochs": 3, "freeze-features": true}',
    )
    assert config.training.use_spot is True
    assert config.training.instance_count == 2
    assert config.input_shape == (1, 3, 300, 300)
    assert config.training.hyperparameters == {
        **DEFAULTS["hyperparameters"],
        "epochs": "3",
        "freeze-features": "true",
    }


def test_precedence_defaults_pipeline_stage_cli() -> None:
    context = {
        "pipeline": {"inference_top_k": 3, "thing_group": "FromPipeline"},
        "stages": {"dev": {"thing_group": "FromStage"}},
        "inference_top_k": "7",
    }
    config = load_config(context, "dev")
    assert config.device_classes[0].thing_group == "FromStage"
    assert config.inference_top_k == 7
    assert config.prefix == DEFAULTS["prefix"]


def test_unknown_stage_lists_the_defined_ones() -> None:
    with pytest.raises(ConfigError, match=r"stages defined in cdk.json: dev, prod"):
        load_config(CDK_JSON_CONTEXT, "qa")


def test_unknown_key_in_cdk_json_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"unknown key in stage"):
        load_config({"stages": {"dev": {"thing_grup": "x"}}}, "dev")


def test_mistyped_cli_key_fails_before_any_stack_is_built() -> None:
    with pytest.raises(ConfigError, match=r"neo_target_devise.*unknown key"):
        cdk_app.create_app(context={**CDK_JSON_CONTEXT, "neo_target_devise": "rasp4b"})


def test_app_prints_one_clear_error_and_exits_2() -> None:
    # As `cdk synth -c input_shape=1,3,224` runs it: the CLI passes context in CDK_CONTEXT_JSON.
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps({**CDK_JSON_CONTEXT, "input_shape": "1,3,224"}),
    }
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert errors == [
        "error: invalid configuration input_shape='1,3,224': expected N,C,H,W with N=1, C=3 "
        "and 32 <= H, W <= 4096, e.g. 1,3,224,224"
    ]
    assert "Traceback" not in result.stderr


def test_environment_agnostic_unless_given(monkeypatch) -> None:
    monkeypatch.delenv("CDK_DEPLOY_ACCOUNT", raising=False)
    monkeypatch.delenv("CDK_DEPLOY_REGION", raising=False)
    assert cdk_app._environment({}) is None
    env = cdk_app._environment({"account": "123456789012", "region": "eu-west-1"})
    assert env is not None and env.account == "123456789012" and env.region == "eu-west-1"
    monkeypatch.setenv("CDK_DEPLOY_REGION", "us-west-2")
    env = cdk_app._environment({})
    assert env is not None and env.region == "us-west-2"


def test_nvidia_platform_target_takes_compiler_options() -> None:
    options = '{"gpu-code": "sm_72", "trt-ver": "8.5.2", "cuda-ver": "11.4"}'
    config = config_with(neo_target_platform="LINUX/ARM64/NVIDIA", neo_compiler_options=options)
    assert config.device_classes[0].neo_compiler_options == {
        "gpu-code": "sm_72",
        "trt-ver": "8.5.2",
        "cuda-ver": "11.4",
    }
    # A named Jetson device needs none (Neo knows its GPU); the default target neither.
    assert (
        config_with(neo_target_device="jetson_nano", neo_target_platform="")
        .device_classes[0]
        .neo_compiler_options
        is None
    )
    assert config_with().device_classes[0].neo_compiler_options is None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("nucleus_version", "02.18.2"),
        ("nucleus_version", "2.018.2"),
        ("log_manager_version", "2.3.07"),
        ("variant_dlr_version", "01.6.16"),
    ],
)
def test_versions_are_semver_without_leading_zeros(key, value) -> None:
    """semver.org 2.0.0, item 2: "X, Y, and Z are non-negative integers, and MUST NOT contain
    leading zeroes"; Greengrass component versions are semver (CreateComponentVersion)."""
    with pytest.raises(ConfigError, match=rf"{key}='{value}'.*X\.Y\.Z") as raised:
        config_with(**{key: value})
    assert raised.value.key == key


def test_release_versions_are_semver_without_leading_zeros() -> None:
    from tests.infra.conftest import JETSON_RELEASE, THREE_CLASSES

    release = {**JETSON_RELEASE, "aws.greengrass.LogManager": {"version": "2.03.7"}}
    with pytest.raises(ConfigError, match=r"jetson\.aws\.greengrass\.LogManager.*2\.03\.7"):
        build_config(
            "dev", merge_context({}, {}, {"device_classes": THREE_CLASSES}), {"jetson": release}
        )


def test_hyperparameters_merge_over_the_defaults() -> None:
    """Overriding one hyperparameter keeps the others: without ``pretrained`` train.py falls back
    to ``--pretrained auto``, a random initialisation on a fresh SageMaker container."""
    config = config_with(hyperparameters='{"epochs": 10}')
    assert config.training.hyperparameters == {**DEFAULTS["hyperparameters"], "epochs": "10"}
    # Layers merge too: cdk.json's pipeline, the stage, then -c.
    context = {
        "pipeline": {"hyperparameters": {"epochs": "4"}},
        "stages": {"dev": {"hyperparameters": {"lr": "0.01"}}},
        "hyperparameters": '{"batch-size": 8}',
    }
    merged = load_config(context, "dev").training.hyperparameters
    assert merged == {"epochs": "4", "lr": "0.01", "batch-size": "8", "pretrained": "true"}


def test_a_null_hyperparameter_removes_the_default() -> None:
    config = config_with(hyperparameters='{"pretrained": null}')
    assert "pretrained" not in config.training.hyperparameters
    assert config.training.hyperparameters["epochs"] == DEFAULTS["hyperparameters"]["epochs"]


@pytest.mark.parametrize(
    ("hyperparameters", "fragment"),
    [
        ({"epochs": "-1"}, "--epochs must be >= 0"),
        ({"lr": "abc"}, "invalid float value: 'abc'"),
        ({"batch-size": "0"}, "--batch-size >= 1"),
        ({"pretrained": "maybe"}, "invalid choice: 'maybe'"),
        ({"freeze-features": "perhaps"}, "expected true or false"),
        ({"resize-shorter": "100"}, "smaller than the crop 224x224"),
        ({"val-fraction": "1.5"}, "--val-fraction must be in [0, 1)"),
    ],
)
def test_hyperparameters_are_checked_by_train_pys_own_parser(hyperparameters, fragment) -> None:
    with pytest.raises(ConfigError) as raised:
        config_with(hyperparameters=hyperparameters)
    assert raised.value.key == "hyperparameters"
    assert fragment in str(raised.value)


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("epoch", "train.py has no --epoch"),
        ("learning-rate", "train.py has no --learning-rate"),
        ("model-dir", "set by SageMaker"),
        ("checkpoint-dir", "set by SageMaker"),
    ],
)
def test_unknown_or_reserved_hyperparameter_names_fail(name, fragment) -> None:
    with pytest.raises(ConfigError) as raised:
        config_with(hyperparameters={name: "3"})
    assert raised.value.key == f"hyperparameters.{name}"
    assert fragment in str(raised.value)


def test_hyperparameter_check_needs_no_torch() -> None:
    """The synth machine has no torch: checking hyperparameters with train.py's parser must
    import only training_src/edge_training/config.py (and errors.py), never torch."""
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['torchvision'] = None\n"
        "from app_config import build_config, merge_context\n"
        "c = build_config('dev', merge_context({}, {}, {'hyperparameters': {'epochs': '2'}}))\n"
        "print(c.training.hyperparameters['epochs'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2"


def test_training_parser_stays_python_36_syntax() -> None:
    """The PyTorch 1.8 training image (edge Neo targets) runs Python 3.6."""
    import ast

    for name in ("config.py", "errors.py", "__init__.py"):
        source = (REPO_ROOT / "training_src" / "edge_training" / name).read_text()
        ast.parse(source, feature_version=(3, 6))


def test_release_errors_name_the_stage() -> None:
    from tests.infra.conftest import JETSON_RELEASE, THREE_CLASSES

    raw = merge_context({}, {}, {"device_classes": THREE_CLASSES})
    with pytest.raises(ConfigError) as raised:
        build_config("prod", raw, {"nope": JETSON_RELEASE})
    assert raised.value.key == "releases.prod.nope"
    release = {k: v for k, v in JETSON_RELEASE.items() if not k.endswith("DlrRuntime")}
    with pytest.raises(ConfigError) as raised:
        build_config("prod", raw, {"jetson": release})
    assert raised.value.key == "releases.prod.jetson"
    assert "<stage>" not in str(raised.value)


def test_every_stages_keys_are_checked_whatever_stage_is_synthesized() -> None:
    context = {**CDK_JSON_CONTEXT, "stages": {**CDK_JSON_CONTEXT["stages"]}}
    context["stages"]["prod"] = {**context["stages"]["prod"], "tpyo": 1}
    with pytest.raises(ConfigError) as raised:
        load_config(context, "dev")
    assert raised.value.key == "stages.prod.tpyo"
    assert "stages.prod.tpyo=1: unknown key in stage prod" in str(raised.value)


def test_python_app_py_run_directly_reads_cdk_json(monkeypatch, tmp_path) -> None:
    """Without the CDK CLI there is no CDK_CONTEXT_JSON: the app reads cdk.json's context
    itself instead of failing with an empty list of stages."""
    for name in ("CDK_CONTEXT_JSON", "CDK_OUTDIR", "CONTEXT_OVERFLOW_LOCATION_ENV"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    assert cdk_app.main() == 0
    manifest = json.loads((tmp_path / "cdk.out" / "manifest.json").read_text())
    assert any(name.startswith("assembly-dev") for name in manifest["artifacts"])


def test_no_stages_says_how_to_run_the_app() -> None:
    with pytest.raises(ConfigError, match=r"no stages.*cdk synth"):
        load_config({}, "dev")


def test_both_neo_targets_in_a_class_suggest_removing_one() -> None:
    entry = {"thing_group": "G", "neo_target_device": "rasp4b", "neo_target_platform": "LINUX/X86"}
    with pytest.raises(ConfigError) as raised:
        config_with(device_classes={"pi": entry})
    assert raised.value.key == "device_classes.pi.neo_target_device"
    assert "-c neo_target_platform=" not in str(raised.value)
    assert "remove one of them from the class" in str(raised.value)


def test_two_stages_sharing_a_thing_group_are_refused_at_synth() -> None:
    """``-c thing_group=X -c stage=all`` gives every stage the same thing group: the second
    stage's devices stack would fail on CreateThingGroup (ResourceAlreadyExistsException) and
    its deployment would replace the first stage's on the shared group (found by the hostile
    review: synth accepted it). The error names the stage, the key and the other stage."""
    context = {**CDK_JSON_CONTEXT, "stage": "all", "thing_group": "SharedCoreDevices"}
    with pytest.raises(ConfigError) as caught:
        cdk_app.create_app(context=context)
    message = str(caught.value)
    assert "stages.prod.thing_group" in message and "'SharedCoreDevices'" in message, message
    assert "stage dev uses this thing group too" in message, message


def test_every_stage_of_cdk_json_has_its_own_thing_groups() -> None:
    configs = [load_config(CDK_JSON_CONTEXT, stage) for stage in sorted(CDK_JSON_CONTEXT["stages"])]
    cdk_app.check_stages_apart(configs)  # cdk.json as shipped: no error
    groups = [group for config in configs for group in config.thing_groups]
    assert len(groups) == len(set(groups)) > 1


@pytest.mark.parametrize("prefix", ["xn--edge", "sthree-x", "amzn-s3-demo-a"])
def test_a_prefix_s3_reserves_is_refused(prefix: str) -> None:
    """The stacks' generated bucket names start with the prefix; S3 refuses bucket names that
    start with xn--, sthree- or amzn-s3-demo- (S3 User Guide, "General purpose bucket naming
    rules"). Found by the hostile review: synth accepted them."""
    with pytest.raises(ConfigError, match=rf"prefix='{prefix}'.*S3 reserves"):
        load_config({**CDK_JSON_CONTEXT, "prefix": prefix}, "dev")


@pytest.mark.parametrize(
    ("topic", "accepted"),
    [
        ("a/b/c/d/e", True),  # a/b/c/d/e/<thing>/predictions: 6 slashes
        ("a/b/c/d/e/f", True),  # 7 slashes: AWS IoT's most
        ("a/b/c/d/e/f/g", False),  # 8
        ("t" * 115, True),  # + "/" + 128-character thing + "/predictions" = 256 bytes
        ("t" * 116, False),
    ],
)
def test_publish_topic_prefix_keeps_the_topic_inside_aws_iot_limits(
    topic: str, accepted: bool
) -> None:
    """AWS IoT Core topics: at most 7 slashes and 256 bytes (AWS IoT Core quotas, message broker
    limits); the device publishes on <prefix>/<thing>/predictions with a thing name of up to 128
    characters. Found by the hostile review: both limits were left to fail on the device."""
    context = {**CDK_JSON_CONTEXT, "publish_topic_prefix": topic}
    if accepted:
        assert load_config(context, "dev").publish_topic_prefix == topic
    else:
        with pytest.raises(ConfigError, match="publish_topic_prefix"):
            load_config(context, "dev")


def test_a_component_namespace_too_long_for_greengrass_names_is_refused() -> None:
    """Component names are <namespace>.<stage>[.<class>].<Part>; Greengrass allows 128
    characters (botocore greengrassv2 ComponentNameString). Found by the hostile review."""
    namespace = "com." + ".".join(["abcdefghij"] * 11)  # 124 characters
    with pytest.raises(ConfigError, match=r"component_namespace.*Greengrass allows 128"):
        load_config({**CDK_JSON_CONTEXT, "component_namespace": namespace}, "dev")
    assert load_config({**CDK_JSON_CONTEXT, "component_namespace": "com.example.x"}, "dev")


def test_a_brought_model_is_named_in_its_own_layer() -> None:
    """cdk.json's ``pipeline.architecture`` (vgg16, what training fine-tunes) does not name a
    model brought with ``-c model_artifact_uri`` (the hostile review found synth accepting
    it): the layer that brings the model, or a higher one, names it."""
    uri = {"model_artifact_uri": "s3://my-bucket/m/model.tar.gz"}
    with pytest.raises(ConfigError, match=r"model_artifact_uri \(-c\) brings a model"):
        merge_context({"architecture": "vgg16"}, {}, uri)
    with pytest.raises(ConfigError, match=r"model_artifact_uri \(stage\)"):
        merge_context({"architecture": "vgg16"}, uri, {})
    merge_context({"architecture": "vgg16"}, {}, {**uri, "architecture": "pets"})
    merge_context({}, uri, {"architecture": "pets"})  # a higher layer names it
    merge_context({**uri, "architecture": "pets"}, {}, {})
    merge_context({**uri, "architecture": "pets"}, {}, {"model_artifact_uri": ""})  # cleared


def test_cdk_json_architecture_does_not_name_a_model_brought_with_c(tmp_path) -> None:
    """The hostile review's command: ``cdk synth -c model_artifact_uri=...`` with the shipped
    cdk.json (which sets pipeline.architecture) synthesized a "vgg16" model."""
    import app as cdk_app
    from tests.infra.conftest import CDK_JSON_CONTEXT

    assert CDK_JSON_CONTEXT["pipeline"].get("architecture")  # the trap is real
    with pytest.raises(ConfigError, match="architecture="):
        cdk_app.create_app(
            {**CDK_JSON_CONTEXT, "model_artifact_uri": "s3://my-bucket/models/model.tar.gz"},
            outdir=str(tmp_path),
        )
