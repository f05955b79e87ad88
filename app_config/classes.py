"""The device classes section: ``device_classes`` (or the one ``default`` class made of the
single-target keys), each class's build, target, runtime and thing groups."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from app_config.errors import ConfigError, did_you_mean
from app_config.keys import DEFAULTS
from app_config.neo import parse_compiler_options, parse_neo_target, target_architecture
from app_config.parse import THING_GROUP_RE, as_int, choice, matching
from app_config.releases import parse_release
from device_contract.settings import setting
from edge_constructs.props import DEFAULT_CLASS, DeviceClass, NeoTarget

RUNTIME_COMPONENTS = ("bundled", "variant.DLR")
BUILDS = ("neo", "onnx")
# Greengrass platform architectures (recipe `Platform.architecture`) an ONNX class may name.
ONNX_ARCHITECTURES = ("amd64", "aarch64")
# Keys of one entry of `device_classes` (a subset of the single-target keys, plus build/arch).
CLASS_KEYS = (
    "thing_group",
    "build",
    "neo_target_device",
    "neo_target_platform",
    "neo_compiler_options",
    "runtime_component",
    "platform_architecture",
    "canary_thing_group",
    "quantize",
    "int8_format",
    "batch_size",
    "inference_threads",
)
QUANTIZE = ("none", "int8")
# The single-target keys: without device_classes they make the class "default".
SINGLE_TARGET_KEYS = tuple(k for k in CLASS_KEYS if k in DEFAULTS)

_CLASS_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,31}$")


def _device_class(
    name: str, entry: Mapping[str, Any], key_prefix: str, release: object, stage: str
) -> DeviceClass:
    """One class from its raw entry; errors name ``<key_prefix><key>``."""

    def key(name_: str) -> str:
        return f"{key_prefix}{name_}"

    build = choice(key("build"), entry.get("build", "neo"), BUILDS)
    thing_group = matching(
        key("thing_group"),
        entry.get("thing_group", ""),
        THING_GROUP_RE,
        "1-128 characters: letters, digits, ':', '_' and '-'",
    )
    canary = str(entry.get("canary_thing_group") or "").strip()
    if canary:
        matching(
            key("canary_thing_group"),
            canary,
            THING_GROUP_RE,
            "empty or 1-128 characters: letters, digits, ':', '_' and '-'",
        )
        if canary == thing_group:
            raise ConfigError(
                key("canary_thing_group"), canary, "must differ from the class's thing_group"
            )
    arch_text = str(entry.get("platform_architecture") or "").strip()
    neo_target: NeoTarget | None = None
    compiler_options: dict[str, Any] | None = None
    if build == "neo":
        neo_target = parse_neo_target(
            entry.get("neo_target_device", ""), entry.get("neo_target_platform", ""), key_prefix
        )
        compiler_options = parse_compiler_options(
            entry.get("neo_compiler_options", ""), neo_target, key_prefix
        )
        runtime = choice(
            key("runtime_component"), entry.get("runtime_component", "bundled"), RUNTIME_COMPONENTS
        )
        derived = target_architecture(neo_target)
        if arch_text and arch_text != derived:
            raise ConfigError(
                key("platform_architecture"),
                arch_text,
                f"a neo class takes its architecture from the Neo target ({derived or 'none'}); "
                "leave it empty",
            )
        architecture = derived
    else:
        for ignored in ("neo_target_device", "neo_target_platform", "neo_compiler_options"):
            if str(entry.get(ignored) or "").strip():
                raise ConfigError(key(ignored), entry[ignored], "an onnx class is not compiled")
        runtime_text = str(entry.get("runtime_component") or "onnxruntime").strip()
        runtime = choice(key("runtime_component"), runtime_text, ("onnxruntime",))
        architecture = choice(
            key("platform_architecture"), arch_text or "amd64", ONNX_ARCHITECTURES
        )
    quantize, int8_format = _quantize(entry, build, key)
    batch_size, inference_threads = _tuning(entry, build, key)
    return DeviceClass(
        name=name,
        thing_group=thing_group,
        build=build,
        neo_target=neo_target,
        neo_compiler_options=compiler_options,
        runtime=runtime,
        architecture=architecture,
        canary_thing_group=canary,
        release=parse_release(f"releases.{stage}.{name}", release, canary),
        quantize=quantize,
        int8_format=int8_format,
        batch_size=batch_size,
        inference_threads=inference_threads,
    )


def _tuning(entry: Mapping[str, Any], build: str, key: Any) -> tuple[int, int]:
    """``batch_size`` and ``inference_threads`` of one class: the inference component's
    ``BatchSize`` and ``InferenceThreads``, with the bounds of its settings table
    (device_contract/settings.py); empty or null means the default. Neither works on a neo
    class: Neo compiles the model for the one input shape the compilation job is given
    (``InputConfig.DataInputConfig``, batch 1), and DLR runs it on TVM's own thread pool."""
    values = []
    for name, setting_key in (
        ("batch_size", "BatchSize"),
        ("inference_threads", "InferenceThreads"),
    ):
        row = setting(setting_key)
        low, high = int(row.low or 0), int(row.high or 0)
        raw = entry.get(name)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            raw = row.default
        values.append(as_int(key(name), raw, minimum=low, maximum=high))
    if values[0] != 1 and build != "onnx":
        raise ConfigError(
            key("batch_size"),
            values[0],
            "Neo compiles the model for batch 1; only onnx classes (build: onnx) run batches",
        )
    if values[1] != 0 and build != "onnx":
        raise ConfigError(
            key("inference_threads"),
            values[1],
            "a neo class's devices run DLR, whose threads are TVM's own; it sets ONNX Runtime's "
            "threads on onnx classes (build: onnx)",
        )
    return values[0], values[1]


def _quantize(entry: Mapping[str, Any], build: str, key: Any) -> tuple[str, str]:
    """``quantize`` and ``int8_format`` of one class. The formats are train.py's
    (``--int8-format``, read from training_src at synth); the default, S8S8 QDQ, is what ONNX
    Runtime's guide calls "the default setting ... It should be the first choice" ("Quantize
    ONNX Models", Data type selection); an x86 device without VNNI may do better with
    ``u8s8-reduce-range`` (same guide, FAQ)."""
    from app_config.training import int8_formats

    quantize = choice(key("quantize"), str(entry.get("quantize") or "none").lower(), QUANTIZE)
    text = str(entry.get("int8_format") or "").strip().lower()
    if quantize == "int8" and build != "onnx":
        raise ConfigError(
            key("quantize"),
            entry["quantize"],
            "Neo compiles the FP32 model.pth; int8 models are built for onnx classes (build: onnx)",
        )
    if text and quantize != "int8":
        raise ConfigError(key("int8_format"), text, "only with quantize: int8")
    if quantize != "int8":
        return quantize, ""
    return quantize, choice(key("int8_format"), text or "s8s8", int8_formats())


def parse_device_classes(
    raw: Mapping[str, Any], releases: Mapping[str, Any], stage: str
) -> tuple[DeviceClass, ...]:
    """``device_classes`` from the merged configuration, or the one ``default`` class made of
    the single-target keys (whose errors keep naming those keys alone)."""
    classes = raw["device_classes"]
    if isinstance(classes, str):
        try:
            classes = json.loads(classes) if classes.strip() else {}
        except json.JSONDecodeError:
            raise ConfigError("device_classes", classes, "expected a JSON object") from None
    if not isinstance(classes, Mapping):
        raise ConfigError("device_classes", classes, "expected a JSON object of classes")
    if not classes:
        entry = {k: raw[k] for k in CLASS_KEYS if k in raw}
        entries: dict[str, tuple[Mapping[str, Any], str]] = {DEFAULT_CLASS: (entry, "")}
    else:
        entries = {}
        for name, entry in classes.items():
            prefix = f"device_classes.{name}."
            if not isinstance(name, str) or not _CLASS_NAME_RE.match(name):
                too_long = isinstance(name, str) and len(name) > 32
                raise ConfigError(
                    "device_classes",
                    name,
                    f"is {len(name)} characters; a class name has at most 32"
                    if too_long
                    else "a class name is a letter, then letters or digits (at most 32)",
                )
            if not isinstance(entry, Mapping):
                raise ConfigError(f"device_classes.{name}", entry, "expected a JSON object")
            for unknown in sorted(set(entry) - set(CLASS_KEYS)):
                raise ConfigError(
                    f"{prefix}{unknown}",
                    entry[unknown],
                    f"unknown key{did_you_mean(unknown, CLASS_KEYS)}; a class's keys: "
                    f"{', '.join(CLASS_KEYS)}",
                )
            entries[name] = (entry, prefix)
    if not isinstance(releases, Mapping):
        raise ConfigError(f"releases.{stage}", releases, "expected a JSON object of classes")
    for name in releases:
        if name not in entries:
            raise ConfigError(
                f"releases.{stage}.{name}", "...", f"no such device class ({', '.join(entries)})"
            )
    result = tuple(
        _device_class(name, entry, prefix, releases.get(name), stage)
        for name, (entry, prefix) in entries.items()
    )
    _check_thing_groups(result)
    return result


def class_move_warnings(
    raw: Mapping[str, Any], classes: tuple[DeviceClass, ...], namespace: str, stage: str
) -> tuple[str, ...]:
    """What synth says when a named class takes the stage's ``thing_group``, where a
    single-target fleet runs as the class ``default``: under any other name the fleet's
    deployment resource and component names change, so the stack creates a new deployment to
    that group and deletes the old one, and every device there reinstalls its components
    (README, "Moving a running fleet to device classes"). Synth cannot see whether devices run
    there; the group is where they would."""
    single = str(raw.get("thing_group") or "")
    return tuple(
        f"device_classes.{c.name}: thing group {single} is the stage's thing_group, where a "
        f"single-target fleet runs as class default. Named {c.name}, the class replaces the "
        f"deployment of the fleet already there and renames its components "
        f"({namespace}.{stage}.{c.name}.Model, ...): every device reinstalls them. To keep "
        "them, name the class default (README: Moving a running fleet to device classes)"
        for c in classes
        if c.name != DEFAULT_CLASS and c.thing_group == single
    )


def _thing_group_resource_name(group: str, first: bool) -> str:
    """The part of its CDK construct name the devices stack derives from a thing group's name
    (edge_constructs/core_device: ``ThingGroup`` for the first group, ``ThingGroup`` + the
    name's letters and digits for every other)."""
    return "" if first else re.sub(r"[^A-Za-z0-9]", "", group)


def _check_thing_groups(device_classes: tuple[DeviceClass, ...]) -> None:
    """Every group (fleet or canary) belongs to one class, and two groups never give the
    devices stack one construct name (CDK refuses that with an error that names no key)."""
    seen: dict[str, str] = {}
    resource_names: dict[str, tuple[str, str]] = {}
    for device_class in device_classes:
        for field_name in ("thing_group", "canary_thing_group"):
            group = getattr(device_class, field_name)
            if not group:
                continue
            key = class_key(device_class.name, field_name)
            if group in seen:
                raise ConfigError(
                    key,
                    group,
                    f"already the thing group of {seen[group]}: a device in two classes' groups "
                    "would get two deployments",
                )
            resource_name = _thing_group_resource_name(group, first=not seen)
            if resource_name in resource_names:
                other_key, other = resource_names[resource_name]
                raise ConfigError(
                    key,
                    group,
                    f"has the same letters and digits as {other_key} ({other!r}), and the "
                    "devices stack names each group's resource by them: change a letter or digit"
                    if resource_name
                    else "has no letters or digits, and the devices stack names every group "
                    f"after the first ({other_key}) by them: add a letter or digit",
                )
            seen[group] = key
            resource_names[resource_name] = (key, group)


def class_key(name: str, key: str) -> str:
    return key if name == DEFAULT_CLASS else f"device_classes.{name}.{key}"


def check_single_target_keys(layers: tuple[tuple[str, Mapping[str, Any]], ...]) -> None:
    """With ``device_classes``, a single-target key in that layer or a higher one would be
    silently ignored: fail instead. Lower layers are overridden, as by any higher layer."""
    classes_layer: int | None = None
    for index, (_, source) in enumerate(layers):
        if "device_classes" in source:
            value = source["device_classes"]
            empty = not value or (isinstance(value, str) and value.strip() in ("", "{}"))
            classes_layer = None if empty else index
    if classes_layer is None:
        return
    where = layers[classes_layer][0]
    for _, source in layers[classes_layer:]:
        for key in SINGLE_TARGET_KEYS:
            value = source.get(key)
            if value is not None and str(value).strip() not in ("", "{}"):
                raise ConfigError(
                    key,
                    value,
                    f"device_classes is set in {where}, so the single-target keys make no "
                    f"class: set it inside a class, device_classes.<class>.{key}",
                )
