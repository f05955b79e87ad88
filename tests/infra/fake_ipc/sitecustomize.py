"""Test double for Greengrass IPC, loaded at interpreter start-up (``sitecustomize``).

Put this folder first on ``PYTHONPATH`` of a process that runs the inference component: it
replaces ``GreengrassCoreIPCClientV2`` with a fake that serves the configuration in the file
named by ``FAKE_IPC_CONFIG`` and appends every ``publish_to_iot_core`` call to the JSON-lines
file named by ``FAKE_IPC_RECORD``. The real ``awsiot.greengrasscoreipc.model`` stays in use.
"""

import json
import os
import threading
import types

from awsiot.greengrasscoreipc import clientv2


class FakeGreengrassCoreIPCClientV2:
    def __init__(self, *args, **kwargs):
        with open(os.environ["FAKE_IPC_CONFIG"]) as handle:
            self._config = json.load(handle)
        self._record = os.environ["FAKE_IPC_RECORD"]
        self._lock = threading.Lock()

    def get_configuration(self, *, key_path=None, component_name=None):
        return types.SimpleNamespace(value=self._config, component_name=component_name)

    def _subscription(self, **kwargs):
        return None, types.SimpleNamespace(close=lambda: None)

    subscribe_to_configuration_update = _subscription
    subscribe_to_validate_configuration_updates = _subscription

    def send_configuration_validity_report(self, **kwargs):
        return None

    def publish_to_iot_core(self, *, topic_name, qos, payload):
        entry = {"topic": topic_name, "qos": str(qos), "payload": json.loads(payload)}
        with self._lock, open(self._record, "a") as handle:
            handle.write(json.dumps(entry) + "\n")


clientv2.GreengrassCoreIPCClientV2 = FakeGreengrassCoreIPCClientV2
