"""Hyperparameters as SageMaker passes them: ``--key value`` strings, defaults from ``SM_*``."""

import pytest


@pytest.fixture
def config(training_modules):
    return training_modules.config


def test_defaults_come_from_sagemaker_environment(config, monkeypatch):
    monkeypatch.setenv("SM_MODEL_DIR", "/opt/ml/model")
    monkeypatch.setenv("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train")
    monkeypatch.delenv("SM_CHANNEL_VALIDATION", raising=False)
    monkeypatch.setenv("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data")
    args = config.parse_args([])
    assert (args.model_dir, args.train, args.validation, args.output_data_dir) == (
        "/opt/ml/model",
        "/opt/ml/input/data/train",
        None,
        "/opt/ml/output/data",
    )
    assert args.checkpoint_dir == "/opt/ml/checkpoints"
    assert (args.arch, args.epochs, args.batch_size) == ("vgg16", 10, 32)
    assert (args.lr, args.momentum, args.weight_decay) == (0.001, 0.9, 0.0)
    assert (args.pretrained, args.freeze_features, args.export_onnx) == ("auto", False, False)
    assert args.input_shape == (1, 3, 224, 224)
    assert args.resize_shorter == 256
    assert (args.val_fraction, args.seed, args.num_workers) == (0.0, 0, 0)


@pytest.mark.parametrize(("text", "value"), [("true", True), ("False", False), ("1", True)])
def test_booleans_arrive_as_strings(config, monkeypatch, text, value):
    monkeypatch.setenv("SM_MODEL_DIR", "/tmp/model")
    args = config.parse_args(["--freeze-features", text, "--export-onnx", "false"])
    assert args.freeze_features is value
    assert args.export_onnx is False


def test_resize_shorter_defaults_to_imagenet_ratio(config, monkeypatch):
    monkeypatch.setenv("SM_MODEL_DIR", "/tmp/model")
    assert config.parse_args(["--input-shape", "1,3,32,32"]).resize_shorter == 37
    assert config.parse_args(["--input-shape", "[1, 3, 299, 299]"]).resize_shorter == 342


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--resize-shorter", "100"], "--resize-shorter 100 is smaller than the crop 224x224"),
        (["--val-fraction", "1"], "--val-fraction must be in [0, 1)"),
        (["--export-onnx", "true"], "needs --output-data-dir"),
        (["--pretrained", "maybe"], "argument --pretrained: invalid choice"),
        (["--learning-rate", "0.1"], "unrecognized arguments: --learning-rate"),
    ],
)
def test_bad_hyperparameters(config, training_modules, monkeypatch, argv, message):
    monkeypatch.setenv("SM_MODEL_DIR", "/tmp/model")
    monkeypatch.delenv("SM_OUTPUT_DATA_DIR", raising=False)
    with pytest.raises(training_modules.errors.TrainingInputError) as caught:
        config.parse_args(argv)
    assert message in str(caught.value)


def test_model_dir_is_required(config, training_modules, monkeypatch):
    monkeypatch.delenv("SM_MODEL_DIR", raising=False)
    with pytest.raises(training_modules.errors.TrainingInputError, match="SM_MODEL_DIR"):
        config.parse_args([])
