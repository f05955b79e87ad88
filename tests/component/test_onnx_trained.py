"""The ONNX Runtime path on a model really trained by ``training_src`` (scikit-learn digits):
through the CLI with ``--once``, held-out images are classified well above chance (10 %)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.component.harness import json_lines, run_cli


@pytest.mark.slow
def test_onnx_runtime_classifies_held_out_digits_well_above_chance(
    trained_digits_model, tmp_path: Path
):
    model_dir = Path(trained_digits_model.onnx_dir)
    labels = json.loads((model_dir / "labels.json").read_text())
    names = labels if isinstance(labels, list) else [labels[k] for k in sorted(labels, key=int)]
    work = tmp_path / "work"
    inputs = work / "input"
    inputs.mkdir(parents=True)
    truth = {}
    for class_dir in sorted(Path(trained_digits_model.heldout_dir).iterdir()):
        for image in sorted(class_dir.glob("*.png")):
            name = f"{class_dir.name}-{image.name}"
            shutil.copyfile(image, inputs / name)
            truth[name] = class_dir.name
    assert len(truth) >= 100 and set(truth.values()) <= set(names)

    result = run_cli(
        ["--model-dir", str(model_dir), "--runtime", "onnx", "--input-dir", "input", "--once",
         "--settle-seconds", "0", "--top-k", "3"],
        cwd=work,
        timeout=300,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    results = {m["input"]: m for m in json_lines(result.stdout)}
    assert set(results) == set(truth)
    assert not [m for m in results.values() if "error" in m]
    assert {m["runtime"] for m in results.values()} == {"onnx"}
    for message in results.values():
        assert message["top"][0]["label"] == names[message["top"][0]["index"]]
    correct = sum(results[name]["top"][0]["label"] == label for name, label in truth.items())
    accuracy = correct / len(truth)
    print(f"ONNX Runtime via the component: held-out accuracy {accuracy:.1%} on {len(truth)}")
    assert accuracy >= 0.6, f"held-out accuracy {accuracy:.2%}"
    assert len(list((work / "processed").iterdir())) == len(truth)
