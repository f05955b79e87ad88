"""``model_check``: a brought model checked as the pipeline will use it (issue 18, "Bring your
own model"). Each refusal names the file and the fix; a model that passes runs for real (ONNX
Runtime on the exported ONNX computes what TorchScript computes)."""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest

from model_check import ModelCheckError, check_model, model_name, open_model
from model_check.__main__ import main
from tests.own_model import LABELS, labels_json, tar_gz, traced_resnet18

SHAPE = (1, 3, 224, 224)


@pytest.fixture(scope="module")
def pth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return traced_resnet18(tmp_path_factory.mktemp("r18") / "model.pth")


def _check(given: Path, tmp_path: Path, name: str | None = None):  # type: ignore[no-untyped-def]
    opened = open_model(given, tmp_path / "unpacked")
    return check_model(opened, input_shape=SHAPE, workdir=tmp_path / "export", given_name=name)


def test_a_traced_resnet18_archive_passes_and_its_onnx_export_computes_the_same(
    tmp_path: Path, pth: Path
) -> None:
    import onnxruntime as ort
    import torch

    archive = tar_gz(
        tmp_path / "resnet18-pets.tar.gz", {"model.pth": pth, "labels.json": labels_json()}
    )
    checked = _check(archive, tmp_path)
    assert checked.name == "resnet18_pets"  # the file's name, not a defaulted vgg16
    assert checked.labels == LABELS and checked.outputs == 4 and checked.neo
    assert checked.exported_onnx and checked.onnx is not None
    probe = np.random.default_rng(0).random(SHAPE, dtype=np.float32)
    session = ort.InferenceSession(str(checked.onnx), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {"input0": probe})
    with torch.no_grad():
        torch_out = torch.jit.load(str(pth))(torch.from_numpy(probe)).numpy()
    np.testing.assert_allclose(onnx_out, torch_out, rtol=1e-3, atol=1e-4)


def test_three_labels_for_four_outputs_is_refused(tmp_path: Path, pth: Path) -> None:
    archive = tar_gz(
        tmp_path / "model.tar.gz", {"model.pth": pth, "labels.json": labels_json(LABELS[:3])}
    )
    with pytest.raises(ModelCheckError, match="names 3 classes and the model scores 4"):
        _check(archive, tmp_path)


def test_a_model_under_a_folder_is_refused_with_the_tar_command(tmp_path: Path, pth: Path) -> None:
    archive = tar_gz(tmp_path / "model.tar.gz", {"resnet/model.pth": pth})
    with pytest.raises(ModelCheckError, match=r"under resnet/.*tar -C resnet -czf model\.tar\.gz"):
        _check(archive, tmp_path)


def test_a_state_dict_is_not_a_traced_model(tmp_path: Path) -> None:
    import torch
    import torchvision

    saved = tmp_path / "weights.pth"
    torch.save(torchvision.models.resnet18(num_classes=4).state_dict(), saved)
    archive = tar_gz(tmp_path / "model.tar.gz", {"model.pth": saved})
    with pytest.raises(ModelCheckError, match=r"model\.tar\.gz: model\.pth: a torch\.save\(\)d"):
        _check(archive, tmp_path)


def test_pth_and_onnx_of_different_models_are_refused(tmp_path: Path, pth: Path) -> None:
    from model_check.checks import check_torchscript

    other = traced_resnet18(tmp_path / "other.pth", classes=5)
    check_torchscript(other, SHAPE, tmp_path / "other.onnx", "other")
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "model.pth").write_bytes(pth.read_bytes())
    (folder / "model.onnx").write_bytes((tmp_path / "other.onnx").read_bytes())
    with pytest.raises(ModelCheckError, match=re.escape("scores 4 classes and model.onnx 5")):
        _check(folder, tmp_path)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({"0": "a", "2": "b"}, "without gaps; 1 is missing"),
        ({"0": "a", "x": "b"}, "class indices"),
        ([], "non-empty"),
        (["a", ""], "non-empty string"),
    ],
)
def test_bad_labels_are_named(tmp_path: Path, labels: object, message: str) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"not read: labels are checked first")
    (folder / "labels.json").write_text(json.dumps(labels))
    with pytest.raises(ModelCheckError, match=message):
        _check(folder, tmp_path)


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"mean": [127, 127, 127], "std": [128, 128, 128]}, "looks like the 0-255 scale"),
        ({"mean": [0.5, 0.5, 0.5]}, "without std"),
        ({"mean": [0.5, 0.5], "std": [0.5, 0.5, 0.5]}, "expected 3 numbers"),
        ({"mean": [0.5, 0.5, 0.5], "std": [0.5, 0, 0.5]}, "must be finite and > 0"),
    ],
)
def test_bad_normalization_is_named(tmp_path: Path, metadata: object, message: str) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"x")
    (folder / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(ModelCheckError, match=f"metadata.json (mean|std).*{message}|{message}"):
        _check(folder, tmp_path)


def test_an_unsafe_archive_member_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        link = tarfile.TarInfo("model.onnx")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    with pytest.raises(ModelCheckError, match="unsafe archive member"):
        open_model(archive, tmp_path / "unpacked")


def test_what_is_not_a_model_is_named(tmp_path: Path, pth: Path) -> None:
    with pytest.raises(ModelCheckError, match="no such file or folder"):
        open_model(tmp_path / "absent.tar.gz", tmp_path / "u")
    with pytest.raises(
        ModelCheckError, match=re.escape("tar -czf model.tar.gz model.pth labels.json")
    ):
        open_model(pth, tmp_path / "u")
    empty = tar_gz(tmp_path / "e.tar.gz", {"README": b"x"})
    with pytest.raises(ModelCheckError, match=r"no model\.pth .* or model\.onnx .*files: README"):
        open_model(empty, tmp_path / "u")
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"\x1f\x8b not gzip")
    with pytest.raises(ModelCheckError, match=re.escape("not a readable .tar.gz")):
        open_model(broken, tmp_path / "u")


def test_the_name_names_the_model(tmp_path: Path) -> None:
    folder = tmp_path / "Pets-Classifier v2"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"x")
    opened = open_model(folder, tmp_path / "u")
    assert model_name(opened) == "pets_classifier_v2"
    assert model_name(opened, "mine") == "mine"
    (folder / "metadata.json").write_text(json.dumps({"arch": "resnet18"}))
    assert model_name(open_model(folder, tmp_path / "u")) == "resnet18"
    plain = tar_gz(tmp_path / "models" / "model.tar.gz", {"model.onnx": b"x"})
    assert model_name(open_model(plain, tmp_path / "u")) == "models"  # its folder's name
    with pytest.raises(ModelCheckError, match="--model-name"):
        model_name(opened, "???")


def test_the_command_prints_the_deploy_keys_or_one_error_line(
    tmp_path: Path, pth: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = tar_gz(tmp_path / "pets.tar.gz", {"model.pth": pth, "labels.json": labels_json()})
    assert main([str(archive)]) == 0
    out = capsys.readouterr().out
    assert "ok   labels.json: 4 names, one per output" in out
    assert "only Neo can check" in out
    assert "-c architecture=pets" in out
    bad = tar_gz(tmp_path / "bad.tar.gz", {"model.pth": pth, "labels.json": labels_json(["a"])})
    assert main([str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "names 1 class and the model scores 4" in err[0]


# ---------------------------------------------------------------- the hostile review's cases
def _onnx(tmp_path: Path, module: object, shape: tuple[int, ...], name: str = "m") -> Path:
    import torch

    folder = tmp_path / name
    folder.mkdir()
    module(torch.zeros(*shape))  # type: ignore[operator]  # LazyLinear takes its input size
    torch.onnx.export(
        module,  # type: ignore[arg-type]
        (torch.zeros(*shape),),
        str(folder / "model.onnx"),
        input_names=["input0"],
        output_names=["output0"],
        opset_version=17,
        dynamo=False,
    )
    return folder


def test_a_one_output_model_is_refused_with_the_two_score_fix(tmp_path: Path) -> None:
    import torch

    folder = _onnx(tmp_path, torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(1)), SHAPE)
    with pytest.raises(ModelCheckError, match=r"scores 1 class; .*torch\.cat\(\[1 - p, p\]"):
        _check(folder, tmp_path)


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((1, 3, 192, 256), "is not square"),
        ((1, 224, 224, 3), "channels-last (NHWC)"),
        ((1, 1, 224, 224), "has 1 channels"),
    ],
)
def test_onnx_inputs_the_pipeline_cannot_feed_are_refused(
    tmp_path: Path, shape: tuple[int, ...], message: str
) -> None:
    import torch

    pool = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(4))
    folder = _onnx(tmp_path, pool, shape)
    with pytest.raises(ModelCheckError) as raised:
        open_and_check = open_model(folder, tmp_path / "u")
        check_model(open_and_check, workdir=tmp_path / "x")
    assert message in str(raised.value)


def test_metadata_input_shape_is_the_shape_checked(tmp_path: Path, pth: Path) -> None:
    """model_check and main_job agree: metadata.json's input_shape is what the model runs at
    (the review found model_check ignoring it), and the deploy keys carry it."""
    import torch

    flat = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 160 * 160, 4))
    traced = torch.jit.trace(flat.eval(), torch.zeros(1, 3, 160, 160))
    folder = tmp_path / "m160"
    folder.mkdir()
    traced.save(str(folder / "model.pth"))
    with pytest.raises(ModelCheckError, match=r"does not run on a \[1, 3, 224, 224\] input"):
        check_model(open_model(folder, tmp_path / "u"), workdir=tmp_path / "x")
    (folder / "metadata.json").write_text(json.dumps({"input_shape": [1, 3, 160, 160]}))
    checked = check_model(open_model(folder, tmp_path / "u"), workdir=tmp_path / "x")
    assert checked.input_shape == (1, 3, 160, 160)
    (folder / "metadata.json").write_text(json.dumps({"input_shape": [1, 3, 160, 200]}))
    with pytest.raises(ModelCheckError, match=r"metadata\.json .*square"):
        check_model(open_model(folder, tmp_path / "u"), workdir=tmp_path / "x")


def test_the_error_of_a_failing_torchscript_says_what_failed(tmp_path: Path) -> None:
    import torch

    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.AdaptiveAvgPool2d(1))
    traced = torch.jit.trace(conv.eval(), torch.zeros(1, 1, 64, 64))
    folder = tmp_path / "gray"
    folder.mkdir()
    traced.save(str(folder / "model.pth"))
    with pytest.raises(ModelCheckError) as raised:
        check_model(open_model(folder, tmp_path / "u"), workdir=tmp_path / "x")
    message = str(raised.value)
    assert "The following operation failed" not in message  # the useless first line
    assert "channels" in message and "RGB NCHW" in message


def test_the_command_sends_an_onnx_only_model_to_onnx_classes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The second review: the printed keys deployed an ONNX-only model to the default (neo)
    class, whose compilation then failed."""
    import torch

    pool = torch.nn.Sequential(
        torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(12, 3)
    )
    folder = _onnx(tmp_path, pool, SHAPE, name="onnxonly")
    assert main([str(folder)]) == 0
    out = capsys.readouterr().out
    assert "note no model.pth" in out and '"build": "onnx"' in out
