"""Greengrass mode with a fake IPC client: configuration from IPC, live updates, validation of
a deployment's configuration, and publishing to IoT Core.

The fake has only the five IPC methods the component may use (``edge_inference.ipc``'s
docstring) and answers with awsiotsdk's own model classes.
"""

from __future__ import annotations

import copy
import json
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import pytest
from awsiot.greengrasscoreipc import model
from edge_inference.cli import UsageError, build_parser, build_service

from tests.component.harness import Folders, TinyPackage, random_tensor, wait_for


class FakeIpcClient:
    """Stands in for ``GreengrassCoreIPCClientV2`` (the five methods the component uses)."""

    def __init__(self, config: Dict[str, Any], fail_publish: int = 0) -> None:
        self.config = copy.deepcopy(config)
        self.fail_publish = fail_publish
        self.published: List[Dict[str, Any]] = []
        self.reports: List[model.ConfigurationValidityReport] = []
        self.on_validate: Optional[Any] = None
        self.on_update: Optional[Any] = None
        self.lock = threading.Lock()

    def get_configuration(self, *, component_name=None, key_path=None):
        assert key_path in (None, [])
        value = copy.deepcopy(self.config)
        return model.GetConfigurationResponse(component_name="com.example.Inference", value=value)

    def subscribe_to_validate_configuration_updates(self, *, on_stream_event, **_handlers):
        self.on_validate = on_stream_event
        return model.SubscribeToValidateConfigurationUpdatesResponse(), object()

    def subscribe_to_configuration_update(self, *, key_path=None, on_stream_event, **_handlers):
        self.on_update = on_stream_event
        return model.SubscribeToConfigurationUpdateResponse(), object()

    def send_configuration_validity_report(self, *, configuration_validity_report):
        self.reports.append(configuration_validity_report)
        return model.SendConfigurationValidityReportResponse()

    def publish_to_iot_core(self, *, topic_name, qos, payload):
        with self.lock:
            if self.fail_publish > 0:
                self.fail_publish -= 1
                raise ConnectionError("IPC publish failed")
            self.published.append(
                {"topic": topic_name, "qos": qos, "message": json.loads(payload.decode())}
            )
        return model.PublishToIoTCoreResponse()

    # What Greengrass does during a deployment:
    def validate(self, config: Dict[str, Any], deployment_id: str = "dep-1"):
        event = model.ValidateConfigurationUpdateEvent(
            configuration=copy.deepcopy(config), deployment_id=deployment_id
        )
        self.on_validate(
            model.ValidateConfigurationUpdateEvents(validate_configuration_update_event=event)
        )
        return self.reports[-1]

    def update(self, config: Dict[str, Any], key: str) -> None:
        self.config = copy.deepcopy(config)
        event = model.ConfigurationUpdateEvent(
            component_name="com.example.Inference", key_path=[key]
        )
        self.on_update(model.ConfigurationUpdateEvents(configuration_update_event=event))


def recipe_defaults(package: TinyPackage) -> Dict[str, Any]:
    """What the recipe's DefaultConfiguration sets (relative paths: the work dir)."""
    return {
        "InputDir": "input",
        "ProcessedDir": "processed",
        "FailedDir": "failed",
        "Runtime": "dlr",
        "TopK": 2,
        "PollIntervalSeconds": 0.05,
        "SettleSeconds": 0.0,
        "MaxImagePixels": 50_000_000,
        "PublishTopic": "edge-ai/{iot:thingName}/predictions",
        "MaxOutboxFiles": 10_000,
        "accessControl": {"aws.greengrass.ipc.mqttproxy": {"policy": {}}},
    }


def start_ipc_service(folders: Folders, package: TinyPackage, client: FakeIpcClient):
    args = build_parser().parse_args(
        ["--ipc", "--model-dir", str(package.model_dir), "--state-dir", str(folders.state)]
    )
    stop = threading.Event()
    service = build_service(args, stop, ipc_client=client, cwd=folders.root)
    service._drainer.min_backoff = service._drainer.max_backoff = 0.05
    worker = threading.Thread(target=service.run, daemon=True)
    worker.start()
    return service, stop, worker


@pytest.fixture(autouse=True)
def thing_name(monkeypatch):
    monkeypatch.setenv("AWS_IOT_THING_NAME", "core-device-7")


def drop(folder: Path, name: str, seed: int) -> None:
    """Write an input the way producers should with SettleSeconds 0: temp name, then rename."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{name}.tmp"
    with tmp.open("wb") as handle:
        np.save(handle, random_tensor(seed))
    tmp.rename(folder / name)


def test_results_are_published_to_the_device_topic_with_the_ipc_configuration(
    folders: Folders, dual_package: TinyPackage
):
    client = FakeIpcClient(recipe_defaults(dual_package), fail_publish=2)
    _service, stop, worker = start_ipc_service(folders, dual_package, client)
    try:
        drop(folders.input, "a.npy", 1)
        assert wait_for(lambda: len(client.published) == 1)
    finally:
        stop.set()
        worker.join(10)
    (published,) = client.published
    assert published["topic"] == "edge-ai/core-device-7/predictions"
    assert published["qos"] == model.QOS.AT_LEAST_ONCE
    message = published["message"]
    assert message["input"] == "a.npy"
    assert len(message["top"]) == 2  # TopK from IPC, not the CLI default of 5
    assert message["model"] == "tiny-dual-1"
    assert message["runtime"] == "dlr"
    assert {"latency_ms", "timestamp"} <= set(message)
    assert (folders.root / "processed" / "a.npy").exists()  # ProcessedDir relative to cwd


def test_a_configuration_update_takes_effect_without_a_restart(
    folders: Folders, dual_package: TinyPackage
):
    config = recipe_defaults(dual_package)
    client = FakeIpcClient(config)
    service, stop, worker = start_ipc_service(folders, dual_package, client)
    try:
        drop(folders.input, "before.npy", 2)
        assert wait_for(lambda: len(client.published) == 1)

        new = dict(
            config, TopK=4, Runtime="onnx", InputDir="camera", PublishTopic="t/{iot:thingName}"
        )
        assert client.validate(new).status == model.ConfigurationValidityStatus.ACCEPTED
        client.update(new, key="TopK")
        assert wait_for(lambda: service.config.top_k == 4)
        drop(folders.root / "camera", "after.npy", 3)
        drop(folders.input, "old_folder.npy", 4)
        assert wait_for(lambda: len(client.published) == 2)
    finally:
        stop.set()
        worker.join(10)
    before, after = (p["message"] for p in client.published)
    assert len(before["top"]) == 2 and before["runtime"] == "dlr"
    assert after["input"] == "after.npy"
    assert len(after["top"]) == 4
    assert after["runtime"] == "onnx"  # model reloaded in-process with the other runtime
    assert client.published[1]["topic"] == "t/core-device-7"
    expected = dual_package.classifier.predict(random_tensor(3))[0]
    assert after["top"][0]["index"] == int(np.argmax(expected))
    assert after["top"][0]["score"] == pytest.approx(float(expected.max()), abs=1e-5)
    assert (folders.input / "old_folder.npy").exists()  # InputDir moved away from it


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"TopK": 0}, "TopK"),
        ({"Runtime": "tflite"}, "Runtime"),
        ({"PollIntervalSeconds": -1}, "PollIntervalSeconds"),
        ({"SettleSeconds": "soon"}, "SettleSeconds"),
        ({"MaxOutboxFiles": True}, "MaxOutboxFiles"),
        ({"PublishTopic": "edge-ai/#"}, "PublishTopic"),
        ({"ModelDir": "/nonexistent/model"}, "does not exist"),
        ({"InputDir": "processed"}, "same folder"),
    ],
)
def test_an_invalid_deployment_configuration_is_rejected_and_not_applied(
    folders: Folders, dual_package: TinyPackage, change: Dict[str, Any], reason: str
):
    config = recipe_defaults(dual_package)
    client = FakeIpcClient(config)
    service, stop, worker = start_ipc_service(folders, dual_package, client)
    try:
        bad = dict(config, **change)
        report = client.validate(bad, deployment_id="dep-bad")
        assert report.status == model.ConfigurationValidityStatus.REJECTED
        assert report.deployment_id == "dep-bad"
        assert reason in report.message
        # A local deployment can skip validation: an update with it is still not applied.
        client.update(bad, key=next(iter(change)))
        drop(folders.input, "x.npy", 5)
        assert wait_for(lambda: len(client.published) == 1)
    finally:
        stop.set()
        worker.join(10)
    assert service.config.top_k == 2
    assert service.config.runtime == "dlr"
    assert len(client.published[0]["message"]["top"]) == 2


def test_the_topic_needs_the_thing_name_from_greengrass(
    folders: Folders, dual_package: TinyPackage, monkeypatch
):
    monkeypatch.delenv("AWS_IOT_THING_NAME")
    client = FakeIpcClient(recipe_defaults(dual_package))
    args = build_parser().parse_args(
        ["--ipc", "--model-dir", str(dual_package.model_dir), "--state-dir", str(folders.state)]
    )
    with pytest.raises(UsageError, match="AWS_IOT_THING_NAME"):
        build_service(args, threading.Event(), ipc_client=client, cwd=folders.root)
