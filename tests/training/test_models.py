"""Arch selection, generic head replacement, ImageNet-weight resolution, the stock export."""

import json
import logging

import pytest
import torch
import torchvision
from torch import nn

# arch -> the head that must be replaced (what the issue lists per family).
HEADS = {
    "vgg16": "classifier.6",
    "alexnet": "classifier.6",
    "resnet18": "fc",
    "regnet_x_400mf": "fc",
    "mobilenet_v3_small": "classifier.3",
    "efficientnet_b0": "classifier.1",
    "squeezenet1_1": "classifier.1",
    "densenet121": "classifier",
    "googlenet": "fc",
    "mnasnet0_5": "classifier.1",
}


@pytest.mark.parametrize(("arch", "head"), HEADS.items(), ids=HEADS.keys())
def test_replace_head_gives_num_classes_outputs(training_modules, arch, head):
    models = training_modules.models
    torch.manual_seed(0)
    model = models.build_model(arch, "false").model
    old = dict(model.named_modules())[head]
    assert models.replace_head(model, 3) == head
    new = dict(model.named_modules())[head]
    assert new is not old
    assert type(new) is type(old)
    side = 64 if arch == "alexnet" else 32  # alexnet's pooling needs at least 63 pixels
    assert models.check_forward(model, arch, (1, 3, side, side), 3) == 3


def test_train_mode_logits_of_aux_heads(training_modules):
    """googlenet returns (logits, aux2, aux1) in train mode; the loss uses the logits."""
    models = training_modules.models
    model = models.build_model("googlenet", "false").model
    models.replace_head(model, 3)
    output = model.train()(torch.rand(2, 3, 32, 32))
    assert isinstance(output, tuple)
    assert models.logits_of(output).shape == (2, 3)


def test_freeze_features_trains_only_the_head(training_modules):
    models = training_modules.models
    model = models.build_model("resnet18", "false").model
    head = models.replace_head(model, 4)
    models.freeze_all_but(model, head)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"fc.weight", "fc.bias"}


def test_every_listed_arch_is_a_torchvision_classifier(training_modules):
    archs = training_modules.models.classification_archs()
    assert {"vgg16", "resnet18", "squeezenet1_1", "mobilenet_v3_small"} <= set(archs)
    assert "fasterrcnn_resnet50_fpn" not in archs  # detection models are not classifiers


def _stock_export(entry_point, tmp_path, *extra):
    argv = [
        "--model-dir", str(tmp_path / "model"),
        "--checkpoint-dir", "",
        "--arch", "squeezenet1_1",
        "--input-shape", "1,3,32,32",
        *extra,
    ]  # fmt: skip
    assert entry_point.main(argv) == 0
    labels = json.loads((tmp_path / "model" / "labels.json").read_text())
    traced = torch.jit.load(str(tmp_path / "model" / "model.pth"))
    return labels, traced


@pytest.fixture
def no_sm_env(monkeypatch, tmp_path):
    for name in ("SM_MODEL_DIR", "SM_CHANNEL_TRAIN", "SM_CHANNEL_VALIDATION", "SM_OUTPUT_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # an empty hub cache


def test_no_train_channel_exports_the_stock_model(train_entry_point, tmp_path, no_sm_env, caplog):
    with caplog.at_level(logging.INFO):
        labels, traced = _stock_export(train_entry_point, tmp_path, "--pretrained", "false")
    assert labels == {str(i): f"class_{i}" for i in range(1000)}
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["labels.json", "model.pth"]
    assert traced(torch.rand(1, 3, 32, 32)).shape == (1, 1000)
    assert "exporting the stock squeezenet1_1 model unchanged" in caplog.text


def test_pretrained_auto_without_cache_warns_and_starts_random(
    train_entry_point, tmp_path, no_sm_env, caplog
):
    with caplog.at_level(logging.INFO):
        labels, _ = _stock_export(train_entry_point, tmp_path, "--pretrained", "auto")
    assert "RANDOM initialisation" in caplog.text
    assert labels["0"] == "class_0"


def test_pretrained_auto_uses_cached_imagenet_weights(
    train_entry_point, training_modules, tmp_path, no_sm_env, caplog
):
    """A state dict under the file name torchvision would download counts as the weights."""
    models = training_modules.models
    url = models.weights_url("squeezenet1_1")
    cached = models.cached_weights_path(url)
    assert cached.startswith(str(tmp_path / "torch-home"))
    torch.manual_seed(123)
    reference = torchvision.models.squeezenet1_1(weights=None).eval()
    (tmp_path / "torch-home" / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(reference.state_dict(), cached)

    with caplog.at_level(logging.INFO):
        labels, traced = _stock_export(train_entry_point, tmp_path, "--pretrained", "auto")
    assert "loaded ImageNet weights for squeezenet1_1" in caplog.text
    assert (labels["0"], labels["999"]) == ("tench", "toilet tissue")
    probe = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(traced(probe), reference(probe), rtol=1e-4, atol=1e-4)


def test_traced_model_that_differs_from_eager_fails_loudly(training_modules, tmp_path):
    """Data-dependent control flow: the trace keeps the branch its example input took."""
    export = training_modules.export
    shape = (1, 3, 4, 4)
    example = export._random_input(shape, seed=1)[0, 0, 0, 0]  # what the trace sees
    probe = export._random_input(shape, seed=2)[0, 0, 0, 0]  # what the check feeds
    assert example != probe

    class Branches(nn.Module):
        def __init__(self):
            super().__init__()
            self.threshold = float((example + probe) / 2)
            self.flip = bool(example > probe)

        def forward(self, x):
            if bool(x[0, 0, 0, 0] > self.threshold) != self.flip:
                return x.flatten(1) * 2.0
            return x.flatten(1) * 3.0

    with pytest.raises(export.ExportMismatchError, match="differs from the eager model"):
        export.save_torchscript(Branches(), shape, str(tmp_path))


def test_old_torchvision_api(training_modules, monkeypatch):
    """torchvision 0.9 (PyTorch 1.8 image): ``pretrained=`` builders and ``model_urls`` dicts."""
    import torchvision.models.shufflenetv2 as shufflenet_module

    models = training_modules.models
    monkeypatch.setattr(models, "_NEW_API", False)
    monkeypatch.setattr(
        shufflenet_module,
        "model_urls",
        {"shufflenetv2_x0.5": "https://example.invalid/shufflenetv2_x0.5-f707e7126e.pth"},
        raising=False,
    )
    assert models.weights_url("shufflenet_v2_x0_5").endswith("/shufflenetv2_x0.5-f707e7126e.pth")
    assert models.weights_url("shufflenet_v2_x1_0") is None
    with pytest.warns(UserWarning, match="pretrained"):  # new torchvision: deprecated keyword
        built = models.build_model("shufflenet_v2_x0_5", "false")
    assert (built.pretrained, built.categories) == (False, None)
    assert isinstance(built.model, torchvision.models.ShuffleNetV2)


def test_pretrained_true_without_network_is_a_clear_error(
    train_entry_point, tmp_path, no_sm_env, monkeypatch, caplog
):
    def offline(url, *args, **kwargs):
        raise OSError(f"<urlopen error [Errno -3] no network for {url}>")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    argv = ["--model-dir", str(tmp_path / "model"), "--arch", "squeezenet1_1",
            "--input-shape", "1,3,32,32", "--pretrained", "true"]  # fmt: skip
    assert train_entry_point.main(argv) == 2
    assert "cannot get ImageNet weights for squeezenet1_1 from https://" in caplog.text
    assert not (tmp_path / "model" / "model.pth").exists()
