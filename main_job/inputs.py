"""The photos a run classifies: those that ship in installed packages, or a user's folder."""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from main_job.errors import MainJobError
from main_job.paths import COMPONENT_SRC


@functools.cache
def supported_suffixes() -> tuple[str, ...]:
    """What the inference component reads (``edge_inference.inputs.SUPPORTED_SUFFIXES``).

    Asked of the component's own code in a child Python whose working folder is
    ``component_src`` (how the component finds its package): ``edge_inference.inputs`` imports
    ``edge_inference.model`` by its absolute name, so loading that one file here would need the
    component's package on this process's import path, which the job does not change."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from edge_inference.inputs import SUPPORTED_SUFFIXES; print(*SUPPORTED_SUFFIXES)",
        ],
        cwd=COMPONENT_SRC,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not result.stdout.split():
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise MainJobError(f"the inference component's supported file types: {last}")
    return tuple(result.stdout.split())


def shipped_photos() -> list[Path]:
    """Real photos (and one clip-art image) that ship inside installed packages."""
    import matplotlib
    import sklearn.datasets

    mpl = Path(matplotlib.get_data_path()) / "sample_data"
    sklearn_images = Path(sklearn.datasets.__file__).parent / "images"
    photos = [
        mpl / "grace_hopper.jpg",
        sklearn_images / "china.jpg",
        sklearn_images / "flower.jpg",
        mpl / "Minduka_Present_Blue_Pack.png",
    ]
    missing = [str(p) for p in photos if not p.is_file()]
    if missing:
        raise MainJobError(f"shipped photos missing from the installed packages: {missing}")
    return photos


def _files(folder: Path) -> list[Path]:
    """The visible files directly in ``folder`` (dotfiles such as ``.DS_Store`` are not inputs)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def user_images(folder: Path) -> list[Path]:
    """The files in ``folder`` the inference component reads (:func:`supported_suffixes`); a
    one-line error naming the folder checked when there are none."""
    where = f"--images {folder}" + ("" if folder.is_absolute() else f" ({folder.resolve()})")
    if not folder.exists():
        raise MainJobError(f"{where}: no such folder")
    if not folder.is_dir():
        raise MainJobError(f"{where}: not a folder")
    supported = supported_suffixes()
    images = [p for p in _files(folder) if p.suffix.lower() in supported]
    if not images:
        raise MainJobError(
            f"{where}: no file of a supported type in it (supported: {', '.join(supported)})"
        )
    return images


def unsupported_files(folder: Path) -> list[Path]:
    """The files in ``folder`` of another type: listed as skipped, never sent to the device."""
    supported = supported_suffixes()
    return [p for p in _files(folder) if p.suffix.lower() not in supported]


def stage_photos(images: Sequence[Path], folder: Path) -> dict[str, Path]:
    """Copies with unique names (the component names results by file name)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    staged: dict[str, Path] = {}
    for image in images:
        name = image.name
        n = 2
        while name in staged:
            name = f"{image.stem}-{n}{image.suffix}"
            n += 1
        shutil.copyfile(image, folder / name)
        staged[name] = image
    return staged
