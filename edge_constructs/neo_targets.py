"""The catalog of Neo targets: one row per target, with what the pipeline derives from it.

Standard library only, so both ``app_config`` (which validates a device class's target) and
the constructs (``greengrass/recipes.py``) read the same table. Adding a Neo target device is
one row here: the configuration accepts it, its error messages list it, and a device class
built for it gets the row's Greengrass platform architecture in its recipes.

Names are SageMaker CreateCompilationJob's ``OutputConfig.TargetDevice`` values and
``TargetPlatform.Arch`` values (botocore ``sagemaker/2017-07-24/service-2.json``, shapes
``TargetDevice`` and ``TargetPlatformArch``). Edge devices accept PyTorch 1.7/1.8 only; cloud
``ml_*`` instances a wider set (SageMaker developer guide, "Supported Frameworks" for Neo edge
devices and cloud instances:
https://docs.aws.amazon.com/sagemaker/latest/dg/neo-supported-devices-edge-frameworks.html).
"""

from __future__ import annotations

from dataclasses import dataclass

#: A named edge device (``TargetDevice``), a cloud instance (``TargetDevice``, ``ml_*``), or a
#: platform architecture (``TargetPlatform.Arch``).
KINDS = ("edge", "cloud", "arch")


@dataclass(frozen=True)
class NeoTargetSpec:
    """One Neo target.

    name: the TargetDevice, or the TargetPlatform Arch.
    kind: one of :data:`KINDS`.
    architecture: the Greengrass platform architecture (recipe ``Platform.architecture``) of a
        Linux device that runs Neo's output for it, or None when the target does not say (the
        manifests then match any Linux).
    nvidia: the target has an NVIDIA GPU (Neo's NVIDIA compiler options apply to it).
    """

    name: str
    kind: str
    architecture: str | None = None
    nvidia: bool = False


NEO_TARGETS: tuple[NeoTargetSpec, ...] = (
    NeoTargetSpec("lambda", "edge"),
    NeoTargetSpec("jetson_tx1", "edge", "aarch64", nvidia=True),
    NeoTargetSpec("jetson_tx2", "edge", "aarch64", nvidia=True),
    NeoTargetSpec("jetson_nano", "edge", "aarch64", nvidia=True),
    NeoTargetSpec("jetson_xavier", "edge", "aarch64", nvidia=True),
    NeoTargetSpec("rasp3b", "edge", "arm"),
    NeoTargetSpec("rasp4b", "edge", "aarch64"),
    NeoTargetSpec("imx8qm", "edge", "aarch64"),
    NeoTargetSpec("imx8mplus", "edge", "aarch64"),
    NeoTargetSpec("deeplens", "edge"),
    NeoTargetSpec("rk3399", "edge"),
    NeoTargetSpec("rk3288", "edge"),
    NeoTargetSpec("aisage", "edge"),
    NeoTargetSpec("sbe_c", "edge"),
    NeoTargetSpec("qcs605", "edge"),
    NeoTargetSpec("qcs603", "edge"),
    NeoTargetSpec("sitara_am57x", "edge"),
    NeoTargetSpec("amba_cv2", "edge"),
    NeoTargetSpec("amba_cv22", "edge"),
    NeoTargetSpec("amba_cv25", "edge"),
    NeoTargetSpec("x86_win32", "edge"),
    NeoTargetSpec("x86_win64", "edge"),
    NeoTargetSpec("coreml", "edge"),
    NeoTargetSpec("ml_m4", "cloud"),
    NeoTargetSpec("ml_m5", "cloud"),
    NeoTargetSpec("ml_m6g", "cloud"),
    NeoTargetSpec("ml_c4", "cloud"),
    NeoTargetSpec("ml_c5", "cloud"),
    NeoTargetSpec("ml_c6g", "cloud"),
    NeoTargetSpec("ml_p2", "cloud", nvidia=True),
    NeoTargetSpec("ml_p3", "cloud", nvidia=True),
    NeoTargetSpec("ml_g4dn", "cloud", nvidia=True),
    NeoTargetSpec("ml_inf1", "cloud"),
    NeoTargetSpec("ml_inf2", "cloud"),
    NeoTargetSpec("ml_trn1", "cloud"),
    NeoTargetSpec("ml_eia2", "cloud"),
    NeoTargetSpec("X86_64", "arch", "amd64"),
    NeoTargetSpec("X86", "arch"),
    NeoTargetSpec("ARM64", "arch", "aarch64"),
    NeoTargetSpec("ARM_EABI", "arch"),
    NeoTargetSpec("ARM_EABIHF", "arch", "arm"),
)


def names(*kinds: str) -> tuple[str, ...]:
    """The targets of these kinds, in table order."""
    return tuple(t.name for t in NEO_TARGETS if t.kind in kinds)


def architectures() -> dict[str, str]:
    """Target name -> Greengrass platform architecture, for the targets that have one."""
    return {t.name: t.architecture for t in NEO_TARGETS if t.architecture}


def architecture(name: str) -> str | None:
    """The Greengrass platform architecture of a target, or None."""
    return architectures().get(name)


def nvidia_devices() -> frozenset[str]:
    """The named devices (edge and cloud) with an NVIDIA GPU."""
    return frozenset(t.name for t in NEO_TARGETS if t.nvidia and t.kind != "arch")
