"""``device_sim.ipc.IpcServer`` against the real ``GreengrassCoreIPCClientV2`` (awsiotsdk/awscrt).

Every test connects the unmodified client over the Unix socket, as a component does inside
Greengrass, or speaks raw event-stream frames where the client cannot misbehave on purpose.
Expected answers come from the nucleus's agents (cited in ``device_sim/ipc/server.py``):
``MqttProxyIPCAgent`` (Not Authorized, QoS), ``ConfigStoreIPCEventStreamAgent`` (Key not found,
key paths, validation), ``IPCEventStreamService`` (authentication).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import struct
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest
from awscrt import eventstream as crt_eventstream
from awscrt.eventstream import rpc as crt_rpc
from awsiot import eventstreamrpc
from awsiot.greengrasscoreipc import connect
from awsiot.greengrasscoreipc import model as ipc_model
from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2

from device_sim.ipc import (
    ACCEPTED,
    NOT_SUBSCRIBED,
    REJECTED,
    TIMED_OUT,
    IpcServer,
    PublishRequest,
)
from device_sim.ipc import eventstream as es

COMPONENT = "com.example.edgeai.dev.DlrInference"
OTHER = "com.example.Other"
THING = "core-device-7"
LITERAL_TOPIC = "edge-ai/{iot:thingName}/predictions"


def access_control(*resources: str, operations: Optional[List[str]] = None) -> Dict[str, Any]:
    return {
        "aws.greengrass.ipc.mqttproxy": {
            f"{COMPONENT}:mqttproxy:1": {
                "policyDescription": "publish results",
                "operations": operations or ["aws.greengrass#PublishToIoTCore"],
                "resources": list(resources),
            }
        }
    }


class Device:
    """The server plus what it recorded; the configuration is mutable per test."""

    def __init__(self, socket_path: Path) -> None:
        self.configs: Dict[str, Dict[str, Any]] = {
            COMPONENT: {
                "TopK": 5,
                "Nested": {"Inner": "x", "Deeper": {"Leaf": 1}},
                "accessControl": access_control(LITERAL_TOPIC),
            },
            OTHER: {"Key": "value"},
        }
        self.published: List[PublishRequest] = []
        self.on_publish: Callable[[PublishRequest], None] = self.published.append
        self.server = IpcServer(
            socket_path, self.configs.__getitem__, lambda request: self.on_publish(request)
        )
        self.token = self.server.register(COMPONENT)
        self.other_token = self.server.register(OTHER)
        self.clients: List[GreengrassCoreIPCClientV2] = []

    def client(self, token: Optional[str] = None, **kwargs: Any) -> GreengrassCoreIPCClientV2:
        raw = connect(
            ipc_socket=str(self.server.socket_path), authtoken=token or self.token, **kwargs
        )
        client = GreengrassCoreIPCClientV2(client=raw)
        self.clients.append(client)
        return client

    def raw(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(5)
        sock.connect(str(self.server.socket_path))
        return sock


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """Unix socket paths are limited to 107 bytes; pytest's tmp_path can be longer."""
    with tempfile.TemporaryDirectory(prefix="ipc-", dir="/tmp") as folder:
        yield Path(folder)


@pytest.fixture
def device(short_dir: Path) -> Iterator[Device]:
    result = Device(short_dir / "ipc.socket")
    result.server.start()
    try:
        yield result
    finally:
        for client in result.clients:
            client.close()
        result.server.stop()


@contextlib.contextmanager
def raises_ipc(error: type, pattern: str) -> Iterator[None]:
    """The modeled IPC error ``error`` whose ``message`` (not ``str()``) matches ``pattern``."""
    with pytest.raises(error) as raised:
        yield
    assert re.search(pattern, raised.value.message or ""), raised.value.message


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


# -- raw frames -----------------------------------------------------------------------------


def send(sock: socket.socket, message_type: int, *extra: es.Header, flags: int = 0,
         stream_id: int = 0, payload: bytes = b"") -> None:  # fmt: skip
    headers = es.rpc_headers(es.MessageType(message_type), flags, stream_id, *extra)
    sock.sendall(es.encode_message(headers, payload))


def raw_connect(sock: socket.socket, token: str, version: str = "0.1.0") -> es.Message:
    send(sock, es.MessageType.CONNECT, es.Header.string(":version", version),
         payload=json.dumps({"authToken": token}).encode())  # fmt: skip
    reply = es.read_message(sock)
    assert reply is not None
    return reply


def closed_by_peer(sock: socket.socket, *, hang_up: bool = False) -> bool:
    """Whether the server closed the connection (after we hung up, with ``hang_up``)."""
    if hang_up:
        sock.shutdown(socket.SHUT_WR)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


# -- the format ------------------------------------------------------------------------------


def test_codec_matches_awscrt_numbering_and_a_known_message() -> None:
    """Header and message type numbers are awscrt's; a reference frame round-trips.

    The frame is the event-stream example with one ``content-type`` header (also quoted by the
    emblica/aws-event-stream-parser-rs README, which follows aws-c-event-stream).
    """
    for kind in crt_eventstream.HeaderType:
        assert es.HeaderType[kind.name] == int(kind)
    for kind in crt_rpc.MessageType:
        assert es.MessageType[kind.name] == int(kind)
    assert es.FLAG_CONNECTION_ACCEPTED == crt_rpc.MessageFlag.CONNECTION_ACCEPTED
    assert es.FLAG_TERMINATE_STREAM == crt_rpc.MessageFlag.TERMINATE_STREAM
    frame = bytes.fromhex(
        "0000003d0000002007fd83960c636f6e74656e742d747970650700106170706c69636174696f6e2f"
        "6a736f6e7b27666f6f273a27626172277d8d9c08b1"
    )
    message = es.decode_message(frame)
    assert message.headers == (es.Header.string("content-type", "application/json"),)
    assert message.payload == b"{'foo':'bar'}"
    assert es.encode_message(message.headers, message.payload) == frame
    broken = frame[:-1] + bytes([frame[-1] ^ 1])
    with pytest.raises(es.FrameError, match="message CRC"):
        es.decode_message(broken)


def test_every_header_type_round_trips() -> None:
    import uuid

    headers = (
        es.Header("t", True, es.HeaderType.BOOL_TRUE),
        es.Header("f", False, es.HeaderType.BOOL_FALSE),
        es.Header("b", -7, es.HeaderType.BYTE),
        es.Header("s", -300, es.HeaderType.INT16),
        es.Header("i", 2**31 - 1, es.HeaderType.INT32),
        es.Header("l", -(2**63), es.HeaderType.INT64),
        es.Header("buf", b"\x00\xff", es.HeaderType.BYTE_BUF),
        es.Header("str", "héllo", es.HeaderType.STRING),
        es.Header("ts", 1_700_000_000_000, es.HeaderType.TIMESTAMP),
        es.Header("u", uuid.UUID(int=12345), es.HeaderType.UUID),
    )
    message = es.decode_message(es.encode_message(headers, b"payload"))
    assert message.headers == headers
    assert message.payload == b"payload"


# -- connecting --------------------------------------------------------------------------------


def test_client_finds_the_server_through_the_nucleus_environment(
    device: Device, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``GreengrassCoreIPCClientV2()`` with no arguments: socket and SVCUID from the env."""
    monkeypatch.setenv("AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT",
                       str(device.server.socket_path))  # fmt: skip
    monkeypatch.setenv("SVCUID", device.token)
    client = GreengrassCoreIPCClientV2()
    device.clients.append(client)
    response = client.get_configuration(key_path=[])
    assert response.component_name == COMPONENT
    assert response.value == device.configs[COMPONENT]  # accessControl included


def test_unknown_token_is_refused_and_the_server_keeps_serving(device: Device) -> None:
    with pytest.raises(eventstreamrpc.AccessDeniedError):
        device.client(token="NOT-A-REGISTERED-TOKEN")
    assert device.client().get_configuration(key_path=["TopK"]).value == {"TopK": 5}


def test_raw_connect_rules(device: Device) -> None:
    """CONNECT_ACK flags, version check, and messages before the handshake."""
    with device.raw() as sock:
        reply = raw_connect(sock, "WRONG")
        assert reply.int_header(":message-type") == es.MessageType.CONNECT_ACK
        assert reply.int_header(":message-flags") == 0
        assert closed_by_peer(sock)
    with device.raw() as sock:
        reply = raw_connect(sock, device.token, version="9.9.9")
        assert reply.int_header(":message-flags") == 0
        assert closed_by_peer(sock, hang_up=True)
    with device.raw() as sock:
        send(sock, es.MessageType.PING)
        reply = es.read_message(sock)
        assert reply is not None
        assert reply.int_header(":message-type") == es.MessageType.PROTOCOL_ERROR
        assert closed_by_peer(sock, hang_up=True)
    with device.raw() as sock:
        reply = raw_connect(sock, device.token)
        assert reply.int_header(":message-flags") == es.FLAG_CONNECTION_ACCEPTED
        send(sock, es.MessageType.PING, es.Header.string("x-echo", "1"), payload=b"hi")
        pong = es.read_message(sock)
        assert pong is not None
        assert pong.int_header(":message-type") == es.MessageType.PING_RESPONSE
        assert pong.str_header("x-echo") == "1"
        assert pong.payload == b"hi"
        # A new stream must be the next id: 2 before 1 is a protocol error.
        send(sock, es.MessageType.APPLICATION_MESSAGE,
             es.Header.string("operation", "aws.greengrass#GetConfiguration"),
             stream_id=2, payload=b"{}")  # fmt: skip
        reply = es.read_message(sock)
        assert reply is not None
        assert reply.int_header(":message-type") == es.MessageType.PROTOCOL_ERROR


def test_bad_crc_closes_that_connection_only(device: Device) -> None:
    client = device.client()
    with device.raw() as sock:
        raw_connect(sock, device.token)
        frame = bytearray(es.encode_message(es.rpc_headers(es.MessageType.PING), b"ping"))
        frame[-5] ^= 0xFF  # payload byte: the message CRC no longer matches
        sock.sendall(bytes(frame))
        assert closed_by_peer(sock)
    with device.raw() as sock:
        raw_connect(sock, device.token)
        prelude = bytearray(es.encode_message(es.rpc_headers(es.MessageType.PING)))
        struct.pack_into(">I", prelude, 8, 0)  # prelude CRC
        sock.sendall(bytes(prelude))
        assert closed_by_peer(sock)
    assert client.get_configuration(key_path=["TopK"]).value == {"TopK": 5}
    assert device.client().get_configuration(key_path=["TopK"]).value == {"TopK": 5}


# -- configuration -----------------------------------------------------------------------------


def test_get_configuration_key_paths(device: Device) -> None:
    client = device.client()
    assert client.get_configuration(key_path=["Nested"]).value == {
        "Inner": "x",
        "Deeper": {"Leaf": 1},
    }
    assert client.get_configuration(key_path=["Nested", "Inner"]).value == {"Inner": "x"}
    other = client.get_configuration(component_name=OTHER, key_path=[])
    assert (other.component_name, other.value) == (OTHER, {"Key": "value"})
    with raises_ipc(ipc_model.ResourceNotFoundError, "Key not found"):
        client.get_configuration(key_path=["Nested", "Missing"])
    with pytest.raises(ipc_model.ResourceNotFoundError):
        client.get_configuration(component_name="com.example.NotOnDevice", key_path=[])


def test_configuration_update_reaches_subscribers_of_that_node(device: Device) -> None:
    client = device.client()
    whole: List[Any] = []
    nested: List[Any] = []
    client.subscribe_to_configuration_update(key_path=[], on_stream_event=whole.append)
    client.subscribe_to_configuration_update(key_path=["Nested"], on_stream_event=nested.append)
    with pytest.raises(ipc_model.ResourceNotFoundError):
        client.subscribe_to_configuration_update(key_path=["Missing"])

    assert device.server.push_configuration_update(COMPONENT, ["TopK"]) == 1
    assert device.server.push_configuration_update(COMPONENT, ["Nested", "Deeper", "Leaf"]) == 2
    assert device.server.push_configuration_update(OTHER, ["Key"]) == 0
    assert wait_until(lambda: len(whole) == 2 and len(nested) == 1)
    events = [e.configuration_update_event for e in whole]
    assert [(e.component_name, e.key_path) for e in events] == [
        (COMPONENT, ["TopK"]),
        (COMPONENT, ["Nested", "Deeper", "Leaf"]),
    ]
    assert nested[0].configuration_update_event.key_path == ["Nested", "Deeper", "Leaf"]


def test_validation_round_trip(device: Device) -> None:
    client = device.client()

    def on_validate(event: Any) -> None:
        request = event.validate_configuration_update_event
        top_k = request.configuration.get("TopK")
        if top_k == "silent":
            return
        ok = isinstance(top_k, int) and top_k > 0
        client.send_configuration_validity_report(
            configuration_validity_report=ipc_model.ConfigurationValidityReport(
                status=ACCEPTED if ok else REJECTED,
                deployment_id=request.deployment_id,
                message="fine" if ok else f"TopK must be a positive integer, not {top_k!r}",
            )
        )

    assert device.server.validate_configuration(COMPONENT, {"TopK": 3}, timeout=1)[0] == (
        NOT_SUBSCRIBED
    )
    client.subscribe_to_validate_configuration_updates(on_stream_event=on_validate)
    assert wait_until(lambda: device.server.validate_configuration(
        COMPONENT, {"TopK": 3}, timeout=5) == (ACCEPTED, "fine"))  # fmt: skip
    assert device.server.validate_configuration(COMPONENT, {"TopK": -1}, timeout=5) == (
        REJECTED,
        "TopK must be a positive integer, not -1",
    )
    status, _ = device.server.validate_configuration(
        COMPONENT, {"TopK": "silent"}, timeout=0.3, deployment_id="late"
    )
    assert status == TIMED_OUT
    with raises_ipc(ipc_model.InvalidArgumentsError, "timed out or was never made"):
        client.send_configuration_validity_report(
            configuration_validity_report=ipc_model.ConfigurationValidityReport(
                status=ACCEPTED, deployment_id="late"
            )
        )
    assert device.server.validate_configuration(OTHER, {}, timeout=1)[0] == NOT_SUBSCRIBED


# -- publishing --------------------------------------------------------------------------------


def publish(client: GreengrassCoreIPCClientV2, topic: str, payload: bytes = b"{}") -> None:
    client.publish_to_iot_core(topic_name=topic, qos=ipc_model.QOS.AT_LEAST_ONCE, payload=payload)


def test_publish_allowed_is_recorded(device: Device) -> None:
    resolved = f"edge-ai/{THING}/predictions"
    device.configs[COMPONENT]["accessControl"] = access_control(resolved)
    client = device.client()
    publish(client, resolved, b'{"top": 1}')
    client.publish_to_iot_core(topic_name=resolved, qos=ipc_model.QOS.AT_MOST_ONCE, payload=b"x")
    assert device.published == [
        PublishRequest(COMPONENT, resolved, b'{"top": 1}', "1"),
        PublishRequest(COMPONENT, resolved, b"x", "0"),
    ]


def test_literal_recipe_variable_denies_the_resolved_topic(device: Device) -> None:
    """A default nucleus does not interpolate configuration: ``{iot:thingName}`` stays literal."""
    client = device.client()
    with pytest.raises(ipc_model.UnauthorizedError) as raised:
        publish(client, f"edge-ai/{THING}/predictions")
    assert raised.value.message == "Not Authorized"
    assert device.published == []
    publish(client, LITERAL_TOPIC)  # the literal string itself is what the policy allows
    assert [p.topic for p in device.published] == [LITERAL_TOPIC]


@pytest.mark.parametrize(
    ("resources", "topic", "allowed"),
    [
        (["edge-ai/+/predictions"], f"edge-ai/{THING}/predictions", True),
        (["edge-ai/+/predictions"], "edge-ai/a/b/predictions", False),
        (["edge-ai/#"], "edge-ai", True),
        (["edge-ai/#"], "edge-ai/x/y/z", True),
        (["edge-ai/#"], "edge-aix/y", False),
        (["edge-ai/*"], "edge-ai/x/y", True),
        (["*"], "anything/at/all", True),
        (["edge-ai/${*}"], "edge-ai/x", False),
        (["edge-ai/${*}"], "edge-ai/*", True),
        (["edge-ai/?"], "edge-ai/?", False),  # an unescaped '?' voids the resource
        ([], "edge-ai/x", False),
    ],
)
def test_wildcard_resources(
    device: Device, resources: List[str], topic: str, allowed: bool
) -> None:
    device.configs[COMPONENT]["accessControl"] = access_control(*resources)
    client = device.client()
    if allowed:
        publish(client, topic)
        assert [p.topic for p in device.published] == [topic]
    else:
        with pytest.raises(ipc_model.UnauthorizedError):
            publish(client, topic)
        assert device.published == []


def test_policy_operations_and_destination(device: Device) -> None:
    topic = "t/1"
    client = device.client()
    device.configs[COMPONENT]["accessControl"] = access_control(topic, operations=["*"])
    publish(client, topic)
    device.configs[COMPONENT]["accessControl"] = access_control(
        topic, operations=["aws.greengrass#SubscribeToIoTCore"]
    )
    with pytest.raises(ipc_model.UnauthorizedError):
        publish(client, topic)
    device.configs[COMPONENT]["accessControl"] = {
        "aws.greengrass.ipc.pubsub": access_control(topic)["aws.greengrass.ipc.mqttproxy"]
    }
    with pytest.raises(ipc_model.UnauthorizedError):
        publish(client, topic)
    # The nucleus also parses accessControl given as a JSON string (a leaf topic).
    device.configs[COMPONENT]["accessControl"] = json.dumps(access_control(topic))
    publish(client, topic)
    # The policy is this component's: another component is not covered by it.
    with pytest.raises(ipc_model.UnauthorizedError):
        publish(device.client(device.other_token), topic)
    assert [p.component for p in device.published] == [COMPONENT, COMPONENT]


def test_publish_argument_errors_and_failed_delivery(device: Device) -> None:
    device.configs[COMPONENT]["accessControl"] = access_control("t/#")
    client = device.client()
    with raises_ipc(ipc_model.InvalidArgumentsError, "Invalid QoS value: 2"):
        client.publish_to_iot_core(topic_name="t/1", qos="2", payload=b"x")
    with raises_ipc(ipc_model.InvalidArgumentsError, "Payload is required"):
        client.publish_to_iot_core(topic_name="t/1", qos=ipc_model.QOS.AT_LEAST_ONCE)

    def refuse(request: PublishRequest) -> None:
        raise ConnectionError("IoT policy denies iot:Publish")

    device.on_publish = refuse
    with raises_ipc(ipc_model.ServiceError, "Publish to topic t/1 failed: IoT policy"):
        publish(client, "t/1")
    assert device.published == []


# -- other operations --------------------------------------------------------------------------


def test_update_state_and_unsupported_operations(device: Device) -> None:
    client = device.client()
    client.update_state(state=ipc_model.ReportedLifecycleState.RUNNING)
    assert device.server.reported_state(COMPONENT) == "RUNNING"
    with raises_ipc(ipc_model.ServiceError, "ListComponents is not supported"):
        client.list_components()
    with device.raw() as sock:
        raw_connect(sock, device.token)
        send(sock, es.MessageType.APPLICATION_MESSAGE,
             es.Header.string("operation", "example#NoSuchOperation"),
             stream_id=1, payload=b"{}")  # fmt: skip
        reply = es.read_message(sock)
        assert reply is not None
        assert reply.int_header(":message-type") == es.MessageType.APPLICATION_ERROR
        assert reply.int_header(":message-flags") == es.FLAG_TERMINATE_STREAM
        assert json.loads(reply.payload)["error"] == "Unsupported Operation"
        # The connection stays usable.
        send(sock, es.MessageType.APPLICATION_MESSAGE,
             es.Header.string("operation", "aws.greengrass#GetConfiguration"),
             stream_id=2, payload=b'{"keyPath": ["TopK"]}')  # fmt: skip
        reply = es.read_message(sock)
        assert reply is not None
        assert reply.str_header("service-model-type") == "aws.greengrass#GetConfigurationResponse"
        assert json.loads(reply.payload)["value"] == {"TopK": 5}


def test_stop_closes_every_connection(device: Device) -> None:
    client = device.client()
    closed = threading.Event()
    client.subscribe_to_configuration_update(key_path=[], on_stream_closed=closed.set)
    device.server.stop()
    assert closed.wait(10), "the subscription stream must see the connection close"
    with pytest.raises(Exception):  # noqa: B017 - ConnectionClosedError or a CRT error
        client.get_configuration(key_path=[])
    assert not os.path.exists(device.server.socket_path)


def test_socket_path_too_long_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at most 107"):
        IpcServer(tmp_path / ("x" * 120), lambda name: {}, lambda request: None)
