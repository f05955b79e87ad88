"""Greengrass IPC: configuration in, results out.

The component uses exactly these ``GreengrassCoreIPCClientV2`` methods (the recipe's
``accessControl`` and any fake client in tests must cover them):

- ``get_configuration``
- ``subscribe_to_configuration_update``
- ``subscribe_to_validate_configuration_updates``
- ``send_configuration_validity_report``
- ``publish_to_iot_core``

The classes take the client as an argument. ``awsiot`` (awsiotsdk) is imported only when one of
them is created, i.e. only in ``--ipc`` mode.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Dict, List, Optional

from device_contract.messages import encode
from edge_inference.config import Config, ConfigStore, resolve_topic

LOG = logging.getLogger(__name__)


# What awsiotsdk's ``greengrasscoreipc.connect`` reads to reach the nucleus; the nucleus sets them
# for a component's lifecycle scripts (nucleus ``ipc/IPCEventStreamService.java``
# ``NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT``; ``lifecyclemanager/ShellRunner.java``
# ``setenv("SVCUID", ...)``).
IPC_ENV = ("AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT", "SVCUID")


class IpcUnavailable(Exception):
    """Greengrass IPC cannot be reached; the message is one line for the user."""


def connect() -> Any:
    """A connected ``GreengrassCoreIPCClientV2``; :class:`IpcUnavailable` outside Greengrass."""
    missing = [name for name in IPC_ENV if not os.environ.get(name)]
    if missing:
        raise IpcUnavailable(
            f"--ipc works only in a Greengrass component: {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not set (the nucleus sets them for the "
            "component's lifecycle scripts)"
        )
    from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2

    try:
        return GreengrassCoreIPCClientV2()
    except Exception as err:  # awscrt raises AwsCrtError (socket gone, token refused)
        socket = os.environ[IPC_ENV[0]]
        raise IpcUnavailable(f"--ipc: cannot connect to the nucleus at {socket}: {err}") from err


class IotCorePublisher:
    """Publishes each message as JSON to AWS IoT Core, QoS 1, on the configured topic: the
    results' ``PublishTopic``, or with ``metrics`` the ``MetricsTopic``."""

    def __init__(
        self, client: Any, config: Config, thing_name: Optional[str], *, metrics: bool = False
    ) -> None:
        from awsiot.greengrasscoreipc.model import QOS

        self._client = client
        self._qos = QOS.AT_LEAST_ONCE
        self._thing_name = thing_name
        self._metrics = metrics
        self.topic = self._topic(config)

    def _topic(self, config: Config) -> str:
        if self._metrics:
            return resolve_topic(config.metrics_topic, self._thing_name, "MetricsTopic")
        return resolve_topic(config.publish_topic, self._thing_name)

    def apply_config(self, config: Config) -> None:
        self.topic = self._topic(config)

    def publish(self, message: Dict[str, Any]) -> None:
        self._client.publish_to_iot_core(
            topic_name=self.topic,
            qos=self._qos,
            payload=encode(message).encode("utf-8"),
        )


class IpcConfiguration:
    """Feeds the component configuration from Greengrass into a :class:`ConfigStore`.

    Validation requests of a deployment are answered with ACCEPTED or REJECTED plus the reason;
    update notifications re-read the whole configuration and offer it to the store, which the
    service picks up between two files.
    """

    def __init__(self, client: Any, store: ConfigStore) -> None:
        from awsiot.greengrasscoreipc import model

        self._client = client
        self._store = store
        self._model = model
        self._operations: List[Any] = []

    def read(self) -> Dict[str, Any]:
        """The component's whole current configuration."""
        response = self._client.get_configuration(key_path=[])
        value = response.value if response is not None else None
        return value if isinstance(value, dict) else {}

    def subscribe(self) -> None:
        """Start receiving validation requests and updates."""
        _, op = self._client.subscribe_to_validate_configuration_updates(
            on_stream_event=self.on_validate,
            on_stream_error=self._on_stream_error,
            on_stream_closed=self._on_stream_closed,
        )
        self._operations.append(op)
        _, op = self._client.subscribe_to_configuration_update(
            key_path=[],
            on_stream_event=self.on_update,
            on_stream_error=self._on_stream_error,
            on_stream_closed=self._on_stream_closed,
        )
        self._operations.append(op)

    def on_validate(self, event: Any) -> None:
        """A deployment asks whether its configuration is acceptable."""
        request = event.validate_configuration_update_event
        if request is None:
            return
        try:
            reason = self._store.check(request.configuration or {})
        except Exception as err:  # a report must go out whatever the configuration holds
            reason = f"invalid configuration: {type(err).__name__}: {err}"
        model = self._model
        if reason is None:
            status, message = model.ConfigurationValidityStatus.ACCEPTED, "accepted"
        else:
            status, message = model.ConfigurationValidityStatus.REJECTED, reason
            LOG.warning(
                "rejecting configuration of deployment %s: %s", request.deployment_id, reason
            )
        report = model.ConfigurationValidityReport(
            status=status, deployment_id=request.deployment_id, message=message
        )
        try:
            self._client.send_configuration_validity_report(configuration_validity_report=report)
        except Exception as err:  # IPC errors vary (awscrt, model errors); log and go on
            LOG.error("could not send the configuration validity report: %s", err)

    def on_update(self, event: Any) -> None:
        """The configuration changed: re-read all of it and offer it to the service."""
        update = event.configuration_update_event
        LOG.info("configuration update at %s", getattr(update, "key_path", None))
        try:
            raw = self.read()
        except Exception as err:  # IPC errors vary; the next update will retry
            LOG.error("could not read the updated configuration: %s", err)
            return
        self._store.offer(raw)

    @staticmethod
    def _on_stream_error(error: Exception) -> bool:
        LOG.error("configuration stream error: %s", error)
        return False  # keep the stream open

    @staticmethod
    def _on_stream_closed() -> None:
        LOG.warning("configuration stream closed")
