"""Every unknown key says what was probably meant (issue 18, "smaller edges"): ``-c`` keys,
top-level cdk.json sections, stage keys and device class keys, as cdk.json's keys already did.
The CDK's own context keys (``@aws-cdk/...``, ``aws:cdk:...``, lookups cached with ``:``) and
another tool's capitalised entries pass untouched."""

from __future__ import annotations

from typing import Any

import pytest

import app as cdk_app
from app_config import ConfigError, did_you_mean, load_config
from tests.infra.conftest import CDK_JSON_CONTEXT, THREE_CLASSES


@pytest.mark.parametrize(
    ("context", "key", "meant"),
    [
        ({"inference_topk": "3"}, "inference_topk", "inference_top_k"),
        ({"thing_groupp": "G"}, "thing_groupp", "thing_group"),
        ({"pipline": {"epochs": 3}}, "pipline", "pipeline"),
        ({"Stages": {}}, "Stages", "stages"),
        ({"device-classes": {}}, "device-classes", "device_classes"),
        ({"relases": {}}, "relases", "releases"),
    ],
)
def test_a_mistyped_c_key_or_section_names_what_was_meant(
    context: dict[str, Any], key: str, meant: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        cdk_app.create_app(context={**CDK_JSON_CONTEXT, **context})
    message = str(refused.value)
    assert message.startswith(f"invalid configuration {key}=")
    assert f"did you mean {meant}" in message.split("?")[0] + "?"


def test_a_section_is_called_a_section_and_not_printed_whole() -> None:
    with pytest.raises(
        ConfigError, match=r"pipline='\{\.\.\.\}': unknown section .*did you mean pipeline\?"
    ):
        cdk_app._check_keys({"pipline": {"epochs": 3}})


def test_a_plain_unknown_key_with_nothing_close_still_fails() -> None:
    with pytest.raises(ConfigError, match=r"widget_count='7': unknown key .*README"):
        cdk_app._check_keys({"widget_count": "7"})


@pytest.mark.parametrize(
    "key",
    [
        "@aws-cdk/core:newStyleStackSynthesis",
        "aws:cdk:enable-path-metadata",
        "availability-zones:account=123456789012:region=eu-west-1",
        "acknowledged-issue-numbers",
        "SomeOtherTool",
    ],
)
def test_the_cdks_own_keys_and_other_tools_entries_pass(key: str) -> None:
    cdk_app._check_keys({key: {"x": 1}})


def test_a_mistyped_stage_key_names_what_was_meant() -> None:
    context = {**CDK_JSON_CONTEXT, "stages": {"dev": {"inference_topk": 3}}}
    with pytest.raises(
        ConfigError, match=r"stages\.dev\.inference_topk=3: .*did you mean inference_top_k\?"
    ):
        load_config(context, "dev")


def test_a_mistyped_class_key_names_what_was_meant() -> None:
    classes = dict(THREE_CLASSES)
    classes["jetson"] = {**classes["jetson"], "canary_thinggroup": "X"}
    with pytest.raises(
        ConfigError,
        match=r"device_classes\.jetson\.canary_thinggroup='X': unknown key \(did you mean "
        r"canary_thing_group\?\)",
    ):
        load_config({**CDK_JSON_CONTEXT, "device_classes": classes}, "dev")


def test_nothing_close_gives_no_hint_and_close_words_give_at_most_a_few() -> None:
    assert did_you_mean("zzz", ["epochs", "prefix"]) == ""
    words = ("top_k", "settle_seconds", "poll_interval", "max_image_pixels", "runtime", "topic")
    hint = did_you_mean("inference_qqqqqqqq", [f"inference_{w}" for w in words])
    # nothing reads alike, so the keys of the same first word, sorted, five at most
    assert hint == (
        " (did you mean inference_max_image_pixels, inference_poll_interval, inference_runtime, "
        "inference_settle_seconds, inference_top_k?)"
    )
    assert did_you_mean("inference_settle_secs", [f"inference_{w}" for w in words]) == (
        " (did you mean inference_settle_seconds?)"
    )
