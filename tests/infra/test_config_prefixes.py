"""Two pipelines (two ``prefix`` values) in one account: the names the prefix does not spell
out itself, the thing groups and the component namespace, default to names derived from the
prefix, and a second prefix that keeps the default pipeline's names is refused at synth,
naming the key (issue 17: "two stages and two prefixes side by side in one account").

Thing group names and component names are unique per account and region: botocore's IoT model
(``iot/2015-05-28/service-2.json``), ``CreateThingGroup`` -> ResourceAlreadyExistsException;
greengrassv2 (``greengrassv2/2020-11-30/service-2.json``), ``CreateComponentVersion`` ->
ConflictException, and two pipelines that share component names share their versions.
"""

from __future__ import annotations

from typing import Any

import pytest

from app_config import DEFAULTS, ConfigError, build_config, load_config, merge_context

EDGE_B = {"prefix": "edge-b"}


def config(stage_layer: dict[str, Any] | None = None, **pipeline: object):  # type: ignore[no-untyped-def]
    return build_config("dev", merge_context(pipeline, stage_layer or {}, {}))


def test_the_default_prefix_keeps_its_names() -> None:
    """The default prefix derives exactly the names it always had (no rename on upgrade)."""
    default = config()
    assert default.prefix == DEFAULTS["prefix"] == "edge-ai"
    assert default.component_namespace == DEFAULTS["component_namespace"] == "com.example.edgeai"
    assert default.device_classes[0].thing_group == DEFAULTS["thing_group"] == "EdgeAiCoreDevices"


@pytest.mark.parametrize(
    ("prefix", "namespace", "group"),
    [
        ("edge-b", "com.example.edgeb", "EdgeBCoreDevices"),
        ("plant-7-vision", "com.example.plant7vision", "Plant7VisionCoreDevices"),
        ("edge-ai-b", "com.example.edgeaib", "EdgeAiBCoreDevices"),
    ],
)
def test_names_not_given_derive_from_the_prefix(prefix: str, namespace: str, group: str) -> None:
    derived = config(prefix=prefix)
    assert derived.component_namespace == namespace
    assert derived.device_classes[0].thing_group == group


def test_names_given_under_another_prefix_are_kept() -> None:
    own = config(
        {"thing_group": "Factory7Cameras"}, prefix="edge-b", component_namespace="com.acme.vision"
    )
    assert own.component_namespace == "com.acme.vision"
    assert own.device_classes[0].thing_group == "Factory7Cameras"


@pytest.mark.parametrize(
    ("stage_layer", "pipeline", "key", "suggested"),
    [
        ({}, {"component_namespace": "com.example.edgeai"}, "component_namespace", "edgeb"),
        ({"thing_group": "EdgeAiDevCoreDevices"}, {}, "thing_group", "EdgeBDevCoreDevices"),
        (
            {"canary_thing_group": "EdgeAiDevCanary", "thing_group": "EdgeBFleet"},
            {},
            "canary_thing_group",
            "EdgeBDevCanary",
        ),
        (
            {},
            {
                "device_classes": {
                    "jetson": {
                        "thing_group": "EdgeAiDevJetsons",
                        "neo_target_device": "jetson_nano",
                    }
                }
            },
            "device_classes.jetson.thing_group",
            "EdgeBDevJetsons",
        ),
    ],
)
def test_a_second_prefix_keeping_the_default_pipelines_names_is_refused(
    stage_layer: dict[str, Any], pipeline: dict[str, Any], key: str, suggested: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        config(stage_layer, **EDGE_B, **pipeline)
    assert caught.value.key == key
    assert suggested in str(caught.value)
    assert "edge-ai" in str(caught.value)  # says whose names these are


@pytest.mark.parametrize("prefix", ["edgeai", "edge"])
def test_a_prefix_that_cannot_tell_its_names_apart_is_refused(prefix: str) -> None:
    """``edgeai`` derives the default pipeline's very names (``-`` is dropped from the
    namespace); ``edge`` does not separate ``EdgeAi...`` groups from its own."""
    with pytest.raises(ConfigError) as caught:
        config({"thing_group": "EdgeAiDevCoreDevices"}, prefix=prefix)
    assert caught.value.key in ("component_namespace", "thing_group")


def test_every_offending_key_is_named_at_once() -> None:
    """A copied cdk.json with only the prefix changed names both keys, and where each is set."""
    context = {
        "pipeline": {"prefix": "edge-b", "component_namespace": "com.example.edgeai"},
        "stages": {"dev": {"thing_group": "EdgeAiDevCoreDevices"}},
    }
    with pytest.raises(ConfigError) as caught:
        load_config(context, "dev")
    message = str(caught.value)
    assert "component_namespace" in message and "stages.<stage>.thing_group" in message, message
