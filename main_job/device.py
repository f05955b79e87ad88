"""Step 5, deploy and classify: the synthesized assembly deployed to :mod:`device_sim`'s
simulated core device, which classifies the photos dropped into its input folder and
publishes over Greengrass IPC."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from main_job.progress import Progress
from main_job.synth import STAGE

if TYPE_CHECKING:
    from device_sim.brought import BroughtModel
    from device_sim.device import Report


def classify_on_device(
    *,
    assembly: Path,
    onnx_model: Path | None,
    brought_model: BroughtModel | None = None,
    photos: Path,
    count: int,
    root: Path,
    wheelhouse: Path | None,
    progress: Progress,
) -> Report:
    """Run the device on ``assembly`` with ``photos`` (``count`` of them) in its input folder;
    a second progress bar follows ``<root>/mqtt/published.jsonl``."""
    from device_sim.device import Device, DeviceOptions

    published = root / "mqtt" / "published.jsonl"

    def published_count() -> int:
        try:
            return len(published.read_text().splitlines())
        except OSError:
            return 0

    with progress.counting("device: photos classified", count, published_count):
        return Device(
            DeviceOptions(
                assembly=assembly,
                stage=STAGE,
                root=root,
                onnx_model=onnx_model,
                brought_model=brought_model,
                images=photos,
                wheelhouse=wheelhouse,
                reboot=False,
                wait_seconds=180,
            )
        ).run()
