"""Fixtures for the training script's tests (shared ones live in tests/conftest.py)."""

import importlib
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """In-process runs use one thread: on a shared 2-core machine OpenMP threads spin and
    contend (one test module took 4x longer with two). Restored after each module."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def training_modules(train_entry_point) -> SimpleNamespace:
    """The ``edge_training`` helper modules that ``train.py`` imports."""
    names = ("config", "data", "engine", "errors", "export", "models")
    return SimpleNamespace(
        **{name: importlib.import_module(f"edge_training.{name}") for name in names}
    )


def copy_subset(source: Path, target: Path, classes: list[str], per_class: int) -> Path:
    """``target/<class>/`` with the first ``per_class`` images of each of ``classes``."""
    for name in classes:
        (target / name).mkdir(parents=True)
        for image in sorted((source / name).iterdir())[:per_class]:
            shutil.copy(image, target / name / image.name)
    return target


@pytest.fixture
def small_digits(tmp_path: Path, digits_folders) -> Path:
    """A 3-class, 8-images-per-class training folder: enough to run an epoch in a second."""
    return copy_subset(
        digits_folders.train, tmp_path / "small", list(digits_folders.classes[:3]), 8
    )
