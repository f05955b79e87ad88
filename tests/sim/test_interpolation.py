"""device_sim.interpolation on hand-written services (KernelConfigResolver.java)."""

from __future__ import annotations

from pathlib import Path

from device_sim.interpolation import NucleusPaths, ServiceConfig, json_pointer, resolve_services

ROOT = Path("/gg")


def services(interp_config: dict[str, object] | None = None) -> dict[str, ServiceConfig]:
    app = ServiceConfig(
        name="com.example.App",
        version="1.0.0",
        configuration=interp_config
        or {
            "Topic": "edge/{iot:thingName}/out",
            "accessControl": {
                "aws.greengrass.ipc.mqttproxy": {"p": {"resources": ["edge/{iot:thingName}/out"]}}
            },
        },
        lifecycle={
            "Setenv": {"P": "{artifacts:decompressedPath}/code", "W": "{work:path}"},
            "Run": {
                "Script": "run {configuration:/Topic} {kernel:rootPath} "
                "{com.example.Lib:artifacts:path} {com.example.Lib:configuration:/Level} "
                "{com.example.Far:work:path} {unknown:thing}"
            },
        },
        dependencies=frozenset({"com.example.Lib"}),
    )
    lib = ServiceConfig(
        "com.example.Lib", "2.1.0", {"Level": 3}, {}, frozenset({"com.example.Far"})
    )
    far = ServiceConfig("com.example.Far", "0.1.0", {}, {}, frozenset())
    return {s.name: s for s in (app, lib, far)}


def test_lifecycle_namespaces_and_direct_dependencies() -> None:
    out, unresolved = resolve_services(services(), NucleusPaths(ROOT), "thing-1")
    app = out["com.example.App"].lifecycle
    assert app["Setenv"] == {
        "P": "/gg/packages/artifacts-unarchived/com.example.App/1.0.0/code",
        "W": "/gg/work/com.example.App",
    }
    script = app["Run"]["Script"]
    assert script.startswith("run edge/{iot:thingName}/out /gg ")  # config value taken verbatim
    assert "/gg/packages/artifacts/com.example.Lib/2.1.0 3 " in script
    # Far is a dependency of a dependency, not of App: left as is
    assert "{com.example.Far:work:path}" in script
    assert "{unknown:thing}" in script
    assert any("com.example.Far" in u and "not a direct dependency" in u for u in unresolved)


def test_configuration_is_not_interpolated_by_default() -> None:
    out, _ = resolve_services(services(), NucleusPaths(ROOT), "thing-1")
    config = out["com.example.App"].configuration
    assert config["Topic"] == "edge/{iot:thingName}/out"
    resources = config["accessControl"]["aws.greengrass.ipc.mqttproxy"]["p"]["resources"]
    assert resources == ["edge/{iot:thingName}/out"]


def test_configuration_interpolated_with_system_parameters_only_when_enabled() -> None:
    svc = services(
        {
            "Topic": "edge/{iot:thingName}/out",
            "Copy": "{configuration:/Topic}",
            "Path": "{work:path}",
        }
    )
    out, _ = resolve_services(
        svc, NucleusPaths(ROOT), "thing-1", interpolate_component_configuration=True
    )
    config = out["com.example.App"].configuration
    assert config["Topic"] == "edge/thing-1/out"
    assert config["Path"] == "/gg/work/com.example.App"
    assert config["Copy"] == "{configuration:/Topic}"  # no configuration namespace there
    # and the lifecycle reads the (interpolated) configuration
    assert out["com.example.App"].lifecycle["Run"]["Script"].startswith("run edge/thing-1/out")


def test_json_pointer_escapes_and_containers() -> None:
    doc = {"a/b": {"c~d": [1, {"e": True}]}}
    assert json_pointer(doc, "/a~1b/c~0d/1/e") == (True, True)
    assert json_pointer(doc, "/missing") == (False, None)
    svc = {
        "x": ServiceConfig(
            "x",
            "1.0.0",
            {"M": {"k": [1, 2]}, "B": False},
            {"Run": "{configuration:/M} {configuration:/B}"},
            frozenset(),
        )
    }
    out, _ = resolve_services(svc, NucleusPaths(ROOT), "t")
    assert out["x"].lifecycle["Run"] == '{"k":[1,2]} false'
