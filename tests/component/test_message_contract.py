"""What the component prints and publishes is device_contract's messages, byte for byte.

The keys and their order are pinned as the component wrote them before the contract existed
(``service.py``'s literal dicts), so moving the message into the contract changed no byte.
"""

from __future__ import annotations

import json

import numpy as np

from device_contract import messages
from tests.component.harness import Folders, TinyPackage, random_tensor, run_cli

PREDICTION_KEYS = ["input", "top", "latency_ms", "inference_ms", "model", "runtime", "timestamp"]
FAILURE_KEYS = ["input", "error", "model", "runtime", "timestamp"]


def test_printed_results_are_the_contracts_messages_byte_for_byte(
    folders: Folders, tiny_package: TinyPackage
):
    np.save(folders.input / "a.npy", random_tensor(1))
    (folders.input / "b.npy").write_bytes(b"not a numpy file")
    result = run_cli(
        ["--model-dir", str(tiny_package.model_dir), "--input-dir", "input", "--once"],
        cwd=folders.root,
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    parsed = {
        message.input: (message, line) for line in lines for message in [messages.parse(line)]
    }
    assert set(parsed) == {"a.npy", "b.npy"}
    prediction, line = parsed["a.npy"]
    assert isinstance(prediction, messages.Prediction)
    assert prediction.to_json() == line
    assert list(json.loads(line)) == PREDICTION_KEYS
    assert list(json.loads(line)["top"][0]) == ["index", "label", "score"]
    failure, line = parsed["b.npy"]
    assert isinstance(failure, messages.Failure)
    assert failure.to_json() == line
    assert list(json.loads(line)) == FAILURE_KEYS
    saved = (folders.root / "failed" / "b.npy.error.json").read_bytes()
    assert messages.Failure.from_json(saved) == failure
