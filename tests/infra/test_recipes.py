"""Every synthesized recipe is a valid Greengrass recipe with only known interpolation variables."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from tests.infra.rendering import component_recipes, lower_keys, strings_in

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "greengrass_recipe_schema.json").read_text()
)
OWN_VARIABLES = re.compile(
    r"^(iot:thingName|artifacts:path|artifacts:decompressedPath|work:path|kernel:rootPath"
    r"|configuration:/[A-Za-z0-9_/]+)$"
)
DEPENDENCY_VARIABLE = re.compile(
    r"^(?P<component>[A-Za-z0-9._-]+):"
    r"(artifacts:path|artifacts:decompressedPath|work:path|configuration:/[A-Za-z0-9_/]+)$"
)
# Anything in braces without spaces would be taken as a recipe variable by the nucleus.
BRACED = re.compile(r"\{([^{}\s]+)\}")


def all_recipes(*synthesized) -> list[dict]:
    recipes = []
    for synth in synthesized:
        for name in synth.stacks:
            if name.endswith("/Pipeline"):
                recipes.extend(component_recipes(synth.template_json(name)).values())
    return recipes


@pytest.fixture(scope="module")
def recipes(dev, byo_jetson) -> list[dict]:
    found = all_recipes(dev, byo_jetson)
    assert len(found) == 5  # model, runtime, inference (dev); model, inference (variant.DLR)
    return found


def test_recipes_match_the_greengrass_recipe_schema(recipes) -> None:
    for recipe in recipes:
        jsonschema.validate(lower_keys(recipe), SCHEMA)


def test_schema_check_can_fail() -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(lower_keys({"RecipeFormatVersion": "2020-01-25"}), SCHEMA)


def variables_in(recipe: dict) -> set[str]:
    return {m for text in strings_in(recipe) for m in BRACED.findall(text)}


def test_interpolation_variables_are_known_and_reference_dependencies(recipes) -> None:
    for recipe in recipes:
        dependencies = set(recipe.get("ComponentDependencies", {}))
        for variable in variables_in(recipe):
            if OWN_VARIABLES.match(variable):
                continue
            match = DEPENDENCY_VARIABLE.match(variable)
            assert match, f"{recipe['ComponentName']}: unknown recipe variable {{{variable}}}"
            assert match["component"] in dependencies, (
                f"{recipe['ComponentName']}: {{{variable}}} names a component that is not a "
                "dependency"
            )


def test_versions_are_semantic_and_dependencies_pinned(recipes) -> None:
    for recipe in recipes:
        assert re.fullmatch(r"\d+\.\d+\.\d+", recipe["ComponentVersion"])
        for name, dependency in recipe.get("ComponentDependencies", {}).items():
            if name == "aws.greengrass.Nucleus":
                # A soft lower bound: the nucleus the accessControl wildcard needs.
                assert dependency == {
                    "VersionRequirement": ">=2.6.0 <3.0.0",
                    "DependencyType": "SOFT",
                }
                continue
            if name == "aws.greengrass.TokenExchangeService":
                # built into the nucleus; the catalog's 2.0.x (the inference component's
                # capture uploads need its credentials)
                assert dependency == {
                    "VersionRequirement": ">=2.0.0 <3.0.0",
                    "DependencyType": "HARD",
                }
                assert recipe["ComponentName"].endswith("Inference")
                continue
            assert re.fullmatch(r"=\d+\.\d+\.\d+", dependency["VersionRequirement"])
            assert dependency["DependencyType"] == "HARD"


def test_no_step_requires_privilege_and_install_steps_time_out(recipes) -> None:
    for recipe in recipes:
        for manifest in recipe["Manifests"]:
            for step_name, step in manifest.get("Lifecycle", {}).items():
                if isinstance(step, dict):
                    assert step.get("RequiresPrivilege", False) is False, step_name
                    if step_name in ("Install", "Startup"):
                        assert 0 < step["Timeout"] <= 900


def test_inference_component_may_publish_only_its_predictions_and_metrics(recipes) -> None:
    """A wildcard, not {iot:thingName}: see recipes.access_control_topic and
    test_publish_authorization.py; the IoT policy keeps each device to its own topic. The
    metrics topic is the second resource (issue 15, docs/OBSERVABILITY.md)."""
    inference = next(r for r in recipes if r["ComponentName"].endswith(".DlrInference"))
    access = inference["ComponentConfiguration"]["DefaultConfiguration"]["accessControl"]
    assert set(access) == {"aws.greengrass.ipc.mqttproxy"}
    (policy,) = access["aws.greengrass.ipc.mqttproxy"].values()
    assert policy["operations"] == ["aws.greengrass#PublishToIoTCore"]
    assert policy["resources"] == ["edge-ai/*/predictions", "edge-ai/*/metrics"]
    defaults = inference["ComponentConfiguration"]["DefaultConfiguration"]
    assert defaults["PublishTopic"] == "edge-ai/{iot:thingName}/predictions"
    assert defaults["MetricsTopic"] == "edge-ai/{iot:thingName}/metrics"


def test_bundled_runtime_installs_pinned_requirements_and_disables_phone_home(dev) -> None:
    recipes = component_recipes(dev.template_json("dev/Pipeline"))
    runtime = recipes["com.example.edgeai.dev.DlrRuntime"]
    (manifest,) = runtime["Manifests"]
    (artifact,) = manifest["Artifacts"]
    assert re.fullmatch(
        r"s3://artifact-bucket/components/com\.example\.edgeai\.dev\.DlrRuntime/[0-9a-f]{32}\.txt",
        artifact["Uri"],
    )
    install = manifest["Lifecycle"]["Install"]["Script"]
    file_name = artifact["Uri"].rsplit("/", 1)[1]
    assert f'-r "{{artifacts:path}}/{file_name}"' in install
    assert "enable_phone_home=False" in install
    # Installed once per version: Skipif on a marker the script writes last.
    version = runtime["ComponentVersion"]
    marker = f"{{work:path}}/venv/.installed-{version}"
    assert manifest["Lifecycle"]["Install"]["Skipif"] == f"exists {marker}"
    assert install.endswith(f'&& touch "{marker}"')
    assert install.index('rm -rf "{work:path}/venv"') < install.index("-m venv")
    inference = recipes["com.example.edgeai.dev.DlrInference"]
    run = inference["Manifests"][0]["Lifecycle"]["Run"]["Script"]
    assert run.startswith('exec "{com.example.edgeai.dev.DlrRuntime:work:path}/venv/bin/python"')
    assert '--model-dir "{com.example.edgeai.dev.Model:artifacts:decompressedPath}/' in run


def test_shell_braces_would_be_caught() -> None:
    recipe = {"ComponentName": "x", "Lifecycle": {"Run": "a || { echo no; exit 1; }"}}
    assert variables_in(recipe) == set()  # has spaces: not a variable
    assert variables_in({"Run": "python -c \"d={'a':1}\""}) == {"'a':1"}
