"""Device classes: one training feeds every class; each class gets its own build, package,
components and deployment; adding a class changes nothing for the others."""

from __future__ import annotations

import json
import re

import pytest

from app_config import ConfigError, build_config, load_config, merge_context
from tests.infra.conftest import REPO_ROOT, THREE_CLASSES
from tests.infra.fast import pipeline_template
from tests.infra.rendering import component_recipes, render, resources_of_type

NS = "com.example.edgeai.dev"


def test_one_training_job_feeds_every_class(three_classes) -> None:
    template = three_classes.template_json("dev/Pipeline")
    (training_id,) = resources_of_type(template, "Custom::TrainingJob")
    compilations = resources_of_type(template, "Custom::CompilationJob")
    targets = sorted(
        c["Properties"].get("TargetDevice") or c["Properties"]["TargetPlatformArch"]
        for c in compilations.values()
    )
    assert targets == ["X86_64", "jetson_nano"]  # the ONNX class is not compiled
    for compilation in compilations.values():
        assert compilation["Properties"]["ModelArtifactUri"] == {
            "Fn::GetAtt": [training_id, "ModelArtifactUri"]
        }
    packages = resources_of_type(template, "Custom::ModelPackage")
    assert len(packages) == 3
    (onnx,) = [p for p in packages.values() if "OnnxArtifactUri" in p["Properties"]]
    job = template["Resources"][training_id]["Properties"]["JobName"]
    uri = render(onnx["Properties"]["OnnxArtifactUri"])
    assert uri.endswith(f"/training/{job}/output/output.tar.gz"), uri
    assert "CompiledArtifactUri" not in onnx["Properties"]
    hyperparameters = json.loads(
        render(template["Resources"][training_id]["Properties"]["Hyperparameters"])
    )
    assert hyperparameters["export-onnx"] == "true"


def test_component_names_keep_classes_apart(three_classes) -> None:
    recipes = component_recipes(three_classes.template_json("dev/Pipeline"))
    assert set(recipes) == {
        f"{NS}.gateway.Model",
        f"{NS}.gateway.DlrRuntime",
        f"{NS}.gateway.DlrInference",
        f"{NS}.jetson.Model",
        f"{NS}.jetson.DlrRuntime",
        f"{NS}.jetson.DlrInference",
        f"{NS}.onnx.Model",
        f"{NS}.onnx.OnnxRuntime",
        f"{NS}.onnx.OnnxInference",
    }


@pytest.mark.parametrize(
    ("device_class", "runtime", "architecture", "requirements", "engine"),
    [
        ("gateway", "DlrRuntime", "amd64", "dlr==1.6.0", "dlr"),
        ("jetson", "DlrRuntime", "aarch64", "dlr==1.10.0", "dlr"),
        ("onnx", "OnnxRuntime", "amd64", "onnxruntime==", "onnx"),
    ],
)
def test_each_class_runs_the_runtime_of_its_platform(
    three_classes, device_class, runtime, architecture, requirements, engine
) -> None:
    template = three_classes.template_json("dev/Pipeline")
    recipes = component_recipes(template)
    prefix = f"{NS}.{device_class}"
    for recipe in recipes.values():
        if recipe["ComponentName"].startswith(prefix + "."):
            (manifest,) = recipe["Manifests"]
            assert manifest["Platform"] == {"os": "linux", "architecture": architecture}
    runtime_recipe = recipes[f"{prefix}.{runtime}"]
    install = runtime_recipe["Manifests"][0]["Lifecycle"]["Install"]
    script = install["Script"] if isinstance(install, dict) else install
    assert ("ccm_config.json" in script) == (engine == "dlr")  # DLR phone-home off
    # The requirements file shipped is the one for this runtime.
    (artifact,) = runtime_recipe["Manifests"][0]["Artifacts"]
    key = artifact["Uri"].split("/", 3)[3]
    published = [
        r
        for r in resources_of_type(template, "Custom::PublishedArtifact").values()
        if r["Properties"]["Key"] == key
    ]
    assert published, key
    shipped = (
        REPO_ROOT
        / "component_src"
        / ("requirements-onnx.txt" if engine == "onnx" else "requirements.txt")
    ).read_text()
    assert requirements in shipped
    inference = recipes[f"{prefix}.{'Onnx' if engine == 'onnx' else 'Dlr'}Inference"]
    configuration = inference["ComponentConfiguration"]["DefaultConfiguration"]
    assert configuration["Runtime"] == engine
    ours = {n for n in inference["ComponentDependencies"] if n.startswith(NS)}
    assert ours == {f"{prefix}.Model", f"{prefix}.{runtime}"}


def test_onnx_requirements_differ_from_dlr_only_in_the_runtime() -> None:
    def pins(name: str) -> set[str]:
        lines = (REPO_ROOT / "component_src" / name).read_text().splitlines()
        return {
            line.split("#")[0].strip()
            for line in lines
            if line.split("#")[0].strip() and not re.match(r"^(dlr|onnxruntime)\b", line)
        }

    assert pins("requirements-onnx.txt") == pins("requirements.txt")


def test_each_class_deploys_to_its_own_groups(three_classes) -> None:
    template = three_classes.template_json("dev/Pipeline")
    deployments = {
        d["Properties"]["DeploymentName"]: render(d["Properties"]["TargetArn"])
        for d in resources_of_type(template, "Custom::GreengrassDeployment").values()
    }
    assert {name: arn.rsplit("/", 1)[1] for name, arn in deployments.items()} == {
        "edge-ai-dev-gateway-edge-inference": "EdgeAiDevGateways",
        "edge-ai-dev-jetson-edge-inference-canary": "EdgeAiDevJetsonsCanary",
        "edge-ai-dev-jetson-edge-inference": "EdgeAiDevJetsons",
        "edge-ai-dev-onnx-edge-inference": "EdgeAiDevOnnx",
    }
    devices = three_classes.template_json("dev/Devices")
    groups = {
        g["Properties"]["ThingGroupName"]
        for g in resources_of_type(devices, "AWS::IoT::ThingGroup").values()
    }
    assert groups == {
        "EdgeAiDevGateways",
        "EdgeAiDevJetsons",
        "EdgeAiDevJetsonsCanary",
        "EdgeAiDevOnnx",
    }


def class_resources(template: dict, device_class: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if k.startswith(f"Class{device_class}")}


@pytest.mark.parametrize("added", ["jetson", "onnx"])
def test_adding_a_class_changes_nothing_for_the_others(tmp_path, added) -> None:
    one = {"gateway": THREE_CLASSES["gateway"]}
    two = {**one, added: THREE_CLASSES[added]}
    before = pipeline_template(tmp_path / "one", device_classes=one)
    after = pipeline_template(tmp_path / "two", device_classes=two)
    gateway = class_resources(before, "gateway")
    assert len(gateway) >= 8
    assert class_resources(after, "gateway") == gateway
    changed = {
        k
        for k in set(before["Resources"]) | set(after["Resources"])
        if before["Resources"].get(k) != after["Resources"].get(k)
    }
    # The diff is the new class's own resources, nothing else (shared services included).
    assert changed and all(k.startswith(f"Class{added}") for k in changed), changed
    assert set(before["Resources"]) <= set(after["Resources"])
    assert all(after["Outputs"][k] == v for k, v in before["Outputs"].items())


@pytest.mark.parametrize(
    ("entry", "key", "fragment"),
    [
        (
            {"thing_group": "G", "neo_target_device": "rasp9"},
            "device_classes.pi.neo_target_device",
            "allowed",
        ),
        ({"thing_group": "G"}, "device_classes.pi.neo_target_platform", "set a Neo target"),
        ({"thing_group": "my group!"}, "device_classes.pi.thing_group", "letters"),
        ({"thing_group": "G", "build": "tflite"}, "device_classes.pi.build", "neo, onnx"),
        (
            {"thing_group": "G", "build": "onnx", "neo_target_device": "rasp4b"},
            "device_classes.pi.neo_target_device",
            "not compiled",
        ),
        (
            {"thing_group": "G", "build": "onnx", "platform_architecture": "sparc"},
            "device_classes.pi.platform_architecture",
            "aarch64",
        ),
        (
            {"thing_group": "G", "neo_target_device": "rasp4b", "colour": "red"},
            "device_classes.pi.colour",
            "unknown key",
        ),
        (
            {"thing_group": "G", "neo_target_device": "rasp4b", "canary_thing_group": "G"},
            "device_classes.pi.canary_thing_group",
            "must differ",
        ),
    ],
)
def test_class_errors_name_the_class_and_the_key(entry, key, fragment) -> None:
    with pytest.raises(ConfigError) as raised:
        build_config("dev", merge_context({}, {}, {"device_classes": {"pi": entry}}))
    assert raised.value.key == key
    assert f"{key}=" in str(raised.value) and fragment in str(raised.value)


def test_two_classes_may_not_share_a_thing_group() -> None:
    classes = {
        "a": {"thing_group": "Same", "neo_target_device": "rasp4b"},
        "b": {"thing_group": "Same", "build": "onnx"},
    }
    with pytest.raises(ConfigError, match=r"device_classes\.b\.thing_group=.*device_classes\.a"):
        build_config("dev", merge_context({}, {}, {"device_classes": classes}))


def test_pytorch_version_must_suit_every_neo_class() -> None:
    classes = {
        "cloud": {"thing_group": "A", "neo_target_device": "ml_c5"},
        "pi": {"thing_group": "B", "neo_target_device": "rasp4b"},
    }
    with pytest.raises(ConfigError, match=r"rasp4b \(device class pi\) accepts PyTorch 1.7, 1.8"):
        build_config(
            "dev", merge_context({}, {}, {"device_classes": classes, "pytorch_version": "2.0"})
        )


def test_device_classes_given_with_c_as_json(tmp_path) -> None:
    text = json.dumps({"pi": {"thing_group": "Pis", "neo_target_device": "rasp4b"}})
    config = build_config("dev", merge_context({}, {}, {"device_classes": text}))
    (pi,) = config.device_classes
    assert pi.neo_target is not None and pi.neo_target.device == "rasp4b"
    assert pi.architecture == "aarch64"


def test_an_onnx_class_needs_the_onnx_export() -> None:
    classes = {"x86": {"thing_group": "G", "build": "onnx"}}
    overrides = {"device_classes": classes, "hyperparameters": {"export-onnx": "false"}}
    with pytest.raises(ConfigError, match="export-onnx must stay true: device class x86"):
        build_config("dev", merge_context({}, {}, overrides))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("canary_thing_group", "EdgeAiDevCanary"),
        ("neo_target_device", "rasp9"),
        ("neo_target_device", "rasp4b"),
        ("thing_group", "Elsewhere"),
        ("runtime_component", "variant.DLR"),
        ("neo_compiler_options", '{"mcpu": "skylake-avx512"}'),
    ],
)
def test_single_target_key_beside_device_classes_fails(key, value) -> None:
    """With device_classes the single-target keys make no class (README, Configuration): one
    given with -c beside them would be ignored, so it fails and says where it belongs."""
    with pytest.raises(ConfigError) as raised:
        build_config("dev", merge_context({}, {}, {"device_classes": THREE_CLASSES, key: value}))
    assert raised.value.key == key
    message = str(raised.value)
    assert "device_classes is set" in message and f"device_classes.<class>.{key}" in message


def test_single_target_key_in_the_same_cdk_json_layer_as_device_classes_fails() -> None:
    context = {"stages": {"dev": {"thing_group": "Old", "device_classes": THREE_CLASSES}}}
    with pytest.raises(ConfigError, match=r"thing_group='Old'.*device_classes is set in stage"):
        load_config(context, "dev")


def test_device_classes_override_single_target_keys_of_lower_layers() -> None:
    """cdk.json's pipeline target and the stage's thing group sit below -c device_classes, as
    any lower layer does; an emptied key (-c neo_target_platform=) is not a value either."""
    context = {
        "pipeline": {"neo_target_platform": "LINUX/X86_64"},
        "stages": {"dev": {"thing_group": "Old"}},
        "device_classes": THREE_CLASSES,
        "neo_target_device": "",
    }
    config = load_config(context, "dev")
    assert [c.name for c in config.device_classes] == list(THREE_CLASSES)


@pytest.mark.parametrize("missing", [f"{NS}.jetson.DlrRuntime", "aws.greengrass.LogManager"])
def test_a_release_must_name_every_component_the_class_deploys(missing) -> None:
    """A deployment replaces the last one on its target, and components it omits are removed
    from the devices (Greengrass developer guide, "Revise deployments",
    https://docs.aws.amazon.com/greengrass/v2/developerguide/revise-deployments.html): a
    release with a component deleted by hand would uninstall it from the fleet."""
    from tests.infra.conftest import JETSON_RELEASE

    release = {k: v for k, v in JETSON_RELEASE.items() if k != missing}
    with pytest.raises(ConfigError) as raised:
        build_config(
            "dev", merge_context({}, {}, {"device_classes": THREE_CLASSES}), {"jetson": release}
        )
    assert raised.value.key.endswith(".jetson")
    assert f"misses {missing}" in str(raised.value)


def test_the_required_release_components_are_those_the_canary_deploys(three_classes) -> None:
    """app_config's list of a class's components and the construct's canary deployment agree."""
    from app_config import release_components

    config = build_config("dev", merge_context({}, {}, {"device_classes": THREE_CLASSES}), {})
    jetson = next(c for c in config.device_classes if c.name == "jetson")
    template = three_classes.template_json("dev/Pipeline")
    (canary,) = [
        d
        for d in resources_of_type(template, "Custom::GreengrassDeployment").values()
        if d["Metadata"]["EdgeAiRing"]
        == {"stage": "dev", "class": "jetson", "ring": "canary", "topic_prefix": "edge-ai"}
    ]
    assert set(release_components(config.component_namespace, "dev", jetson)) == set(
        canary["Properties"]["Components"]
    )


@pytest.mark.parametrize(
    ("target", "options"),
    [
        ({"neo_target_platform": "LINUX/X86_64"}, {"gpu-code": "sm_72"}),
        ({"neo_target_platform": "LINUX/ARM64/MALI"}, {"cuda-ver": "10.2"}),
        ({"neo_target_device": "rasp4b", "neo_target_platform": ""}, {"trt-ver": "8.5.2"}),
        ({"neo_target_device": "ml_c5", "neo_target_platform": ""}, {"gpu_code": "sm_72"}),
    ],
)
def test_nvidia_compiler_options_on_a_non_nvidia_target_fail(target, options) -> None:
    """botocore's SageMaker model, OutputConfig.CompilerOptions: "The compiler options are
    TargetPlatform specific"; gpu-code, trt-ver and cuda-ver are listed under "NVIDIA:
    Compilation for NVIDIA GPU supports the following compiler options"."""
    overrides = {**target, "neo_compiler_options": json.dumps(options)}
    with pytest.raises(ConfigError) as raised:
        build_config("dev", merge_context({}, {}, overrides))
    assert raised.value.key == "neo_compiler_options"
    assert "NVIDIA options" in str(raised.value) and "not an NVIDIA target" in str(raised.value)


def test_nvidia_compiler_options_are_kept_for_nvidia_devices() -> None:
    options = {"gpu-code": "sm_53", "trt-ver": "7.1.3", "cuda-ver": "10.2"}
    overrides = {
        "neo_target_device": "jetson_nano",
        "neo_target_platform": "",
        "neo_compiler_options": options,
    }
    (default,) = build_config("dev", merge_context({}, {}, overrides)).device_classes
    assert default.neo_compiler_options == options


@pytest.mark.parametrize("foreign", [f"{NS}.gateway.Model", "aws.greengrass.ShadowManager"])
def test_a_release_names_only_components_of_its_class(foreign) -> None:
    """A release is deployed as it stands: another class's component added by hand would put
    that class's model on these devices (a hostile review found this synthesized)."""
    from tests.infra.conftest import JETSON_RELEASE

    release = {**JETSON_RELEASE, foreign: {"version": "1.0.1"}}
    with pytest.raises(ConfigError) as raised:
        build_config(
            "dev", merge_context({}, {}, {"device_classes": THREE_CLASSES}), {"jetson": release}
        )
    assert raised.value.key.endswith(".jetson")
    assert f"names {foreign}, which device class jetson does not deploy" in str(raised.value)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("a" * 33, "is 33 characters; a class name has at most 32"),
        ("9lives", "a class name is a letter, then letters or digits"),
        ("gate-way", "a class name is a letter, then letters or digits"),
    ],
)
def test_a_bad_class_name_says_what_is_wrong_with_the_name(name: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        build_config(
            "dev",
            merge_context(
                {}, {}, {"device_classes": {name: {"thing_group": "G", "build": "onnx"}}}
            ),
            {},
        )
    assert message in str(raised.value)
    assert "thing_group" not in str(raised.value)  # the name is the problem, not the settings


def test_moving_a_fleet_to_device_classes_keeps_it_only_under_the_name_default(
    tmp_path,
) -> None:
    """Issue 18, "moving to device classes": the same devices and target written as a class
    called ``default`` synthesize the single-target app's pipeline exactly (same logical IDs,
    component names and versions); any other name gives the fleet new component names and a new
    deployment resource (the old one is deleted), as the README warns."""
    from tests.infra.fast import pipeline_template

    single = pipeline_template(tmp_path / "single")
    same = {"thing_group": "EdgeAiDevCoreDevices", "neo_target_platform": "LINUX/X86_64"}
    as_default = pipeline_template(tmp_path / "default", device_classes={"default": same})
    renamed = pipeline_template(tmp_path / "cams", device_classes={"cams": same})
    assert json.dumps(as_default["Resources"], sort_keys=True) == json.dumps(
        single["Resources"], sort_keys=True
    )

    def deployments(template: dict) -> set[str]:
        return set(resources_of_type(template, "Custom::GreengrassDeployment"))

    assert deployments(renamed).isdisjoint(deployments(single))
    assert set(component_recipes(renamed)).isdisjoint(component_recipes(single))


def test_synth_warns_when_a_class_takes_the_fleets_group_under_another_name(tmp_path) -> None:
    """Issue 18: "warn at synth when a class change would replace a running fleet's
    deployment". A class other than ``default`` on the stage's ``thing_group`` (where the
    single-target fleet runs) replaces that fleet's deployment and renames its components
    (the test above): synth says so, naming the class, the group and the fix. Under the name
    ``default``, on another group, or with no classes, nothing is said."""
    from tests.infra.fast import pipeline_warnings

    same = {"thing_group": "EdgeAiDevCoreDevices", "neo_target_platform": "LINUX/X86_64"}
    (warning,) = [
        w
        for w in pipeline_warnings(tmp_path / "cams", device_classes={"cams": same})
        if "EdgeAiDevCoreDevices" in w
    ]
    assert "device_classes.cams" in warning
    assert "replaces the deployment of the fleet already there" in warning
    assert "com.example.edgeai.dev.cams.Model" in warning and "name the class default" in warning
    quiet = [
        pipeline_warnings(tmp_path / "default", device_classes={"default": same}),
        pipeline_warnings(
            tmp_path / "other", device_classes={"cams": {**same, "thing_group": "EdgeAiCams"}}
        ),
        pipeline_warnings(tmp_path / "single"),
    ]
    assert not [w for warnings in quiet for w in warnings if "device_classes" in w], quiet


def test_app_hands_the_warning_to_its_caller(tmp_path) -> None:
    """``python app.py`` (what ``cdk synth`` runs) prints each configuration warning on stderr:
    the CLI shows stack warnings only for the stacks a command selects, and ``cdk synth`` of
    this app selects none."""
    import app as cdk_app
    from tests.infra.conftest import CDK_JSON_CONTEXT

    said: list[str] = []
    same = {"thing_group": "EdgeAiDevCoreDevices", "neo_target_platform": "LINUX/X86_64"}
    cdk_app.create_app(
        {**CDK_JSON_CONTEXT, "device_classes": {"cams": same}},
        outdir=str(tmp_path),
        warn=said.append,
    )
    assert len(said) == 1 and said[0].startswith("stage dev: device_classes.cams: thing group")
