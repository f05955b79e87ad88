"""Loading: merge the layers (defaults, ``pipeline``, ``stages.<stage>``, ``-c``), then build
the :class:`PipelineConfig` section by section."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app_config import keys
from app_config.classes import (
    check_single_target_keys,
    class_move_warnings,
    parse_device_classes,
)
from app_config.components import parse_log_retention, parse_nucleus_version, parse_topic_prefix
from app_config.demo import parse_demo_device
from app_config.deployment import parse_deployment
from app_config.errors import ConfigError, did_you_mean
from app_config.names import (
    check_prefix_names,
    derive_names,
    parse_namespace,
    parse_prefix,
    parse_stage,
)
from app_config.neo import pytorch_version
from app_config.parse import json_object, optional_s3
from app_config.releases import check_component_names, check_release_topics, check_releases
from app_config.training import parse_channel_triple, parse_input_shape, parse_training
from edge_constructs.props import FleetAlarmsConfig, PipelineConfig


def build_config(
    stage: str, raw: Mapping[str, Any], releases: Mapping[str, Any] | None = None
) -> PipelineConfig:
    """Validate a merged raw mapping (see :func:`merge_context`) into a :class:`PipelineConfig`.

    ``releases``: the stage's promoted releases (``releases.<stage>`` in cdk.json), per class.
    """
    prefix = parse_prefix(raw["prefix"])
    device_classes = parse_device_classes(raw, releases or {}, stage)
    targets = {c.name: c.neo_target for c in device_classes if c.neo_target is not None}
    values = keys.parse_plain(raw)
    training = parse_training(raw, values, device_classes)
    deployment = parse_deployment(values)
    nucleus_version = parse_nucleus_version(raw["nucleus_version"], device_classes)
    retention = parse_log_retention(raw["log_retention_days"])
    component_namespace = parse_namespace(raw["component_namespace"])
    check_component_names(component_namespace, stage, device_classes)
    check_releases(component_namespace, stage, device_classes)
    publish_topic_prefix = parse_topic_prefix(raw["publish_topic_prefix"])
    check_release_topics(stage, device_classes, publish_topic_prefix)
    check_prefix_names(prefix, component_namespace, device_classes)
    demo_device = parse_demo_device(raw, device_classes, values["demo_device"])
    return PipelineConfig(
        stage=parse_stage(stage),
        prefix=prefix,
        component_namespace=component_namespace,
        architecture=values["architecture"],
        pytorch_version=pytorch_version(raw["pytorch_version"], targets),
        input_shape=parse_input_shape(raw["input_shape"]),
        input_mean=parse_channel_triple("input_mean", raw["input_mean"], positive=False),
        input_std=parse_channel_triple("input_std", raw["input_std"], positive=True),
        training=training,
        model_artifact_uri=optional_s3("model_artifact_uri", raw["model_artifact_uri"]),
        compilation_max_runtime_seconds=values["compilation_max_runtime_seconds"],
        device_classes=device_classes,
        variant_dlr_version=values["variant_dlr_version"],
        log_manager_version=values["log_manager_version"],
        nucleus_version=nucleus_version,
        log_retention_days=retention,
        inference_top_k=values["inference_top_k"],
        publish_topic_prefix=publish_topic_prefix,
        deployment=deployment,
        noncurrent_version_expiration_days=values["noncurrent_version_expiration_days"],
        demo_device=demo_device,
        fleet_alarms=parse_fleet_alarms(values),
        settings=values,
        warnings=class_move_warnings(raw, device_classes, component_namespace, stage),
    )


def parse_fleet_alarms(values: Mapping[str, Any]) -> FleetAlarmsConfig:
    """The fleet alarms' keys, each bounded on its own in the key table, and their window:
    "Period multiplied by EvaluationPeriods can't be more than 604,800 seconds. For alarms with
    a period of less than one hour (3,600 seconds), the total evaluation period can't be longer
    than one day (86,400 seconds)" (botocore ``cloudwatch/2010-08-01``, PutMetricAlarm
    ``Period``): CloudFormation would refuse the alarm at deploy time."""
    count = values["alarm_evaluation_periods"]
    for period_key in ("alarm_period_minutes", "alarm_drift_period_minutes"):
        period = values[period_key] * 60
        limit = 604_800 if period >= 3_600 else 86_400
        if period * count > limit:
            raise ConfigError(
                "alarm_evaluation_periods",
                count,
                f"{count} periods of {period_key}={values[period_key]} is "
                f"{period * count} s; CloudWatch allows at most {limit} s "
                + ("(7 days)" if limit == 604_800 else "(1 day, for a period under an hour)"),
            )
    return FleetAlarmsConfig(
        failure_rate_percent=values["alarm_failure_rate_percent"],
        latency_p95_ms=values["alarm_latency_p95_ms"],
        low_confidence_percent=values["alarm_low_confidence_percent"],
        period_minutes=values["alarm_period_minutes"],
        evaluation_periods=count,
        drift_psi_hundredths=values["alarm_drift_psi_hundredths"],
        drift_min_results=values["alarm_drift_min_results"],
        drift_period_minutes=values["alarm_drift_period_minutes"],
    )


def check_brought_model_named(layers: tuple[tuple[str, Mapping[str, Any]], ...]) -> None:
    """The layer that brings a model (``model_artifact_uri``) names it (``architecture``), or
    a higher one does. architecture names the package, the model id and the Neo job; the
    value of a lower layer (cdk.json's ``pipeline.architecture``, vgg16, is what training
    fine-tunes) would label the brought model as that model on every device."""
    brought = None
    for index, (_, source) in enumerate(layers):
        if "model_artifact_uri" in source:
            brought = index if str(source["model_artifact_uri"] or "").strip() else None
    if brought is None:
        return
    if any("architecture" in source for _, source in layers[brought:]):
        return
    where = layers[brought][0]
    raise ConfigError(
        "architecture",
        next((s["architecture"] for _, s in reversed(layers) if "architecture" in s), "vgg16"),
        f"model_artifact_uri ({where}) brings a model, so name it there too: set architecture "
        "to your model's name (e.g. -c architecture=resnet18); this value is the one training "
        "fine-tunes, and would name your model's package and model id",
    )


def _hint(key: str) -> str:
    return did_you_mean(key, keys.defaults())


def merge_context(
    base: Mapping[str, Any], stage_overrides: Mapping[str, Any], cli: Mapping[str, Any]
) -> dict[str, Any]:
    """Defaults < cdk.json ``pipeline`` < ``stages.<stage>`` < ``-c`` values. Unknown keys fail."""
    merged: dict[str, Any] = keys.defaults()
    for source_name, source in (("pipeline", base), ("stage", stage_overrides), ("-c", cli)):
        for key, value in source.items():
            if key not in merged:
                raise ConfigError(key, value, f"unknown key in {source_name}{_hint(key)}")
            if key == "hyperparameters":
                # Merged over the defaults and the layers below, not replaced: a user who sets
                # epochs keeps pretrained=true. A null value removes an entry.
                value = {**merged[key], **json_object(key, value)}
            merged[key] = value
    check_single_target_keys((("pipeline", base), ("stage", stage_overrides), ("-c", cli)))
    given = {key for source in (base, stage_overrides, cli) for key in source}
    check_brought_model_named((("pipeline", base), ("stage", stage_overrides), ("-c", cli)))
    derive_names(merged, given)
    return merged


def load_config(context: Mapping[str, Any], stage: str) -> PipelineConfig:
    """Build a stage's configuration from the CDK context.

    ``context`` holds ``pipeline`` (an object), ``stages`` (name -> overrides), ``releases``
    (stage -> class -> promoted release, written by ``python -m rollout.promote``) and any
    ``-c key=value`` given on the command line (keys of :data:`app_config.DEFAULTS`).
    """
    stages = context.get("stages") or {}
    if not isinstance(stages, Mapping):
        raise ConfigError("stages", stages, "expected a JSON object: stage name -> overrides")
    if not stages:
        raise ConfigError(
            "stage",
            stage,
            "no stages in the CDK context: run the app with `cdk synth` (which passes "
            "cdk.json's context), and define stages in cdk.json",
        )
    known = keys.defaults()
    # Every stage's keys, whatever stage is synthesized: a typo under stages.prod must not
    # wait for the day prod is deployed.
    for name, overrides in stages.items():
        if overrides is not None and not isinstance(overrides, Mapping):
            raise ConfigError(f"stages.{name}", overrides, "expected a JSON object of keys")
        for key, value in (overrides or {}).items():
            if key not in known:
                raise ConfigError(
                    f"stages.{name}.{key}", value, f"unknown key in stage {name}{_hint(key)}"
                )
    if stage not in stages:
        raise ConfigError(
            "stage", stage, f"stages defined in cdk.json: {', '.join(sorted(stages))}"
        )
    base = context.get("pipeline") or {}
    cli = {k: v for k, v in context.items() if k in known}
    releases = context.get("releases") or {}
    if not isinstance(releases, Mapping):
        raise ConfigError("releases", releases, "expected a JSON object: stage -> class -> release")
    stage_releases = releases.get(stage) or {}
    return build_config(stage, merge_context(base, stages[stage] or {}, cli), stage_releases)
