"""The simulated core device's IPC: the nucleus's event-stream RPC server and its authorization.

Usage::

    from device_sim.ipc import IpcServer, PublishRequest

    server = IpcServer(socket_path, configuration=lambda name: configs[name],
                       on_publish=messages.append)
    svcuid = server.register("com.example.Component")  # the component's SVCUID
    server.start()  # background threads
    # run the component with AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT=socket_path
    # and SVCUID=svcuid (IPCEventStreamService.NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT;
    # awsiot.greengrasscoreipc.connect reads both)
    server.push_configuration_update("com.example.Component", ["TopK"])
    status, message = server.validate_configuration("com.example.Component", new, timeout=5)
    server.stop()  # closes every connection

Extensions of the agreed API: ``validate_configuration`` takes an optional ``deployment_id``
and its status is one of ``ACCEPTED``, ``REJECTED`` (the component's report),
``NOT_SUBSCRIBED``, ``TIMED_OUT``, ``FAILED`` (see :meth:`IpcServer.validate_configuration`);
``push_configuration_update`` returns how many streams it told; ``reported_state(component)``
gives the last UpdateState; the server is a context manager.

Operations served, each following the nucleus agent named in its docstring: GetConfiguration,
SubscribeToConfigurationUpdate, SubscribeToValidateConfigurationUpdates,
SendConfigurationValidityReport, PublishToIoTCore (authorized against the component's
``accessControl`` for ``aws.greengrass.ipc.mqttproxy``, :mod:`device_sim.ipc.authorization`,
then handed to ``on_publish``) and UpdateState. Another operation of the GreengrassCoreIPC model
gets the ``ServiceError`` the nucleus's ``DefaultOperationHandler`` sends for an operation
without an agent ("Operation X is not supported by Greengrass"): the real nucleus serves many of
them, the simulator does not. An operation outside the model gets the nucleus's untyped
"Unsupported Operation" error.

How close to the real thing:

- Same wire protocol: the component's unmodified ``GreengrassCoreIPCClientV2`` (awsiotsdk over
  awscrt's C event-stream client) connects to it over a Unix domain socket. Frames, header types
  and header order are aws-c-event-stream's; JSON bodies are compact as the nucleus's Gson writes
  them, though keys may come in another order.
  awscrt has no event-stream server in Python (``awscrt.eventstream.rpc`` holds only
  ``ClientConnection``), so framing (:mod:`device_sim.ipc.eventstream`) and the RPC rules are
  written here from aws-c-event-stream's format and ``event_stream_rpc_server.c``: CONNECT first,
  CONNECT_ACK with or without CONNECTION_ACCEPTED, stream ids that grow by one, an operation name
  on each new stream, TERMINATE_STREAM, PING echoed, PROTOCOL_ERROR and close for a broken rule,
  and close without answer on a bad prelude/message CRC or size.
- Same answers as the nucleus's agents, including the modeled errors the client raises
  (``UnauthorizedError("Not Authorized")``, ``ResourceNotFoundError("Key not found")``,
  ``InvalidArgumentsError``) and text/plain ``InternalServerError`` for unreadable requests.
- Authentication as ``IPCEventStreamService``: ``{"authToken": SVCUID}`` must be a registered
  token and ``:version`` must be 0.1.0, else a CONNECT_ACK without the accepted flag and a close
  (the client raises ``AccessDeniedError``).
- Not modeled: the nucleus's threads and timing (one thread per connection here, handlers run
  in order on it), the socket file's permissions, TLS (the nucleus uses none on the socket
  either), MQTT spooling: ``on_publish`` is called before the response, and an exception from it
  is a ``ServiceError``, whereas the nucleus answers once the message is queued for the cloud.
"""

from device_sim.ipc.server import (
    ACCEPTED,
    FAILED,
    NOT_SUBSCRIBED,
    REJECTED,
    TIMED_OUT,
    IpcServer,
    PublishRequest,
)

__all__ = [
    "ACCEPTED",
    "FAILED",
    "NOT_SUBSCRIBED",
    "REJECTED",
    "TIMED_OUT",
    "IpcServer",
    "PublishRequest",
]
