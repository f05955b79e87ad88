"""A device class with ``quantize: int8`` (issue 16): the training job builds the int8 model
(``train.py --quantize int8``, gated against FP32), the class packages it, the stack outputs the
gate's numbers, and only then does the training source ship the requirements that install
ONNX Runtime on the training image."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import aws_s3_assets as s3_assets

from app_config import ConfigError
from tests.infra.conftest import synthesize
from tests.infra.fast import pipeline_template
from tests.infra.rendering import render, resources_of_type

DATA = {
    "training_data_uri": "s3://my-data/train/",
    "hyperparameters": {"val-fraction": "0.2"},
}
ONNX = {"thing_group": "EdgeAiDevOnnx", "build": "onnx"}
INT8 = {"thing_group": "EdgeAiDevInt8", "build": "onnx", "quantize": "int8"}


def _classes(**extra: dict[str, Any]) -> dict[str, Any]:
    return {"device_classes": {"fp32": ONNX, "small": INT8, **extra}}


@pytest.fixture(scope="module")
def int8_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return pipeline_template(tmp_path_factory.mktemp("int8"), **DATA, **_classes())


def _by_class(template: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    found = resources_of_type(template, rtype)
    return {
        ("small" if "small" in logical.lower() else "fp32"): props
        for logical, props in found.items()
    }


def test_the_training_job_builds_the_int8_model_with_the_gate(
    int8_template: dict[str, Any],
) -> None:
    (job,) = resources_of_type(int8_template, "Custom::TrainingJob").values()
    hyper = json.loads(render(job["Properties"]["Hyperparameters"]))
    assert hyper["quantize"] == "int8"
    assert hyper["int8-format"] == "s8s8"  # ORT's guide: S8S8 QDQ is the first choice
    assert hyper["max-int8-top1-drop"] == "1.0"
    assert hyper["export-onnx"] == "true"


def test_only_the_int8_class_packages_the_int8_file(int8_template: dict[str, Any]) -> None:
    packages = _by_class(int8_template, "Custom::ModelPackage")
    assert packages["small"]["Properties"]["OnnxFile"] == "model.int8.onnx"
    assert "OnnxFile" not in packages["fp32"]["Properties"]
    metadata = json.loads(packages["small"]["Properties"]["Metadata"])
    assert metadata["precision"] == "int8" and metadata["int8_format"] == "s8s8"
    assert "precision" not in json.loads(packages["fp32"]["Properties"]["Metadata"])


def test_the_stack_outputs_the_gates_numbers(int8_template: dict[str, Any]) -> None:
    outputs = {
        k: v for k, v in int8_template["Outputs"].items() if k.startswith("Small") or "Int8" in k
    }
    (gate,) = [v for k, v in outputs.items() if "Int8AccuracyGate" in k]
    text = json.dumps(gate["Value"])
    for attribute in ("Int8Top1", "Fp32Top1", "Int8Top1Drop", "Int8Top1Agreement"):
        assert attribute in text
    assert "device class small" in gate["Description"]


def test_without_an_int8_class_nothing_changes(tmp_path: Path) -> None:
    """The FP32 classes' template is the same with or without the option's code path."""
    plain = pipeline_template(tmp_path / "a", **DATA, device_classes={"fp32": ONNX})
    (job,) = resources_of_type(plain, "Custom::TrainingJob").values()
    assert "quantize" not in json.loads(render(job["Properties"]["Hyperparameters"]))
    assert not any("Int8" in k for k in plain["Outputs"])


def _source_files(synthesized: Any) -> list[str]:
    (stack,) = [s for n, s in synthesized.stacks.items() if n.endswith("/Pipeline")]
    (asset,) = [
        c
        for c in stack.node.find_all()
        if isinstance(c, s3_assets.Asset) and c.node.id == "SourceBundle"
    ]
    (path,) = Path(synthesized.assembly_dir).rglob(f"asset.{asset.asset_hash}*")
    with tarfile.open(path) as tar:
        return tar.getnames()


def test_requirements_ship_only_with_an_int8_class(tmp_path: Path) -> None:
    """SageMaker's training toolkit pip-installs a source folder's requirements.txt before
    train.py runs: shipped to every job, it would install ONNX Runtime on each (and need the
    network for it)."""
    with_int8 = synthesize(tmp_path / "a", **DATA, **_classes())
    without = synthesize(tmp_path / "b", **DATA, device_classes={"fp32": ONNX})
    assert "requirements.txt" in _source_files(with_int8)
    assert "requirements.txt" not in _source_files(without)
    assert "train.py" in _source_files(without)


@pytest.mark.parametrize(
    ("overrides", "key", "message"),
    [
        (
            {
                "device_classes": {
                    "n": {
                        "thing_group": "G",
                        "quantize": "int8",
                        "neo_target_platform": "LINUX/X86_64",
                    }
                }
            },
            "device_classes.n.quantize",
            "built for onnx classes",
        ),
        (
            {"device_classes": {"n": {**ONNX, "int8_format": "u8s8"}}},
            "device_classes.n.int8_format",
            "only with quantize: int8",
        ),
        (
            {"device_classes": {"n": {**INT8, "int8_format": "u4"}}},
            "device_classes.n.int8_format",
            "allowed: s8s8, u8s8, u8s8-reduce-range",
        ),
        (
            _classes(other={**INT8, "thing_group": "G2", "int8_format": "u8s8"}),
            "device_classes.other.int8_format",
            "one training job builds one int8 model",
        ),
        (
            {**_classes(), "model_artifact_uri": "s3://m/k/model.tar.gz", "architecture": "mine"},
            "device_classes.small.quantize",
            "nothing is trained",
        ),
        (
            {**_classes(), "training_data_uri": ""},
            "device_classes.small.quantize",
            "set training_data_uri",
        ),
        (
            {**_classes(), "hyperparameters": {}},
            "device_classes.small.quantize",
            "held-out images",
        ),
        ({**_classes(), "max_int8_top1_drop": "nan"}, "max_int8_top1_drop", "0-100"),
        ({**_classes(), "max_int8_top1_drop": "-1"}, "max_int8_top1_drop", "0-100"),
        (
            {"hyperparameters": {"quantize": "int8"}},
            "hyperparameters.quantize",
            "set by the pipeline",
        ),
    ],
)
def test_int8_settings_that_cannot_work_are_named(
    tmp_path: Path, overrides: dict[str, Any], key: str, message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        pipeline_template(tmp_path, **{**DATA, **overrides})
    assert str(raised.value).startswith(f"invalid configuration {key}="), raised.value
    assert message in str(raised.value)


def test_the_int8_file_name_is_the_one_training_writes() -> None:
    import ast

    from edge_constructs.model_packaging.construct import INT8_ONNX_FILE
    from tests.infra.conftest import REPO_ROOT

    tree = ast.parse((REPO_ROOT / "training_src/edge_training/quantize.py").read_text())
    written = {
        node.targets[0].id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
    }
    assert written["INT8_ONNX_FILE"] == INT8_ONNX_FILE


def test_the_drop_reaches_the_job_as_written(tmp_path: Path) -> None:
    """The second review: 1.2345678 reached train.py as 1.23457 (``:g``)."""
    template = pipeline_template(tmp_path, **DATA, **_classes(), max_int8_top1_drop="1.2345678")
    (job,) = resources_of_type(template, "Custom::TrainingJob").values()
    assert json.loads(render(job["Properties"]["Hyperparameters"]))["max-int8-top1-drop"] == (
        "1.2345678"
    )
