"""Step 4, the device's first-boot wheelhouse: the ONNX runtime component's requirements as
wheels for the device's Python, downloaded once."""

from __future__ import annotations

import subprocess
from pathlib import Path

from main_job.cache import cached, digest_files
from main_job.paths import COMPONENT_SRC

DEVICE_PYTHON = "/usr/bin/python3"  # the first python3 on device_sim.lifecycle.DEVICE_PATH


def wheelhouse(cache: Path) -> Path | None:
    """The runtime's requirements as wheels for the device's Python, downloaded once (keyed by
    the requirements files and that Python); None when pip cannot download them, and the first
    boot then installs from the index as a device does."""
    requirements = [COMPONENT_SRC / "requirements-onnx.txt"]
    version = subprocess.run(
        [DEVICE_PYTHON, "-c", "import sys; print(sys.version)"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    folder = cache / "wheelhouse" / digest_files(requirements, version)

    def build(scratch: Path) -> None:
        command = [DEVICE_PYTHON, "-m", "pip", "download", "--disable-pip-version-check", "-q"]
        result = subprocess.run(
            [*command, "-d", str(scratch), "-r", str(requirements[0])],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise OSError(result.stderr.strip().splitlines()[-1:] or "pip download failed")

    try:
        cached(folder, build)
    except OSError:
        return None
    return folder
