"""A device class's ``batch_size`` and ``inference_threads`` (issue 16): they reach that class's
inference recipe as ``BatchSize`` and ``InferenceThreads``, which the component accepts; a class
that sets neither keeps its recipe (and so its component version) as it was; values the
component would refuse, and batching on a Neo class, are refused at synth naming the key."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from app_config import ConfigError
from device_contract import settings
from tests.infra.conftest import REPO_ROOT
from tests.infra.fast import pipeline_template
from tests.infra.rendering import component_recipes, render, resources_of_type

ONNX = {"thing_group": "EdgeAiDevOnnx", "build": "onnx"}
NEO = {"thing_group": "EdgeAiDevNeo", "neo_target_device": "ml_c5"}


def _inference_configurations(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name.rsplit(".", 2)[-2]: recipe["ComponentConfiguration"]["DefaultConfiguration"]
        for name, recipe in component_recipes(template).items()
        if name.endswith("Inference")
    }


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    classes = {
        "plain": ONNX,
        "gateway": {**ONNX, "thing_group": "EdgeAiDevGw", "batch_size": 8, "inference_threads": 2},
    }
    template = pipeline_template(tmp_path_factory.mktemp("tuned"), device_classes=classes)
    return _inference_configurations(template)


def test_a_class_s_settings_reach_its_recipe_only(tuned: dict[str, dict[str, Any]]) -> None:
    assert tuned["gateway"]["BatchSize"] == 8
    assert tuned["gateway"]["InferenceThreads"] == 2
    assert "BatchSize" not in tuned["plain"] and "InferenceThreads" not in tuned["plain"]


def test_a_class_without_them_keeps_its_recipe(tmp_path: Path) -> None:
    """Setting them on one class must not change another's component version."""
    alone = _inference_configurations(
        pipeline_template(tmp_path / "a", device_classes={"plain": ONNX})
    )
    explicit = _inference_configurations(
        pipeline_template(
            tmp_path / "b",
            device_classes={"plain": {**ONNX, "batch_size": 1, "inference_threads": 0}},
        )
    )
    assert alone["plain"] == explicit["plain"]


def test_the_component_accepts_the_recipe_s_configuration(
    tuned: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    sys.path.insert(0, str(REPO_ROOT / "component_src"))
    from edge_inference.config import Config, merge_config

    base = Config(
        model_dir=tmp_path, input_dir=tmp_path / "i", processed_dir=tmp_path / "p",
        failed_dir=tmp_path / "f",
    )  # fmt: skip
    raw = {k: v for k, v in tuned["gateway"].items() if k != "CaptureBucket"}
    merged = merge_config(base, raw, cwd=tmp_path)
    assert (merged.batch_size, merged.inference_threads) == (8, 2)


@pytest.mark.parametrize(
    ("entry", "key", "message"),
    [
        ({**ONNX, "batch_size": 0}, "batch_size", "at least 1 and at most 32"),
        ({**ONNX, "batch_size": 33}, "batch_size", "at most 32"),
        ({**ONNX, "batch_size": "eight"}, "batch_size", "expected an integer"),
        ({**ONNX, "inference_threads": -1}, "inference_threads", "at least 0"),
        ({**NEO, "batch_size": 4}, "batch_size", "only onnx classes"),
        ({**NEO, "inference_threads": 4}, "inference_threads", "run DLR"),
        ({**ONNX, "BatchSize": 4}, "BatchSize", "did you mean batch_size"),
    ],
)
def test_values_that_cannot_work_are_named(
    tmp_path: Path, entry: dict[str, Any], key: str, message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        pipeline_template(tmp_path, device_classes={"c": entry})
    assert str(raised.value).startswith(f"invalid configuration device_classes.c.{key}")
    assert message in str(raised.value)


def test_null_or_empty_means_the_default(tmp_path: Path) -> None:
    template = pipeline_template(
        tmp_path,
        device_classes={"plain": {**ONNX, "batch_size": None, "inference_threads": ""}},
    )
    configuration = _inference_configurations(template)["plain"]
    assert "BatchSize" not in configuration and "InferenceThreads" not in configuration


def test_the_bounds_are_the_component_s() -> None:
    """One table: the class keys take exactly what the component's settings take."""
    assert (settings.setting("BatchSize").low, settings.setting("BatchSize").high) == (1, 32)
    assert settings.setting("InferenceThreads").low == 0
    assert not settings.setting("BatchSize").in_recipe  # only classes that set it carry it


def _device_after(
    template: dict[str, Any], running: dict[str, Any] | None, group_class: str
) -> dict[str, Any]:
    """The inference component's configuration on a device of ``group_class`` once the
    template's deployment is applied over ``running``, as the nucleus resolves it (reset, then
    the recipe's defaults without overwriting, then the merge: device_sim.deployment)."""
    from device_sim.deployment import configuration_to_apply

    recipes = {
        name: recipe
        for name, recipe in component_recipes(template).items()
        if name.endswith("Inference") and f".{group_class}." in name
    }
    ((name, recipe),) = recipes.items()
    (deployment,) = [
        d["Properties"]
        for d in resources_of_type(template, "Custom::GreengrassDeployment").values()
        if name in d["Properties"]["Components"]
    ]
    update = deployment["Components"][name]["ConfigurationUpdate"]
    merge = json.loads(render(update["Merge"]))
    defaults = recipe["ComponentConfiguration"]["DefaultConfiguration"]
    return configuration_to_apply(running, defaults, merge, update.get("Reset"))


def test_a_class_that_stops_setting_them_goes_back_to_the_defaults_on_its_devices(
    tmp_path: Path,
) -> None:
    """Found by the second hostile review: a deployment merges configuration, and the nucleus
    keeps keys a deployment does not name (nucleus ``KernelConfigResolver.
    resolveConfigurationToApply``: reset, then defaults without overwrite, then merge), so a
    class that dropped ``batch_size: 8`` kept batching on every device. Each inference
    deployment now resets the keys a class may set."""
    tuned = {**ONNX, "batch_size": 8, "inference_threads": 2}
    first = pipeline_template(tmp_path / "a", device_classes={"gw": tuned})
    running = _device_after(first, None, "gw")
    assert (running["BatchSize"], running["InferenceThreads"]) == (8, 2)
    second = pipeline_template(tmp_path / "b", device_classes={"gw": ONNX})
    after = _device_after(second, running, "gw")
    assert "BatchSize" not in after and "InferenceThreads" not in after  # the component's 1, 0
    again = _device_after(first, after, "gw")
    assert (again["BatchSize"], again["InferenceThreads"]) == (8, 2)
