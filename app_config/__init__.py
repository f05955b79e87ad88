"""Typed, validated configuration of the CDK app.

`app.py` is the only place that reads CDK context; it calls :func:`load_config` once and passes
the resulting :class:`PipelineConfig` down. Every value a user can get wrong is checked here and
fails synth with a :class:`ConfigError` that names the key, the value and what is allowed.

Where a value comes from, lowest precedence first:
1. the defaults in :data:`DEFAULTS` (documented in the README);
2. the ``pipeline`` object in ``cdk.json`` context;
3. the stage's overrides, ``stages.<name>`` in ``cdk.json`` context;
4. ``-c key=value`` on the command line (strings; parsed like everything else).

One module per section: ``keys`` (every key in one table: type, default, bounds, help; the
plain keys are checked there), ``names``, ``training``, ``neo`` (the targets themselves are one
table, ``edge_constructs/neo_targets.py``), ``classes``, ``releases``, ``components``,
``deployment``, ``demo``; ``loader`` merges the layers and builds the configuration. The types
are ``edge_constructs/props.py``'s, so the constructs take them without importing this package.
"""

from __future__ import annotations

from app_config.classes import (
    BUILDS,
    CLASS_KEYS,
    ONNX_ARCHITECTURES,
    RUNTIME_COMPONENTS,
    SINGLE_TARGET_KEYS,
    parse_device_classes,
)
from app_config.components import (
    TOPIC_MAX_BYTES,
    TOPIC_MAX_SLASHES,
    TOPIC_SUFFIX_MAX,
)
from app_config.demo import DEMO_DEVICE_INSTANCE_MEMORY_GIB, DEMO_DEVICE_MIN_MEMORY_GIB
from app_config.errors import ConfigError, did_you_mean
from app_config.keys import DEFAULTS, KEYS, MAX_COMPILATION_SECONDS, UPDATE_POLICIES, Key
from app_config.loader import build_config, load_config, merge_context
from app_config.names import S3_RESERVED_PREFIXES, prefix_names
from app_config.neo import (
    CLOUD_PYTORCH_VERSIONS,
    EDGE_PYTORCH_VERSIONS,
    NEO_CLOUD_DEVICES,
    NEO_EDGE_DEVICES,
    NEO_NVIDIA_DEVICES,
    NVIDIA_COMPILER_OPTIONS,
    NVIDIA_ONLY_OPTIONS,
    PLATFORM_ACCELERATOR,
    PLATFORM_ARCH,
    PLATFORM_OS,
    parse_compiler_options,
    parse_neo_target,
)
from app_config.releases import COMPONENT_NAME_MAX, release_components
from app_config.training import (
    PIPELINE_HYPERPARAMETERS,
    SAGEMAKER_ARGUMENTS,
    TRAINING_SRC,
    check_hyperparameters,
    parse_channel_triple,
    parse_input_shape,
)
from edge_constructs.limits import LOG_RETENTION_DAYS, MAX_TRAINING_WAIT_SECONDS
from edge_constructs.props import (
    DEFAULT_CLASS,
    ComponentPin,
    DemoDeviceConfig,
    DeploymentConfig,
    DeviceClass,
    FleetAlarmsConfig,
    NeoTarget,
    PipelineConfig,
    TrainingConfig,
)

__all__ = [
    "BUILDS",
    "CLASS_KEYS",
    "CLOUD_PYTORCH_VERSIONS",
    "COMPONENT_NAME_MAX",
    "DEFAULTS",
    "DEFAULT_CLASS",
    "DEMO_DEVICE_INSTANCE_MEMORY_GIB",
    "DEMO_DEVICE_MIN_MEMORY_GIB",
    "EDGE_PYTORCH_VERSIONS",
    "KEYS",
    "LOG_RETENTION_DAYS",
    "MAX_COMPILATION_SECONDS",
    "MAX_TRAINING_WAIT_SECONDS",
    "NEO_CLOUD_DEVICES",
    "NEO_EDGE_DEVICES",
    "NEO_NVIDIA_DEVICES",
    "NVIDIA_COMPILER_OPTIONS",
    "NVIDIA_ONLY_OPTIONS",
    "ONNX_ARCHITECTURES",
    "PIPELINE_HYPERPARAMETERS",
    "PLATFORM_ACCELERATOR",
    "PLATFORM_ARCH",
    "PLATFORM_OS",
    "RUNTIME_COMPONENTS",
    "S3_RESERVED_PREFIXES",
    "SAGEMAKER_ARGUMENTS",
    "SINGLE_TARGET_KEYS",
    "TOPIC_MAX_BYTES",
    "TOPIC_MAX_SLASHES",
    "TOPIC_SUFFIX_MAX",
    "TRAINING_SRC",
    "UPDATE_POLICIES",
    "ComponentPin",
    "ConfigError",
    "DemoDeviceConfig",
    "DeploymentConfig",
    "DeviceClass",
    "FleetAlarmsConfig",
    "Key",
    "NeoTarget",
    "PipelineConfig",
    "TrainingConfig",
    "build_config",
    "check_hyperparameters",
    "did_you_mean",
    "load_config",
    "merge_context",
    "parse_channel_triple",
    "parse_compiler_options",
    "parse_device_classes",
    "parse_input_shape",
    "parse_neo_target",
    "prefix_names",
    "release_components",
]
