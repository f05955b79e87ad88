"""Adding a stage key or a Neo target is one row in one table, and every side follows.

The key table is ``app_config/keys.py`` (``KEYS``); the Neo targets are
``edge_constructs/neo_targets.py`` (``NEO_TARGETS``). Each test adds a row with monkeypatch
(nothing else) and checks every place that reads it: the layers accept the key, the value is
parsed and carried, a bad value fails naming the key and its bounds; a device class may name
the target, errors list it, and the class's recipes carry its platform.
"""

from __future__ import annotations

import re

import pytest

import app as cdk_app
from app_config import DEFAULTS, ConfigError, build_config, keys, load_config, merge_context
from edge_constructs import neo_targets
from edge_constructs.neo_targets import NeoTargetSpec
from tests.infra.conftest import CDK_JSON_CONTEXT, REPO_ROOT
from tests.infra.fast import pipeline_template
from tests.infra.rendering import component_recipes

NEW_KEY = keys.Key("widget_count", "int", 3, "widgets per device", maximum=9)


@pytest.fixture
def with_new_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keys, "KEYS", (*keys.KEYS, NEW_KEY))


def test_a_key_not_in_the_table_is_refused_everywhere() -> None:
    """The baseline the next tests change: without its row, the key is unknown."""
    with pytest.raises(ConfigError, match="unknown key in -c"):
        merge_context({}, {}, {"widget_count": "7"})
    with pytest.raises(ConfigError, match="unknown key in stage dev"):
        load_config({**CDK_JSON_CONTEXT, "stages": {"dev": {"widget_count": 7}}}, "dev")
    with pytest.raises(ConfigError, match=r"unknown key \(a -c key"):
        cdk_app._check_keys({"widget_count": "7"})


@pytest.mark.usefixtures("with_new_key")
def test_a_key_added_to_the_table_is_a_key_of_every_layer() -> None:
    assert DEFAULTS["widget_count"] == 3 and "widget_count" in DEFAULTS
    cdk_app._check_keys({"widget_count": "7"})  # -c widget_count=7 is a known key
    assert build_config("dev", merge_context({}, {}, {})).settings["widget_count"] == 3
    from_cli = build_config("dev", merge_context({}, {}, {"widget_count": "7"}))
    assert from_cli.settings["widget_count"] == 7
    staged = load_config(
        {**CDK_JSON_CONTEXT, "stages": {**CDK_JSON_CONTEXT["stages"], "dev": {"widget_count": 8}}},
        "dev",
    )
    assert staged.settings["widget_count"] == 8


@pytest.mark.usefixtures("with_new_key")
@pytest.mark.parametrize(
    ("value", "allowed"),
    [("10", "must be at least 1 and at most 9"), ("0", "at most 9"), ("many", "an integer")],
)
def test_a_key_added_to_the_table_is_checked_against_its_bounds(value: str, allowed: str) -> None:
    with pytest.raises(ConfigError) as raised:
        build_config("dev", merge_context({}, {}, {"widget_count": value}))
    assert raised.value.key == "widget_count"
    assert f"widget_count={value!r}" in str(raised.value) and allowed in str(raised.value)


def test_every_plain_key_is_carried_parsed() -> None:
    """The typed fields and ``settings`` agree for the plain keys that have a field."""
    config = build_config("dev", merge_context({}, {}, {"inference_top_k": "7"}))
    plain = {row.name for row in keys.KEYS if row.plain}
    assert set(config.settings) == plain
    assert config.settings["inference_top_k"] == config.inference_top_k == 7
    assert config.settings["deployment_timeout_minutes"] == config.deployment.timeout_minutes


BOARD = NeoTargetSpec("riscboard", "edge", "aarch64")


@pytest.fixture
def with_new_target(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(neo_targets, "NEO_TARGETS", (*neo_targets.NEO_TARGETS, BOARD))


def _class(device: str) -> dict[str, dict[str, str]]:
    return {"board": {"thing_group": "Boards", "neo_target_device": device}}


def test_a_target_not_in_the_catalog_is_refused() -> None:
    with pytest.raises(ConfigError) as raised:
        build_config("dev", merge_context({}, {}, {"device_classes": _class("riscboard")}))
    assert raised.value.key == "device_classes.board.neo_target_device"
    assert "riscboard," not in str(raised.value).split("allowed:")[1]


@pytest.mark.usefixtures("with_new_target")
def test_a_target_added_to_the_catalog_is_accepted_with_its_architecture() -> None:
    config = build_config("dev", merge_context({}, {}, {"device_classes": _class("riscboard")}))
    (board,) = config.device_classes
    assert board.neo_target is not None and board.neo_target.device == "riscboard"
    assert board.architecture == "aarch64"
    # An edge target: PyTorch as Neo's edge devices accept it.
    with pytest.raises(ConfigError, match=r"riscboard \(device class board\) accepts PyTorch 1.7"):
        build_config(
            "dev",
            merge_context(
                {}, {}, {"device_classes": _class("riscboard"), "pytorch_version": "2.0"}
            ),
        )


@pytest.mark.usefixtures("with_new_target")
def test_a_target_added_to_the_catalog_is_listed_in_the_error_for_a_wrong_one() -> None:
    with pytest.raises(ConfigError) as raised:
        build_config("dev", merge_context({}, {}, {"device_classes": _class("riscbored")}))
    assert "riscboard" in str(raised.value).split("allowed:")[1]


def test_an_architecture_added_to_the_catalog_is_a_platform(monkeypatch) -> None:
    arch = NeoTargetSpec("RISCV64", "arch", "riscv64")
    platform = {"default": {"thing_group": "G", "neo_target_platform": "LINUX/RISCV64"}}
    with pytest.raises(ConfigError, match="ARCH one of X86_64, X86, ARM64, ARM_EABI, ARM_EABIHF,"):
        build_config("dev", merge_context({}, {}, {"device_classes": platform}))
    monkeypatch.setattr(neo_targets, "NEO_TARGETS", (*neo_targets.NEO_TARGETS, arch))
    config = build_config("dev", merge_context({}, {}, {"device_classes": platform}))
    assert config.device_classes[0].architecture == "riscv64"


@pytest.mark.usefixtures("with_new_target")
def test_a_target_added_to_the_catalog_gives_its_platform_to_the_class_recipes(tmp_path) -> None:
    """The synthesized pipeline: every component of the class is for the target's platform."""
    template = pipeline_template(
        tmp_path,
        device_classes={**_class("riscboard"), "gw": {"thing_group": "Gw", "build": "onnx"}},
    )
    recipes = component_recipes(template)
    board = {n: r for n, r in recipes.items() if ".board." in n}
    assert len(board) == 3, sorted(recipes)  # model, runtime, inference
    for recipe in board.values():
        assert [m["Platform"] for m in recipe["Manifests"]] == [
            {"os": "linux", "architecture": "aarch64"}
        ]


def _readme_configuration_keys() -> set[str]:
    """The keys of the README's configuration table (first column, backticked names)."""
    lines = (REPO_ROOT / "README.md").read_text().splitlines()
    start = lines.index("| key | default | meaning |")
    names: set[str] = set()
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        names.update(re.findall(r"`([a-z][a-z0-9_]*)`", line.split("|")[1]))
    return names


def test_the_readme_documents_every_key_of_the_table() -> None:
    """A key added to the table needs its README row too (the one place a user reads)."""
    app_keys = {"stage", "account", "region"}
    assert _readme_configuration_keys() - app_keys == {row.name for row in keys.KEYS}
