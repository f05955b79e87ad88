"""The Neo section: a device class's Neo target, its compiler options, and the PyTorch version
every target accepts. The targets themselves are one table, ``edge_constructs/neo_targets.py``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from app_config.errors import ConfigError
from app_config.parse import choice
from edge_constructs import neo_targets
from edge_constructs.props import DEFAULT_CLASS, NeoTarget

EDGE_PYTORCH_VERSIONS = ("1.7", "1.8")
CLOUD_PYTORCH_VERSIONS = ("1.4", "1.5", "1.6", "1.7", "1.8", "1.12", "1.13", "2.0")
PLATFORM_OS = ("LINUX", "ANDROID")
PLATFORM_ACCELERATOR = ("INTEL_GRAPHICS", "MALI", "NVIDIA", "NNA")
# Neo requires CompilerOptions for NVIDIA accelerators (botocore sagemaker service model,
# OutputConfig.CompilerOptions: "It is required for NVIDIA accelerators"; NVIDIA options
# gpu-code, trt-ver, cuda-ver). The requirement is TargetPlatform-specific: a named device
# (TargetDevice, e.g. jetson_nano) carries its GPU, CUDA and TensorRT versions itself.
NVIDIA_COMPILER_OPTIONS = ("gpu-code", "trt-ver", "cuda-ver")
# The same model text spells gpu-code as gpu_code once; neither belongs to another target.
NVIDIA_ONLY_OPTIONS = (*NVIDIA_COMPILER_OPTIONS, "gpu_code")

# Views of the catalog as it stands at import (the parsers below read the catalog each call).
NEO_EDGE_DEVICES = frozenset(neo_targets.names("edge"))
NEO_CLOUD_DEVICES = frozenset(neo_targets.names("cloud"))
PLATFORM_ARCH = neo_targets.names("arch")
NEO_NVIDIA_DEVICES = neo_targets.nvidia_devices()


def parse_compiler_options(
    value: object, target: NeoTarget, key_prefix: str = ""
) -> dict[str, Any] | None:
    """``neo_compiler_options``: a JSON object passed to Neo as OutputConfig.CompilerOptions."""
    key = f"{key_prefix}neo_compiler_options"
    options: object = value
    if isinstance(value, str):
        try:
            options = json.loads(value) if value.strip() else None
        except json.JSONDecodeError:
            raise ConfigError(key, value, "expected a JSON object") from None
    if options is not None and not isinstance(options, Mapping):
        raise ConfigError(key, value, "expected a JSON object")
    if target.accelerator == "NVIDIA":
        missing = [k for k in NVIDIA_COMPILER_OPTIONS if not options or k not in options]
        if missing:
            raise ConfigError(
                key,
                value,
                f"required for the NVIDIA platform target {target.slug}: Neo needs "
                f"{', '.join(NVIDIA_COMPILER_OPTIONS)} (missing {', '.join(missing)}), e.g. "
                '{"gpu-code": "sm_72", "trt-ver": "8.5.2", "cuda-ver": "11.4"}',
            )
    nvidia = target.accelerator == "NVIDIA" or target.device in neo_targets.nvidia_devices()
    foreign = sorted(k for k in (options or {}) if k in NVIDIA_ONLY_OPTIONS)
    if foreign and not nvidia:
        # "The compiler options are TargetPlatform specific" (botocore sagemaker model,
        # OutputConfig.CompilerOptions), which lists these under "NVIDIA".
        raise ConfigError(
            key,
            value,
            f"NVIDIA options ({', '.join(foreign)}) but {target.slug} is not an NVIDIA target: "
            "Neo's compiler options are target specific; remove them",
        )
    return dict(options) if options else None


def parse_neo_target(device: object, platform: object, key_prefix: str = "") -> NeoTarget:
    """Exactly one of a named Neo device or an ``OS/ARCH[/ACCELERATOR]`` platform.

    ``key_prefix`` (``device_classes.<name>.``) makes errors name the class.
    """
    device_key, platform_key = f"{key_prefix}neo_target_device", f"{key_prefix}neo_target_platform"
    device_text = str(device or "").strip()
    platform_text = str(platform or "").strip()
    if device_text and platform_text:
        raise ConfigError(
            device_key,
            device_text,
            "set either neo_target_device or neo_target_platform, not both "
            + (
                "(remove one of them from the class)"
                if key_prefix
                else "(pass -c neo_target_platform= to clear the default platform)"
            ),
        )
    if device_text:
        allowed = frozenset(neo_targets.names("edge", "cloud"))
        return NeoTarget(device=choice(device_key, device_text, allowed))
    if not platform_text:
        raise ConfigError(platform_key, platform, "set a Neo target device or platform")
    parts = platform_text.upper().split("/")
    arches = neo_targets.names("arch")
    allowed_text = (
        f"expected OS/ARCH[/ACCELERATOR], OS one of {', '.join(PLATFORM_OS)}, ARCH one of "
        f"{', '.join(arches)}, ACCELERATOR one of {', '.join(PLATFORM_ACCELERATOR)}"
    )
    if len(parts) not in (2, 3) or parts[0] not in PLATFORM_OS or parts[1] not in arches:
        raise ConfigError(platform_key, platform, allowed_text)
    accelerator = parts[2] if len(parts) == 3 else None
    if accelerator is not None and accelerator not in PLATFORM_ACCELERATOR:
        raise ConfigError(platform_key, platform, allowed_text)
    return NeoTarget(os=parts[0], arch=parts[1], accelerator=accelerator)


def target_architecture(target: NeoTarget) -> str | None:
    """The Greengrass platform architecture of a Neo target (the catalog's), or None."""
    return neo_targets.architecture(target.device or target.arch or "")


def pytorch_version(value: object, targets: Mapping[str, NeoTarget]) -> str:
    """The PyTorch version every class's Neo target accepts (one training feeds them all)."""
    text = str(value).strip()
    if not targets:  # ONNX classes only: the training image's versions
        allowed: tuple[str, ...] = CLOUD_PYTORCH_VERSIONS
        if text not in allowed:
            raise ConfigError("pytorch_version", value, f"allowed: {', '.join(allowed)}")
    for name, target in targets.items():
        allowed = CLOUD_PYTORCH_VERSIONS if target.is_cloud else EDGE_PYTORCH_VERSIONS
        if text not in allowed:
            where = "" if name == DEFAULT_CLASS else f" (device class {name})"
            raise ConfigError(
                "pytorch_version",
                value,
                f"Neo target {target.slug}{where} accepts PyTorch {', '.join(allowed)}",
            )
    return text
