"""Short in-process runs: held-out validation split, checkpoints and resuming (spot training)."""

import logging
import re

import pytest

EPOCH = re.compile(r"epoch=(\d+) train_loss=\S+ train_acc=\S+( val_loss=\S+ val_acc=\S+)?")


def _run(entry_point, caplog, *argv):
    caplog.clear()
    with caplog.at_level(logging.INFO):
        code = entry_point.main(list(argv))
    epochs = [EPOCH.search(r.getMessage()) for r in caplog.records]
    return code, [m for m in epochs if m]


@pytest.fixture
def base_args(small_digits, tmp_path, monkeypatch):
    for name in ("SM_MODEL_DIR", "SM_CHANNEL_TRAIN", "SM_CHANNEL_VALIDATION", "SM_OUTPUT_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    return [
        "--train", str(small_digits),
        "--arch", "squeezenet1_1",
        "--input-shape", "1,3,32,32",
        "--pretrained", "false",
        "--batch-size", "8",
        "--val-fraction", "0.25",
    ]  # fmt: skip


def test_resumes_from_the_checkpoint_of_an_interrupted_job(
    train_entry_point, base_args, tmp_path, caplog
):
    checkpoints = ["--checkpoint-dir", str(tmp_path / "checkpoints")]
    model_dir = ["--model-dir", str(tmp_path / "model")]
    code, first = _run(train_entry_point, caplog, *base_args, *checkpoints, *model_dir,
                       "--epochs", "1")  # fmt: skip
    assert code == 0
    assert [m.group(1) for m in first] == ["1"]
    assert first[0].group(2), "--val-fraction 0.25 must give validation metrics"
    assert "18 training and 6 validation images" in caplog.text  # 3 classes x 8, 2 held out each
    assert (tmp_path / "checkpoints" / "checkpoint.pt").is_file()

    code, second = _run(train_entry_point, caplog, *base_args, *checkpoints, *model_dir,
                        "--epochs", "3")  # fmt: skip
    assert code == 0
    assert "resumed from checkpoint" in caplog.text
    assert [m.group(1) for m in second] == ["2", "3"]


def test_ignores_a_checkpoint_of_another_model(train_entry_point, base_args, tmp_path, caplog):
    checkpoints = ["--checkpoint-dir", str(tmp_path / "checkpoints")]
    model_dir = ["--model-dir", str(tmp_path / "model")]
    assert _run(train_entry_point, caplog, *base_args, *checkpoints, *model_dir,
                "--epochs", "1")[0] == 0  # fmt: skip
    code, epochs = _run(train_entry_point, caplog, *base_args, *checkpoints, *model_dir,
                        "--epochs", "1", "--input-shape", "1,3,48,48")  # fmt: skip
    assert code == 0
    assert "ignoring checkpoint" in caplog.text
    assert [m.group(1) for m in epochs] == ["1"]


def test_without_validation_data_logs_only_train_metrics(training_modules):
    engine = training_modules.engine
    assert engine.format_metrics(2, 0.5, 0.75) == "epoch=2 train_loss=0.5000 train_acc=0.7500"
    assert engine.format_metrics(3, 1e-5, 1.0, 2.0, 0.5) == (
        "epoch=3 train_loss=0.0000 train_acc=1.0000 val_loss=2.0000 val_acc=0.5000"
    )


def test_cosine_schedule_decays_per_epoch(training_modules):
    lrs = [training_modules.engine.epoch_lr(0.1, "cosine", e, 4) for e in range(1, 5)]
    assert lrs[0] == pytest.approx(0.1)
    assert lrs == sorted(lrs, reverse=True)
    assert lrs[-1] == pytest.approx(0.1 * 0.5 * (1 + 2**-0.5 * -1))
    assert training_modules.engine.epoch_lr(0.1, "constant", 4, 4) == 0.1


def test_holdout_split_is_per_class_and_deterministic(training_modules):
    samples = [(f"{c}/{i}.png", c) for c in ("a", "b") for i in range(10)] + [("c/0.png", "c")]
    train, held = training_modules.data.split_holdout(samples, 0.2, seed=7)
    assert sorted(name for _, name in held) == ["a", "a", "b", "b"]  # the lone "c" stays
    assert sorted(train + held) == sorted(samples)
    assert training_modules.data.split_holdout(samples, 0.2, seed=7) == (train, held)
