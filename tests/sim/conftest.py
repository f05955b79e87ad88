"""Session fixtures for the simulated device: synthesized assemblies, a pip wheelhouse, and the
few expensive end-to-end device runs (each runs once and is shared by the small tests)."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from device_sim.device import Device, DeviceOptions, Report
from device_sim.samples import write_sample_images
from tests.infra.conftest import JETSON_RELEASE, REPO_ROOT, THREE_CLASSES, synthesize

DEVICE_PYTHON = "/usr/bin/python3"  # first python3 on device_sim.lifecycle.DEVICE_PATH


@pytest.fixture(scope="session")
def dev_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize(tmp_path_factory.mktemp("sim-dev")).assembly_dir


@pytest.fixture(scope="session")
def prod_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize(tmp_path_factory.mktemp("sim-prod"), stage="prod").assembly_dir


@pytest.fixture(scope="session")
def arm64_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dev compiled for a 64-bit ARM Linux device (bundled runtime, aarch64 manifests)."""
    return synthesize(
        tmp_path_factory.mktemp("sim-arm64"), neo_target_platform="LINUX/ARM64"
    ).assembly_dir


@pytest.fixture(scope="session")
def variant_dlr_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The public variant.DLR runtime and a jetson_nano Neo target (aarch64)."""
    return synthesize(
        tmp_path_factory.mktemp("sim-variant"),
        model_artifact_uri="s3://my-models/vgg16/model.tar.gz",
        architecture="vgg16",  # a brought model is named (app_config refuses the default)
        neo_target_device="jetson_nano",
        neo_target_platform="",
        runtime_component="variant.DLR",
        nucleus_version="2.12.6",  # synth requires a pin inside variant.DLR's nucleus range
    ).assembly_dir


@pytest.fixture(scope="session")
def three_classes_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """THREE_CLASSES (x86_64 DLR ``gateway``, aarch64 jetson_nano DLR with a canary ring and a
    promoted release, x86_64 ONNX), synthesized once for every simulator test that needs it."""
    return synthesize(
        tmp_path_factory.mktemp("sim-three"),
        device_classes=THREE_CLASSES,
        releases={"dev": {"jetson": JETSON_RELEASE}},
    ).assembly_dir


RUNTIME_REQUIREMENTS = ("requirements.txt", "requirements-onnx.txt")


def download_wheels(folder: Path, python: str = DEVICE_PYTHON) -> bool:
    """Both runtime components' requirements (DLR and ONNX Runtime) as wheels for ``python``;
    False when pip cannot download them (the first boot then installs from PyPI)."""
    requirements: list[str] = []
    for name in RUNTIME_REQUIREMENTS:
        requirements += ["-r", str(REPO_ROOT / "component_src" / name)]
    pip = [python, "-m", "pip", "download", "--disable-pip-version-check", "-q", "-d", str(folder)]
    result = subprocess.run(
        [*pip, *requirements],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result.returncode == 0


@pytest.fixture(scope="session")
def wheelhouse(reachable_base: Path) -> Path | None:
    """The runtimes' requirements as wheels for the device's python3, downloaded once per
    session, so the first boot's real ``pip install`` runs from them (PIP_NO_INDEX); None (the
    first boot then installs from PyPI) when they cannot be downloaded."""
    folder = reachable_dir(reachable_base, "wheelhouse")
    return folder if download_wheels(folder) else None


@pytest.fixture(scope="session")
def sample_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sample_images(tmp_path_factory.mktemp("images"))


@dataclass
class Run:
    report: Report
    root: Path


def run_device(root: Path, assembly: Path, stage: str, **options: object) -> Run:
    report = Device(DeviceOptions(assembly=assembly, stage=stage, root=root, **options)).run()  # type: ignore[arg-type]
    return Run(report, root)


def _whole_device(
    base: Path,
    assembly: Path,
    stage: str,
    wheelhouse: Path | None,
    images: Path,
) -> Run:
    """A default device (nucleus 2.18.x, interpolateComponentConfiguration off, no extra grants):
    provision, deploy, first boot with the network, then a reboot with the network refused."""
    return run_device(
        reachable_dir(base, f"{stage}-root") / "gg",
        assembly,
        stage,
        images=images,
        wheelhouse=wheelhouse,
        wait_seconds=60,
    )


@pytest.fixture(scope="session")
def dev_run(
    reachable_base: Path,
    dev_assembly: Path,
    wheelhouse: Path | None,
    sample_images: Path,
) -> Run:
    return _whole_device(reachable_base, dev_assembly, "dev", wheelhouse, sample_images)


@pytest.fixture(scope="session")
def prod_run(
    reachable_base: Path,
    prod_assembly: Path,
    wheelhouse: Path | None,
    sample_images: Path,
) -> Run:
    return _whole_device(reachable_base, prod_assembly, "prod", wheelhouse, sample_images)


@pytest.fixture(scope="session")
def reachable_base() -> Iterator[Path]:
    """A folder other users may search, for device roots and what components read.

    The simulated components run as ggc_user (device_sim/run_with.py), which must search every
    folder above the device root, as anyone may above /greengrass/v2 on a device. pytest's own
    temporary folders are rwx------, and every pytest session that starts resets
    /tmp/pytest-of-<user> to rwx------, so they cannot be opened up reliably."""
    base = Path(tempfile.mkdtemp(prefix="device-sim-tests-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def reachable_dir(base: Path, name: str) -> Path:
    """A new rwxr-xr-x folder under ``base``."""
    path = Path(tempfile.mkdtemp(prefix=re.sub(r"[^A-Za-z0-9_-]", "_", name)[:40] + "-", dir=base))
    path.chmod(0o755)
    return path


@pytest.fixture
def tmp_path(request: pytest.FixtureRequest, reachable_base: Path) -> Path:
    """Overrides pytest's ``tmp_path`` in tests/sim: a folder ggc_user can reach."""
    return reachable_dir(reachable_base, request.node.name)
