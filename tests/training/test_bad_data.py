"""Bad data and bad hyperparameters end with one clear logged line and exit code 2."""

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import run_train_script, sagemaker_env
from tests.training.conftest import copy_subset

# Each case: (name, make(tmp_path, small_digits) -> extra argv, expected message fragment).
Case = tuple[str, Callable[[Path, Path], list[str]], str]


def _train(path: Path) -> list[str]:
    return ["--train", str(path)]


def _empty(tmp: Path, small: Path) -> list[str]:
    (tmp / "empty").mkdir()
    return _train(tmp / "empty")


def _one_class(tmp: Path, small: Path) -> list[str]:
    for extra in sorted(small.iterdir())[1:]:
        shutil.rmtree(extra)
    return _train(small)


def _corrupt_image(tmp: Path, small: Path) -> list[str]:
    good = next((small / "digit_1").iterdir())
    data = good.read_bytes()
    (small / "digit_1" / "broken.png").write_bytes(data[: len(data) // 2])  # truncated
    return _train(small)


def _truncated_jpeg(tmp: Path, small: Path) -> list[str]:
    """Its header is fine (the up-front check passes); decoding fails inside the DataLoader."""
    good = next((small / "digit_2").iterdir())
    Image.open(good).save(tmp / "whole.jpg", quality=95)
    data = (tmp / "whole.jpg").read_bytes()
    (small / "digit_2" / "cut.jpg").write_bytes(data[: len(data) * 2 // 3])
    return _train(small)


def _not_an_image(tmp: Path, small: Path) -> list[str]:
    (small / "digit_2" / "notes.jpg").write_text("not a JPEG")
    return _train(small)


def _images_in_root(tmp: Path, small: Path) -> list[str]:
    flat = tmp / "flat"
    flat.mkdir()
    for image in (small / "digit_0").iterdir():
        shutil.copy(image, flat / image.name)
    return _train(flat)


def _nested(tmp: Path, small: Path) -> list[str]:
    outer = tmp / "outer"
    outer.mkdir()
    shutil.move(str(small), outer / "train")  # <channel>/train/<class>/<image>
    return _train(outer)


def _empty_class(tmp: Path, small: Path) -> list[str]:
    (small / "digit_9").mkdir()
    return _train(small)


def _unknown_validation_class(tmp: Path, small: Path) -> list[str]:
    validation = copy_subset(small, tmp / "validation", ["digit_0"], 2)
    shutil.copytree(small / "digit_1", validation / "digit_7")
    return [*_train(small), "--validation", str(validation)]


def _missing_channel(tmp: Path, small: Path) -> list[str]:
    return _train(tmp / "does-not-exist")


def _shape(text: str) -> Callable[[Path, Path], list[str]]:
    return lambda tmp, small: [*_train(small), "--input-shape", text]


CASES: list[Case] = [
    ("empty channel", _empty, "is empty: no class folders"),
    ("missing channel", _missing_channel, "does not exist or is not a directory"),
    ("one class", _one_class, "has only one class ('digit_0')"),
    ("corrupt image", _corrupt_image, "digit_1/broken.png: Truncated File Read"),
    ("truncated jpeg", _truncated_jpeg, "digit_2/cut.jpg: image file is truncated"),
    ("text named .jpg", _not_an_image, "notes.jpg: cannot identify image file"),
    ("images in channel root", _images_in_root, "image file(s) directly in the channel root"),
    ("nested folders", _nested, "nested folder 'train/digit_0'"),
    ("class folder without images", _empty_class, "class folder 'digit_9' in train channel"),
    ("unknown validation class", _unknown_validation_class, "not in the train channel: digit_7"),
    ("input shape, 3 dims", _shape("1,3,32"), "malformed --input-shape '1,3,32'"),
    ("input shape, not ints", _shape("1,3,a,b"), "not a list of integers"),
    ("input shape, grey", _shape("1,1,32,32"), "channel dimension must be 3"),
    ("input shape, zero", _shape("1,3,0,32"), "every dimension must be a positive integer"),
    ("unknown arch", lambda t, s: [*_train(s), "--arch", "vgg17"], "unknown --arch 'vgg17'"),
    ("bad boolean", lambda t, s: [*_train(s), "--export-onnx", "maybe"], "--export-onnx"),
    (
        "arch vs input shape",
        lambda t, s: [*_train(s), "--arch", "alexnet"],
        "--arch alexnet does not accept",
    ),
]


@pytest.mark.parametrize(("make", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_clear_line(
    train_entry_point, small_digits, tmp_path, monkeypatch, caplog, make, message
):
    for name in ("SM_MODEL_DIR", "SM_CHANNEL_TRAIN", "SM_CHANNEL_VALIDATION"):
        monkeypatch.delenv(name, raising=False)
    model_dir = tmp_path / "model"
    argv = [
        "--model-dir", str(model_dir),
        "--checkpoint-dir", "",
        "--arch", "squeezenet1_1",
        "--input-shape", "1,3,32,32",
        "--pretrained", "false",
        "--epochs", "1",
        *make(tmp_path, small_digits),
    ]  # fmt: skip
    with caplog.at_level(logging.INFO):
        assert train_entry_point.main(argv) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert message in errors[0]
    assert "\n" not in errors[0]
    assert not (model_dir / "model.pth").exists()


def test_exit_code_2_from_the_command_line(tmp_path):
    result = run_train_script(
        ["--pretrained", "false", "--checkpoint-dir", ""],
        sagemaker_env(model_dir=tmp_path / "model", train=tmp_path / "nothing-here"),
    )
    assert result.returncode == 2
    output = result.stdout + result.stderr
    assert "ERROR train channel" in output
    assert "does not exist or is not a directory" in output
    assert "Traceback" not in output
