"""The simulated nucleus's IPC server: event-stream RPC over a Unix domain socket.

See the package docstring for what it serves and how close it is to the nucleus. The behaviour
of each piece names its source next to the code: the connection rules follow aws-c-event-stream
``source/event_stream_rpc_server.c`` (what the nucleus's ``RpcServer`` runs on), the handshake
and operation routing the nucleus's ``software/amazon/awssdk/eventstreamrpc/
ServiceOperationMappingContinuationHandler.java`` and ``OperationContinuationHandler.java``,
the operations the agents under ``com/aws/greengrass/builtin/services/``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import json
import logging
import os
import secrets
import socket
import stat
import threading
import uuid
from pathlib import Path
from typing import Any, Callable, Optional

from device_sim.ipc import authorization
from device_sim.ipc.eventstream import (
    CONTENT_TYPE_HEADER,
    CONTENT_TYPE_JSON,
    CONTENT_TYPE_TEXT,
    FLAG_CONNECTION_ACCEPTED,
    FLAG_TERMINATE_STREAM,
    MESSAGE_FLAGS_HEADER,
    MESSAGE_TYPE_COUNT,
    MESSAGE_TYPE_HEADER,
    OPERATION_HEADER,
    SERVICE_MODEL_TYPE_HEADER,
    STREAM_ID_HEADER,
    VERSION_HEADER,
    FrameError,
    Header,
    Message,
    MessageType,
    encode_message,
    read_message,
    rpc_headers,
)

LOG = logging.getLogger(__name__)

# The event-stream RPC version the nucleus accepts (ServiceOperationMappingContinuationHandler
# .onConnectRequest compares the ``:version`` header with its Version; awsiot's
# eventstreamrpc.py VERSION_STRING sends "0.1.0").
RPC_VERSION = "0.1.0"
# sockaddr_un.sun_path is 108 bytes on Linux, NUL included.
MAX_SOCKET_PATH_BYTES = 107

NS = "aws.greengrass#"
GET_CONFIGURATION = NS + "GetConfiguration"
SUBSCRIBE_TO_CONFIGURATION_UPDATE = NS + "SubscribeToConfigurationUpdate"
SUBSCRIBE_TO_VALIDATE_CONFIGURATION_UPDATES = NS + "SubscribeToValidateConfigurationUpdates"
SEND_CONFIGURATION_VALIDITY_REPORT = NS + "SendConfigurationValidityReport"
PUBLISH_TO_IOT_CORE = NS + "PublishToIoTCore"
UPDATE_STATE = NS + "UpdateState"

SERVED_OPERATIONS = (
    GET_CONFIGURATION,
    SUBSCRIBE_TO_CONFIGURATION_UPDATE,
    SUBSCRIBE_TO_VALIDATE_CONFIGURATION_UPDATES,
    SEND_CONFIGURATION_VALIDITY_REPORT,
    PUBLISH_TO_IOT_CORE,
    UPDATE_STATE,
)
STREAMING_OPERATIONS = frozenset(
    {SUBSCRIBE_TO_CONFIGURATION_UPDATE, SUBSCRIBE_TO_VALIDATE_CONFIGURATION_UPDATES}
)

UNAUTHORIZED_ERROR = NS + "UnauthorizedError"
SERVICE_ERROR = NS + "ServiceError"
INVALID_ARGUMENTS_ERROR = NS + "InvalidArgumentsError"
RESOURCE_NOT_FOUND_ERROR = NS + "ResourceNotFoundError"

# Statuses validate_configuration returns. ACCEPTED / REJECTED come from the component's report;
# the nucleus (DynamicComponentConfigurationValidator.validateOverIpc) fails the deployment on
# REJECTED, on a timeout and when the event cannot be sent, and skips components that did not
# subscribe (ConfigStoreIPCEventStreamAgent.validateConfiguration returns false).
ACCEPTED = "ACCEPTED"
REJECTED = "REJECTED"
NOT_SUBSCRIBED = "NOT_SUBSCRIBED"
TIMED_OUT = "TIMED_OUT"
FAILED = "FAILED"


@dataclasses.dataclass(frozen=True)
class PublishRequest:
    """A PublishToIoTCore that the component's ``accessControl`` allowed."""

    component: str
    topic: str
    payload: bytes
    qos: str  # "0" or "1" (awsiot QOS.AT_MOST_ONCE / AT_LEAST_ONCE)


class IpcError(Exception):
    """A modeled error (``aws.greengrass#...Error``) sent as APPLICATION_ERROR."""

    def __init__(self, model_type: str, message: str) -> None:
        super().__init__(message)
        self.model_type = model_type
        self.message = message


class _BadRequest(Exception):
    """The request did not deserialize: the nucleus answers a non-modeled internal error."""


def _model_operations() -> frozenset[str]:
    """The operation names of the GreengrassCoreIPC model, from awsiot's generated client."""
    try:
        import awsiot.eventstreamrpc as rpc
        from awsiot.greengrasscoreipc import model
    except ImportError:  # pragma: no cover - awsiotsdk is a dev requirement
        return frozenset(SERVED_OPERATIONS)
    names = set()
    for value in vars(model).values():
        if isinstance(value, type) and issubclass(value, rpc.ClientOperation):
            model_name: Any = getattr(value, "_model_name")  # noqa: B009 - untyped awsiot
            names.add(str(model_name()))
    return frozenset(names)


@dataclasses.dataclass(eq=False)
class _Stream:
    connection: _Connection
    stream_id: int
    operation: str
    component: str = ""
    key_path: tuple[str, ...] = ()
    closed: bool = False
    answered: bool = False  # the initial request was handled


class _Connection:
    def __init__(self, sock: socket.socket, number: int) -> None:
        self.sock = sock
        self.number = number
        self.component: Optional[str] = None
        self.handshake_done = False
        self.connect_received = False
        self.latest_stream_id = 0
        self.streams: dict[int, _Stream] = {}
        self.closed = False
        self._write_lock = threading.Lock()

    def send(
        self,
        message_type: MessageType,
        *,
        flags: int = 0,
        stream_id: int = 0,
        headers: tuple[Header, ...] = (),
        payload: bytes = b"",
    ) -> bool:
        data = encode_message(rpc_headers(message_type, flags, stream_id, *headers), payload)
        with self._write_lock:
            if self.closed:
                return False
            try:
                self.sock.sendall(data)
            except OSError as err:
                LOG.info("connection %d: send failed: %s", self.number, err)
                return False
        return True

    def close_after_peer(self, grace: float = 2.0) -> None:
        """Close once the client has closed its end, or after ``grace`` seconds.

        After a refused CONNECT_ACK or a PROTOCOL_ERROR the client closes the connection itself
        (awsiot eventstreamrpc ``_ProtocolConnectionHandler.on_protocol_message``). Closing at
        once can make the CRT client see the hang-up before it reads the answer.
        """
        try:
            self.sock.settimeout(grace)
            while self.sock.recv(4096):
                pass
        except OSError:
            pass
        self.close()

    def close(self) -> None:
        with self._write_lock:
            if self.closed:
                return
            self.closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def _json_headers(model_type: str) -> tuple[Header, ...]:
    return (
        Header.string(CONTENT_TYPE_HEADER, CONTENT_TYPE_JSON),
        Header.string(SERVICE_MODEL_TYPE_HEADER, model_type),
    )


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def _find_node(config: Any, key_path: list[str]) -> tuple[bool, Any]:
    node = config
    for key in key_path:
        if not isinstance(node, dict) or key not in node:
            return False, None
        node = node[key]
    return True, node


class _Waiter:
    def __init__(self) -> None:
        self.event = threading.Event()
        self.report: Optional[dict[str, Any]] = None


class IpcServer:
    """A Greengrass nucleus's IPC service for simulated components (see the package docstring).

    ``configuration(component)`` returns the component's current configuration (a dict that
    includes ``accessControl``); it raises ``KeyError`` for a component the device does not
    run. ``on_publish`` is called for each PublishToIoTCore that ``accessControl`` allowed;
    an exception from it becomes a ``ServiceError`` for the component, as a failed MQTT publish
    does in the nucleus (``MqttProxyIPCAgent``).
    """

    def __init__(
        self,
        socket_path: Path,
        configuration: Callable[[str], dict[str, Any]],
        on_publish: Callable[[PublishRequest], None],
    ) -> None:
        socket_path = Path(socket_path)
        if len(os.fsencode(str(socket_path))) > MAX_SOCKET_PATH_BYTES:
            raise ValueError(
                f"IPC socket path is {len(os.fsencode(str(socket_path)))} bytes; a Unix socket "
                f"path must be at most {MAX_SOCKET_PATH_BYTES}: {socket_path}"
            )
        self._socket_path = socket_path
        self._configuration = configuration
        self._on_publish = on_publish
        self._lock = threading.Lock()
        self._tokens: dict[str, str] = {}
        self._states: dict[str, str] = {}
        self._connections: set[_Connection] = set()
        self._threads: list[threading.Thread] = []
        self._config_subscriptions: list[_Stream] = []
        self._validators: dict[str, _Stream] = {}
        self._pending_reports: dict[tuple[str, str], _Waiter] = {}
        self._listener: Optional[socket.socket] = None
        self._accept_thread: Optional[threading.Thread] = None
        self._stopping = threading.Event()
        self._connection_count = 0
        self._model_operations = _model_operations()

    # -- public API -------------------------------------------------------------------------

    @property
    def socket_path(self) -> Path:
        return self._socket_path

    def register(self, component_name: str) -> str:
        """A new auth token (the component's ``SVCUID``) for ``component_name``.

        Like ``AuthenticationHandler.registerAuthenticationToken``: 16 random characters,
        upper case, unique among the registered tokens.
        """
        if not component_name:
            raise ValueError("component name must not be empty")
        with self._lock:
            while True:
                token = secrets.token_hex(8).upper()
                if token not in self._tokens:
                    self._tokens[token] = component_name
                    return token

    def reported_state(self, component_name: str) -> Optional[str]:
        """The last state the component reported with UpdateState (RUNNING, ERRORED), or None."""
        with self._lock:
            return self._states.get(component_name)

    def start(self) -> None:
        """Listen on the socket (replacing a stale socket file) and serve in the background."""
        if self._listener is not None:
            raise RuntimeError("IPC server already started")
        path = self._socket_path
        if path.exists() or path.is_symlink():
            if not stat.S_ISSOCK(path.lstat().st_mode):
                raise FileExistsError(f"IPC socket path exists and is not a socket: {path}")
            path.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        # Permissions.setIpcSocketPermission: readable and writable by everyone (components run
        # as another user than the nucleus), not executable.
        path.chmod(0o666)
        listener.listen(16)
        listener.settimeout(0.2)
        self._listener = listener
        self._stopping.clear()
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name="ipc-accept", daemon=True
        )
        self._accept_thread.start()
        LOG.info("IPC server listening on %s", path)

    def stop(self) -> None:
        """Stop listening, close every connection and wake pending validations."""
        self._stopping.set()
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=5)
            self._accept_thread = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            connections = list(self._connections)
            waiters = list(self._pending_reports.values())
        for connection in connections:
            connection.close()
        for waiter in waiters:
            waiter.event.set()
        for thread in list(self._threads):
            thread.join(timeout=5)
        self._threads.clear()
        with contextlib.suppress(FileNotFoundError):
            self._socket_path.unlink()

    def __enter__(self) -> IpcServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def push_configuration_update(self, component: str, key_path: list[str]) -> int:
        """Tell the component's SubscribeToConfigurationUpdate streams that ``key_path`` changed.

        A stream hears a change at or below the node it subscribed to (the nucleus subscribes a
        watcher to that Topics / Topic; ``ConfigStoreIPCEventStreamAgent.handleConfigNodeUpdate``
        sends the changed node's path relative to ``configuration``). Returns how many streams
        were told.
        """
        changed = tuple(key_path)
        with self._lock:
            targets = [
                s
                for s in self._config_subscriptions
                if s.component == component and changed[: len(s.key_path)] == s.key_path
            ]
        event = {"configurationUpdateEvent": {"componentName": component, "keyPath": list(changed)}}
        told = 0
        for stream in targets:
            if self._send_event(stream, NS + "ConfigurationUpdateEvents", event):
                told += 1
        return told

    def validate_configuration(
        self,
        component: str,
        new_config: dict[str, Any],
        timeout: float,
        deployment_id: Optional[str] = None,
    ) -> tuple[str, str]:
        """Ask the component to validate ``new_config``; ``(status, message)``.

        The nucleus's round trip (``ConfigStoreIPCEventStreamAgent.validateConfiguration``, then
        ``SendConfigurationValidityReport``). Status: ``ACCEPTED`` / ``REJECTED`` as reported,
        ``NOT_SUBSCRIBED`` (the component has no validation stream: the nucleus does not wait
        for it), ``TIMED_OUT`` (no report within ``timeout`` seconds) or ``FAILED`` (the event
        could not be sent).
        """
        deployment_id = deployment_id or str(uuid.uuid4())
        key = (component, deployment_id)
        waiter = _Waiter()
        with self._lock:
            stream = self._validators.get(component)
            if stream is None:
                return NOT_SUBSCRIBED, f"{component} has not subscribed to validation requests"
            self._pending_reports[key] = waiter
        event = {
            "validateConfigurationUpdateEvent": {
                "configuration": new_config,
                "deploymentId": deployment_id,
            }
        }
        if not self._send_event(stream, NS + "ValidateConfigurationUpdateEvents", event):
            with self._lock:
                self._pending_reports.pop(key, None)
            return FAILED, f"could not send the validation request to {component}"
        answered = waiter.event.wait(timeout)
        with self._lock:
            self._pending_reports.pop(key, None)
        report = waiter.report
        if not answered or report is None:
            return TIMED_OUT, f"{component} sent no validity report within {timeout} s"
        return str(report.get("status")), str(report.get("message") or "")

    # -- connections ------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._stopping.is_set():
            try:
                sock, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            sock.settimeout(None)
            with self._lock:
                self._connection_count += 1
                connection = _Connection(sock, self._connection_count)
                self._connections.add(connection)
                thread = threading.Thread(
                    target=self._serve,
                    args=(connection,),
                    name=f"ipc-connection-{connection.number}",
                    daemon=True,
                )
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(thread)
            if self._stopping.is_set():
                connection.close()
            thread.start()

    def _serve(self, connection: _Connection) -> None:
        try:
            while not connection.closed:
                try:
                    message = read_message(connection.sock)
                except FrameError as err:
                    # event_stream_channel_handler.c: a decoding error shuts the channel down.
                    LOG.warning("connection %d: invalid frame, closing: %s", connection.number, err)
                    break
                except OSError:
                    break
                if message is None:
                    break
                self._route(connection, message)
        except Exception:  # a bug here must not take the server down; drop this connection
            LOG.exception("connection %d: unexpected error", connection.number)
        finally:
            connection.close()
            self._forget(connection)

    def _forget(self, connection: _Connection) -> None:
        """The connection is gone: its streams close (onContinuationClosed for each)."""
        with self._lock:
            self._connections.discard(connection)
            streams = list(connection.streams.values())
            connection.streams.clear()
        for stream in streams:
            self._stream_closed(stream)

    def _protocol_error(self, connection: _Connection, text: str) -> None:
        """event_stream_rpc_server.c s_send_connection_level_error: answer, then close."""
        LOG.warning("connection %d: protocol error: %s", connection.number, text)
        payload = _dumps({"message": text})
        connection.send(
            MessageType.PROTOCOL_ERROR,
            headers=(Header.string(CONTENT_TYPE_HEADER, CONTENT_TYPE_JSON),),
            payload=payload,
        )
        connection.close_after_peer()

    def _route(self, connection: _Connection, message: Message) -> None:
        # s_route_message_by_type and aws_event_stream_rpc_extract_message_metadata.
        message_type = message.int_header(MESSAGE_TYPE_HEADER)
        flags = message.int_header(MESSAGE_FLAGS_HEADER)
        stream_id = message.int_header(STREAM_ID_HEADER)
        if message_type is None or flags is None or stream_id is None:
            self._protocol_error(connection, "invalid protocol message")
            return
        if not connection.handshake_done and message_type != MessageType.CONNECT:
            self._protocol_error(connection, "Connect message not received before other messages")
            return
        if stream_id != 0:
            self._route_stream_message(connection, message, message_type, flags, stream_id)
            return
        if message_type <= MessageType.APPLICATION_ERROR or message_type >= MESSAGE_TYPE_COUNT:
            self._protocol_error(connection, "invalid message type for a zero stream id")
            return
        if message_type == MessageType.CONNECT:
            if connection.connect_received:
                self._protocol_error(connection, "only one connect message is allowed")
                return
            connection.connect_received = True
            self._on_connect(connection, message)
        elif message_type == MessageType.PING:
            # ServiceOperationMappingContinuationHandler.onProtocolMessage: echo the
            # non-":" headers and the payload as PING_RESPONSE.
            extra = tuple(h for h in message.headers if not h.name.startswith(":"))
            connection.send(MessageType.PING_RESPONSE, headers=extra, payload=message.payload)
        elif message_type != MessageType.PING_RESPONSE:
            connection.send(
                MessageType.INTERNAL_ERROR,
                headers=(Header.string(CONTENT_TYPE_HEADER, CONTENT_TYPE_JSON),),
                payload=_dumps({"error": "Unrecognized Message Type"}),
            )
            connection.close_after_peer()

    def _on_connect(self, connection: _Connection, message: Message) -> None:
        """Authenticate the CONNECT and answer CONNECT_ACK (accepted or not).

        ServiceOperationMappingContinuationHandler.onConnectRequest: the ``:version`` must
        match; IPCEventStreamService.ipcAuthenticationHandler reads ``authToken`` from the JSON
        payload and AuthenticationHandler.doAuthentication maps it to a component. Any failure
        is answered with a CONNECT_ACK without CONNECTION_ACCEPTED, then the connection closes.
        """
        component: Optional[str] = None
        version = message.str_header(VERSION_HEADER)
        if version != RPC_VERSION:
            LOG.warning("connection %d: client version %s, expected %s", connection.number,
                        version, RPC_VERSION)  # fmt: skip
        else:
            try:
                body = json.loads(message.payload or b"{}")
                token = body.get("authToken") if isinstance(body, dict) else None
            except (json.JSONDecodeError, UnicodeDecodeError):
                LOG.warning("connection %d: invalid auth token in connect message",
                            connection.number)  # fmt: skip
                token = None
            if token:
                with self._lock:
                    component = self._tokens.get(str(token))
                if component is None:
                    LOG.warning("connection %d: unrecognized client connecting to GGC over IPC",
                                connection.number)  # fmt: skip
            else:
                LOG.warning("connection %d: empty auth token", connection.number)
        flags = FLAG_CONNECTION_ACCEPTED if component else 0
        connection.component = component
        connection.send(MessageType.CONNECT_ACK, flags=flags)
        if component is None:
            connection.close_after_peer()
            return
        connection.handshake_done = True
        LOG.info("connection %d: authenticated %s", connection.number, component)

    def _route_stream_message(
        self,
        connection: _Connection,
        message: Message,
        message_type: int,
        flags: int,
        stream_id: int,
    ) -> None:
        if message_type > MessageType.APPLICATION_ERROR:
            self._protocol_error(connection, "only application messages can use a stream id")
            return
        if stream_id < 0:
            self._protocol_error(connection, "stream id out of range")
            return
        terminate = bool(flags & FLAG_TERMINATE_STREAM)
        if stream_id <= connection.latest_stream_id:
            stream = connection.streams.get(stream_id)
            if stream is None:
                if not terminate:
                    self._protocol_error(connection, "stream id has no open stream")
                return
        else:
            if stream_id != connection.latest_stream_id + 1:
                self._protocol_error(connection, "new stream id is not the next one")
                return
            operation = message.str_header(OPERATION_HEADER)
            if not operation:
                self._protocol_error(connection, "new stream without an operation name")
                return
            connection.latest_stream_id = stream_id
            stream = _Stream(connection, stream_id, operation, component=connection.component or "")
            connection.streams[stream_id] = stream
        self._on_stream_message(stream, message, terminate)
        if terminate:
            connection.streams.pop(stream_id, None)
            self._stream_closed(stream)

    def _stream_closed(self, stream: _Stream) -> None:
        """OperationContinuationHandler.onContinuationClosed -> the agent's onStreamClosed."""
        if stream.closed:
            return
        stream.closed = True
        with self._lock:
            if stream in self._config_subscriptions:
                self._config_subscriptions.remove(stream)
            if stream.operation == SUBSCRIBE_TO_VALIDATE_CONFIGURATION_UPDATES and stream.answered:
                # ValidateConfigurationUpdatesOperationHandler.onStreamClosed removes the
                # component's validator, whichever stream registered it.
                self._validators.pop(stream.component, None)

    # -- operations -------------------------------------------------------------------------

    def _send_event(self, stream: _Stream, model_type: str, body: dict[str, Any]) -> bool:
        if stream.closed:
            return False
        return stream.connection.send(
            MessageType.APPLICATION_MESSAGE,
            stream_id=stream.stream_id,
            headers=_json_headers(model_type),
            payload=_dumps(body),
        )

    def _finish(self, stream: _Stream) -> None:
        """This side ends the stream (the TERMINATE_STREAM flag went with the last message)."""
        stream.connection.streams.pop(stream.stream_id, None)
        self._stream_closed(stream)

    def _on_stream_message(self, stream: _Stream, message: Message, terminate: bool) -> None:
        connection = stream.connection
        if stream.answered:
            # OperationContinuationHandler.onContinuationMessage: an empty terminate is a close;
            # none of these operations takes stream events, so anything else fails.
            if terminate and not message.payload:
                return
            self._send_internal_error(stream)
            return
        if terminate:
            # "Not invoking ... operation for client request received with a terminate flag".
            return
        stream.answered = True
        operation = stream.operation
        if operation not in SERVED_OPERATIONS:
            if operation in self._model_operations:
                # DefaultOperationHandler: a model operation without an agent.
                self._send_error(
                    stream,
                    IpcError(
                        SERVICE_ERROR, f"Operation {operation} is not supported by Greengrass"
                    ),
                )
            else:
                # ServiceOperationMappingContinuationHandler.onIncomingStream: no handler.
                connection.send(
                    MessageType.APPLICATION_ERROR,
                    flags=FLAG_TERMINATE_STREAM,
                    stream_id=stream.stream_id,
                    headers=(Header.string(CONTENT_TYPE_HEADER, CONTENT_TYPE_JSON),),
                    payload=_dumps(
                        {
                            "error": "Unsupported Operation",
                            "message": f"{operation} is an unsupported operation.",
                        }
                    ),
                )
                self._finish(stream)
            return
        try:
            request = json.loads(message.payload or b"{}")
            if not isinstance(request, dict):
                raise _BadRequest("request is not a JSON object")
            response_type, response = self._handle(stream, operation, request)
        except IpcError as err:
            self._send_error(stream, err)
            return
        except (_BadRequest, json.JSONDecodeError, UnicodeDecodeError) as err:
            LOG.warning("%s: cannot read the request: %s", operation, err)
            self._send_internal_error(stream)
            return
        except (
            Exception
        ) as err:  # ExceptionUtil.translateExceptions: RuntimeException -> ServiceError
            LOG.exception("%s failed", operation)
            self._send_error(stream, IpcError(SERVICE_ERROR, str(err)))
            return
        streaming = operation in STREAMING_OPERATIONS
        connection.send(
            MessageType.APPLICATION_MESSAGE,
            flags=0 if streaming else FLAG_TERMINATE_STREAM,
            stream_id=stream.stream_id,
            headers=_json_headers(response_type),
            payload=_dumps(response),
        )
        if not streaming:
            self._finish(stream)
            return
        # afterHandleRequest: events flow only once the response is out.
        with self._lock:
            if stream.closed:
                return
            if operation == SUBSCRIBE_TO_CONFIGURATION_UPDATE:
                self._config_subscriptions.append(stream)
            else:
                self._validators.setdefault(stream.component, stream)  # computeIfAbsent

    def _send_error(self, stream: _Stream, err: IpcError) -> None:
        """OperationContinuationHandler.sendModeledError: APPLICATION_ERROR + TERMINATE_STREAM."""
        LOG.info("%s from %s: %s %s", stream.operation, stream.component, err.model_type,
                 err.message)  # fmt: skip
        stream.connection.send(
            MessageType.APPLICATION_ERROR,
            flags=FLAG_TERMINATE_STREAM,
            stream_id=stream.stream_id,
            headers=_json_headers(err.model_type),
            payload=_dumps({"message": err.message}),
        )
        self._finish(stream)

    def _send_internal_error(self, stream: _Stream) -> None:
        """handleAndSendError for a non-modeled exception: text/plain "InternalServerError"."""
        stream.connection.send(
            MessageType.APPLICATION_ERROR,
            flags=FLAG_TERMINATE_STREAM,
            stream_id=stream.stream_id,
            headers=(Header.string(CONTENT_TYPE_HEADER, CONTENT_TYPE_TEXT),),
            payload=b"InternalServerError",
        )
        self._finish(stream)

    def _component_config(self, component: str) -> dict[str, Any]:
        try:
            config = self._configuration(component)
        except KeyError:
            raise IpcError(RESOURCE_NOT_FOUND_ERROR, "Key not found") from None
        if not isinstance(config, dict):
            raise IpcError(RESOURCE_NOT_FOUND_ERROR, "Key not found")
        return config

    def _handle(
        self, stream: _Stream, operation: str, request: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        component = stream.component
        if operation == GET_CONFIGURATION:
            return self._get_configuration(component, request)
        if operation == SUBSCRIBE_TO_CONFIGURATION_UPDATE:
            return self._subscribe_to_configuration_update(stream, request)
        if operation == SUBSCRIBE_TO_VALIDATE_CONFIGURATION_UPDATES:
            return NS + "SubscribeToValidateConfigurationUpdatesResponse", {}
        if operation == SEND_CONFIGURATION_VALIDITY_REPORT:
            return self._send_configuration_validity_report(component, request)
        if operation == PUBLISH_TO_IOT_CORE:
            return self._publish_to_iot_core(component, request)
        return self._update_state(component, request)

    def _key_path(self, request: dict[str, Any]) -> list[str]:
        key_path = request.get("keyPath") or []
        if not isinstance(key_path, list) or not all(isinstance(k, str) for k in key_path):
            raise _BadRequest("keyPath must be a list of strings")
        return key_path

    def _get_configuration(
        self, component: str, request: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        """ConfigStoreIPCEventStreamAgent.GetConfigurationOperationHandler.handleRequest.

        ``componentName`` defaults to the caller; an empty key path returns the whole
        configuration; a leaf is returned as ``{leaf name: value}``.
        """
        name = request.get("componentName") or component
        config = self._component_config(str(name))
        key_path = self._key_path(request)
        found, node = _find_node(config, key_path)
        if not found:
            raise IpcError(RESOURCE_NOT_FOUND_ERROR, "Key not found")
        value = node if isinstance(node, dict) or not key_path else {key_path[-1]: node}
        return NS + "GetConfigurationResponse", {"componentName": name, "value": value}

    def _subscribe_to_configuration_update(
        self, stream: _Stream, request: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        """ConfigurationUpdateOperationHandler.handleRequest: the node must exist."""
        name = str(request.get("componentName") or stream.component)
        config = self._component_config(name)
        key_path = self._key_path(request)
        found, _ = _find_node(config, key_path)
        if not found:
            raise IpcError(RESOURCE_NOT_FOUND_ERROR, "Key not found")
        stream.component = name
        stream.key_path = tuple(key_path)
        return NS + "SubscribeToConfigurationUpdateResponse", {}

    def _send_configuration_validity_report(
        self, component: str, request: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        """SendConfigurationValidityReportOperationHandler.handleRequest."""
        report = request.get("configurationValidityReport") or {}
        if not isinstance(report, dict):
            raise _BadRequest("configurationValidityReport must be an object")
        deployment_id = report.get("deploymentId")
        if deployment_id is None:
            raise IpcError(
                INVALID_ARGUMENTS_ERROR,
                "Cannot accept configuration validity report, the deployment ID provided was null",
            )
        with self._lock:
            waiter = self._pending_reports.pop((component, str(deployment_id)), None)
        if waiter is None:
            raise IpcError(
                INVALID_ARGUMENTS_ERROR, "Validation request either timed out or was never made"
            )
        waiter.report = report
        waiter.event.set()
        return NS + "SendConfigurationValidityReportResponse", {}

    def _publish_to_iot_core(
        self, component: str, request: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        """MqttProxyIPCAgent.PublishToIoTCoreOperationHandler.handleRequest, in its order:
        topic required, authorization, payload required, QoS required and "0" or "1"."""
        topic = request.get("topicName")
        if topic is None:
            raise IpcError(INVALID_ARGUMENTS_ERROR, "Topic is required")
        topic = str(topic)
        try:
            access_control = self._component_config(component).get("accessControl")
            policies = authorization.parse_access_control(access_control)
        except (IpcError, authorization.PolicyError) as err:
            LOG.warning("%s: no IPC policy could be loaded: %s", component, err)
            policies = []
        decision = authorization.authorize(
            policies,
            destination=authorization.MQTT_PROXY_SERVICE,
            operation=PUBLISH_TO_IOT_CORE,
            resource=topic,
            mqtt=True,
        )
        if not decision.allowed:
            LOG.info("Not Authorized: principal %s: %s", component, decision.reason)
            raise IpcError(UNAUTHORIZED_ERROR, "Not Authorized")
        encoded = request.get("payload")
        if encoded is None:
            raise IpcError(INVALID_ARGUMENTS_ERROR, "Payload is required")
        try:
            payload = base64.b64decode(str(encoded), validate=True)
        except (binascii.Error, ValueError) as err:
            raise _BadRequest(f"payload is not base64: {err}") from None
        qos = request.get("qos")
        if qos is None:
            raise IpcError(INVALID_ARGUMENTS_ERROR, "QoS is required")
        if qos not in ("0", "1"):
            raise IpcError(INVALID_ARGUMENTS_ERROR, f"Invalid QoS value: {qos}")
        try:
            self._on_publish(PublishRequest(component, topic, payload, str(qos)))
        except Exception as err:
            raise IpcError(SERVICE_ERROR, f"Publish to topic {topic} failed: {err}") from err
        return NS + "PublishToIoTCoreResponse", {}

    def _update_state(self, component: str, request: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """LifecycleIPCEventStreamAgent.UpdateStateOperationHandler: record the state."""
        state = request.get("state")
        if state not in ("RUNNING", "ERRORED"):
            raise _BadRequest(f"state must be RUNNING or ERRORED, not {state!r}")
        with self._lock:
            self._states[component] = str(state)
        return NS + "UpdateStateResponse", {}
