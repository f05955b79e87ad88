"""The real inference component (``python -m edge_inference --ipc``) against the simulated nucleus.

No fake client: the component's own ``GreengrassCoreIPCClientV2`` finds the server through
``AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT`` and ``SVCUID`` (what the nucleus puts in
a component's environment, ``IPCEventStreamService``), reads the recipe's default configuration
over IPC, subscribes to updates and validation, and publishes its result through
PublishToIoTCore, which the server authorizes against the recipe's ``accessControl``.

The configuration is the recipe's (``edge_constructs.greengrass.recipes``) with
``{iot:thingName}`` substituted in ``accessControl``, as a nucleus with
``interpolateComponentConfiguration`` would; the component substitutes it in ``PublishTopic``
itself. The model is the tiny Neo-layout classifier that real ``libdlr.so`` runs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Dict, Iterator, List

import numpy as np
import pytest

from device_sim.ipc import ACCEPTED, REJECTED, IpcServer, PublishRequest
from edge_constructs.greengrass.recipes import inference_configuration, inference_recipe
from stand_ins.neo_model import build_tiny_classifier

ROOT = Path(__file__).resolve().parents[2]
COMPONENT = "com.example.edgeai.dev.DlrInference"
THING = "core-device-7"
SHAPE = (1, 3, 32, 32)


def recipe_configuration(thing_name: str) -> Dict[str, Any]:
    configuration = inference_configuration(top_k=3, topic_prefix="edge-ai")
    recipe = inference_recipe(
        name=COMPONENT,
        version="1.0.0",
        artifact_uri="s3://bucket/inference.zip",
        unarchived_name="inference",
        launcher="exec python3",
        model_name="com.example.edgeai.dev.Model",
        model_version="1.0.0",
        model_dir="model",
        runtime_name="com.example.edgeai.dev.DlrRuntime",
        runtime_version="1.0.0",
        configuration=configuration,
        architecture="amd64",
    )
    default = recipe["ComponentConfiguration"]["DefaultConfiguration"]
    # Interpolated as the nucleus does it with interpolateComponentConfiguration on.
    text = json.dumps(default).replace("{iot:thingName}", thing_name)
    return {**json.loads(text), "PublishTopic": configuration["PublishTopic"],
            "SettleSeconds": 0.0, "PollIntervalSeconds": 0.1}  # fmt: skip


@pytest.fixture
def short_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="ipc-", dir="/tmp") as folder:
        yield Path(folder)


def test_real_component_publishes_through_the_simulated_nucleus(
    short_dir: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    (work / "input").mkdir(parents=True)
    classifier = build_tiny_classifier(tmp_path / "package" / "model", input_shape=SHAPE)
    labels = {str(i): f"class-{i}" for i in range(10)}
    (tmp_path / "package" / "labels.json").write_text(json.dumps(labels))
    (tmp_path / "package" / "metadata.json").write_text(json.dumps({"input_shape": list(SHAPE)}))

    configs = {COMPONENT: recipe_configuration(THING)}
    published: List[PublishRequest] = []
    arrived = threading.Event()

    def on_publish(request: PublishRequest) -> None:
        published.append(request)
        arrived.set()

    server = IpcServer(short_dir / "ipc.socket", configs.__getitem__, on_publish)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT / "component_src"), str(ROOT)]
        ),  # + device_contract
        "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT": str(server.socket_path),
        "SVCUID": server.register(COMPONENT),
        "AWS_IOT_THING_NAME": THING,
    }
    log_path = tmp_path / "component.log"
    with server, log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-u", "-m", "edge_inference", "--ipc",
             "--model-dir", str(tmp_path / "package"), "--state-dir", str(work / "state")],
            cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            tensor = np.random.default_rng(5).random(SHAPE, dtype=np.float32)
            np.save(work / "input" / "frame.npy", tensor)
            assert arrived.wait(90), log_path.read_text()

            # The component also answers a deployment's validation request over IPC.
            assert server.validate_configuration(COMPONENT, {**configs[COMPONENT], "TopK": 0},
                                                 timeout=20)[0] == REJECTED  # fmt: skip
            status = server.validate_configuration(COMPONENT, configs[COMPONENT], timeout=20)
            assert status[0] == ACCEPTED, status
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                code = process.wait(timeout=10)
            finally:
                if process.poll() is None:
                    process.kill()
        assert code == 0, log_path.read_text()

    (message,) = published
    assert message.component == COMPONENT
    assert message.topic == f"edge-ai/{THING}/predictions"
    assert message.qos == "1"
    payload = json.loads(message.payload)
    assert payload["input"] == "frame.npy"
    expected = classifier.predict(tensor)[0]
    assert len(payload["top"]) == 3
    assert payload["top"][0]["index"] == int(np.argmax(expected))
    assert payload["top"][0]["score"] == pytest.approx(float(expected.max()), abs=1e-5)
