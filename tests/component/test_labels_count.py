"""``labels.json`` must name one class per score the model outputs (issue 18: 3 names for a
4-class model were accepted; results then showed the fourth class as "3"). The component
refuses such a package when it loads the model, with both numbers, wherever the model states
its class count (an ONNX graph's output shape)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from edge_inference.model import ModelError

from stand_ins.neo_model import build_tiny_classifier
from tests.component.harness import TINY_SHAPE, load_model, write_tiny_onnx


def onnx_package(root: Path, labels: object | None) -> Path:
    classifier = build_tiny_classifier(root / "neo", input_shape=TINY_SHAPE, seed=3)
    (root / "model").mkdir(parents=True)
    write_tiny_onnx(classifier, root / "model" / "model.onnx")
    shutil.rmtree(root / "neo")
    if labels is not None:
        (root / "labels.json").write_text(json.dumps(labels))
    return root


def test_as_many_names_as_outputs_loads(tmp_path: Path) -> None:
    names = [f"c{i}" for i in range(10)]
    loaded = load_model(onnx_package(tmp_path, names), "onnx")
    assert loaded.labels[9] == "c9"


@pytest.mark.parametrize("count", [3, 11])
def test_too_few_or_too_many_names_is_refused_with_both_numbers(tmp_path: Path, count: int) -> None:
    package = onnx_package(tmp_path, [f"c{i}" for i in range(count)])
    with pytest.raises(
        ModelError, match=f"labels.json names {count} classes but model.onnx outputs 10 scores"
    ):
        load_model(package, "onnx")


def test_no_labels_means_numbered_classes_and_loads(tmp_path: Path) -> None:
    assert load_model(onnx_package(tmp_path, None), "onnx").labels == {}
