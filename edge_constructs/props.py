"""The typed configuration the constructs and stacks take, as frozen dataclasses.

``app_config`` builds and validates it (and re-exports every type here: ``from app_config
import PipelineConfig`` is the way the stacks and tests name it). The types live here, in a
standard-library module of ``edge_constructs``, so that the constructs can take them as props
without importing ``app_config``: the configuration depends on the constructs' types, never
the other way round.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The class made of the single-target keys; its components keep the single-target names.
from device_contract.names import DEFAULT_CLASS as DEFAULT_CLASS


@dataclass(frozen=True)
class NeoTarget:
    """Where Neo compiles for: a named device, or an OS/arch(/accelerator) platform."""

    device: str | None = None
    os: str | None = None
    arch: str | None = None
    accelerator: str | None = None

    @property
    def is_cloud(self) -> bool:
        return self.device is not None and self.device.startswith("ml_")

    @property
    def slug(self) -> str:
        """A short name for resource names and logs, e.g. ``jetson_nano`` or ``linux-x86_64``."""
        if self.device:
            return self.device
        parts = [self.os or "", self.arch or ""] + ([self.accelerator] if self.accelerator else [])
        return "-".join(parts).lower()


@dataclass(frozen=True)
class TrainingConfig:
    instance_type: str
    instance_count: int
    volume_gb: int
    max_runtime_seconds: int
    use_spot: bool
    max_wait_seconds: int
    image_uri: str
    data_uri: str
    validation_uri: str
    hyperparameters: Mapping[str, str]
    run_id: str


@dataclass(frozen=True)
class DeploymentConfig:
    timeout_minutes: int
    rollout_max_per_minute: int
    abort_failure_threshold_percent: int
    abort_min_executed_things: int
    component_update_policy: str
    component_update_timeout_seconds: int


@dataclass(frozen=True)
class DemoDeviceConfig:
    """The optional EC2 demo core device (stack ``<prefix>-<stage>-demo-device``)."""

    enabled: bool
    instance_type: str
    #: The device class it joins (default: the first), and the group it joins: the class's
    #: canary group when it has one (where the latest change goes), else the class's group.
    device_class: str = ""
    thing_group: str = ""


@dataclass(frozen=True)
class FleetAlarmsConfig:
    """The stage's fleet alarms (``edge_constructs/fleet_metrics``): thresholds and periods.

    failure_rate_percent: alarm past this share of failed inputs.
    latency_p95_ms: alarm past this p95 latency on any device.
    low_confidence_percent: alarm past this share of results in the lowest confidence bucket.
    period_minutes: the period each alarm evaluates.
    evaluation_periods: periods in a row past the threshold before ALARM.
    drift_psi_hundredths: the drift alarm's threshold, the population stability index of the
        fleet's top-1 confidence buckets against the training baseline, in hundredths (25:
        PSI 0.25, the usual rule's "significant shift"; 0.1 to 0.25 is "moderate").
    drift_min_results: a drift period with fewer results counts as PSI 0 (too few to tell).
    drift_period_minutes: the period the drift alarm evaluates (longer: drift needs results).
    """

    failure_rate_percent: int = 5
    latency_p95_ms: int = 2_000
    low_confidence_percent: int = 30
    period_minutes: int = 5
    evaluation_periods: int = 3
    drift_psi_hundredths: int = 25
    drift_min_results: int = 200
    drift_period_minutes: int = 60

    @property
    def drift_psi(self) -> float:
        return self.drift_psi_hundredths / 100


@dataclass(frozen=True)
class ComponentPin:
    """One component of a promoted release: its exact version and the configuration to merge;
    for the inference component, the topic prefix it was promoted with (its recipe's
    ``PublishTopic`` and ``accessControl`` name it; None in a release promoted before it was
    recorded)."""

    version: str
    merge: Mapping[str, Any] | None = None
    publish_topic_prefix: str | None = None


@dataclass(frozen=True)
class DeviceClass:
    """A kind of device: where it is (thing groups), how its model is built, what it runs.

    name: letters and digits; part of the component names of every class but ``default``.
    thing_group: the fleet's thing group.
    build: ``neo`` (Neo compiles for ``neo_target``, devices run DLR) or ``onnx`` (the training
        job's ONNX export, devices run ONNX Runtime).
    neo_target: the Neo target (``neo`` builds only).
    neo_compiler_options: Neo's OutputConfig.CompilerOptions, or None.
    runtime: ``bundled`` (our DLR venv), ``variant.DLR`` (the public component) or
        ``onnxruntime`` (our ONNX Runtime venv).
    architecture: the Greengrass platform architecture (``amd64``, ``aarch64``, ``arm``), or
        None when the Neo target does not say (the manifests then match any Linux).
    canary_thing_group: the canary ring ("" = none: every change goes to the whole class).
    quantize: ``none``, or ``int8`` (onnx classes): the class runs the training job's int8
        model (ONNX Runtime static QDQ, gated against FP32; training_src/edge_training/
        quantize.py) instead of its FP32 export.
    int8_format: the int8 types (``s8s8``, ``u8s8``, ``u8s8-reduce-range``), "" unless int8.
    batch_size: the inference component's ``BatchSize`` (onnx classes; 1: one by one).
    inference_threads: its ``InferenceThreads`` (0: one per core).
    release: the promoted release the rest of the class runs (canary classes only; None =
        nothing promoted yet, so the fleet gets no deployment from this stack).
    """

    name: str
    thing_group: str
    build: str
    neo_target: NeoTarget | None
    neo_compiler_options: dict[str, Any] | None
    runtime: str
    architecture: str | None
    canary_thing_group: str = ""
    release: Mapping[str, ComponentPin] | None = None
    quantize: str = "none"
    int8_format: str = ""
    batch_size: int = 1
    inference_threads: int = 0

    @property
    def int8(self) -> bool:
        return self.quantize == "int8"

    @property
    def dlr(self) -> bool:
        return self.build == "neo"


@dataclass(frozen=True)
class PipelineConfig:
    """Everything the stacks need, validated. Built by :func:`load_config`."""

    stage: str
    prefix: str
    component_namespace: str
    architecture: str
    pytorch_version: str
    input_shape: tuple[int, int, int, int]
    input_mean: tuple[float, float, float]
    input_std: tuple[float, float, float]
    training: TrainingConfig
    model_artifact_uri: str
    compilation_max_runtime_seconds: int
    device_classes: tuple[DeviceClass, ...]
    variant_dlr_version: str
    log_manager_version: str
    nucleus_version: str
    log_retention_days: int
    inference_top_k: int
    publish_topic_prefix: str
    deployment: DeploymentConfig
    noncurrent_version_expiration_days: int
    demo_device: DemoDeviceConfig = DemoDeviceConfig(enabled=False, instance_type="t3.medium")
    fleet_alarms: FleetAlarmsConfig = FleetAlarmsConfig()
    #: Every plain key (app_config/keys.py: a value checked on its own), parsed, by name: a
    #: key added to that table arrives here with no other change.
    settings: Mapping[str, Any] = field(default_factory=dict, compare=False)
    #: What synth warns about (``cdk synth`` prints each): configuration that is valid but
    #: likely not what the user meant, e.g. app_config.classes.class_move_warnings.
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def trains(self) -> bool:
        """False when the user brings an already-trained model (``model_artifact_uri``)."""
        return not self.model_artifact_uri

    @property
    def thing_groups(self) -> tuple[str, ...]:
        """Every thing group the classes name (fleets and canaries), in class order."""
        groups: list[str] = []
        for device_class in self.device_classes:
            groups.append(device_class.thing_group)
            if device_class.canary_thing_group:
                groups.append(device_class.canary_thing_group)
        return tuple(groups)
