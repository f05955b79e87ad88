"""Where messages come from: an MQTT subscription, or the simulated device's publish record.

Both deliver :class:`Message` objects through :meth:`get`; everything after that (rendering,
counting, stopping) is shared (:mod:`edge_follow.follow`). The two MQTT modes differ only in the
connection they are given (:mod:`edge_follow.connections`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import queue
import sys
import time
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, Callable, Optional, Protocol

from edge_follow.render import topic_matches

LOG = logging.getLogger(__name__)
POLL_SECONDS = 0.2


class FollowError(Exception):
    """Following cannot start or go on; the message is the one line the user sees."""


@dataclasses.dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    received: Optional[str] = None  # when it was published, where the source says


class Source(Protocol):
    description: str

    def start(self) -> None: ...

    def get(self, timeout: float) -> Optional[Message]: ...

    def close(self) -> None: ...


def _note(text: str) -> None:
    """Status for the person watching (stderr), so stdout holds only the messages."""
    print(text, file=sys.stderr, flush=True)


def crt_reason(err: BaseException) -> str:
    """An awscrt error as ``NAME: message`` (``AwsCrtError`` carries both)."""
    name, message = getattr(err, "name", ""), getattr(err, "message", "")
    if name:
        return f"{name}: {message}" if message else str(name)
    return str(err) or type(err).__name__


class MqttSource:
    """Subscribes (QoS 1) to ``topic_filter`` on the connection ``connect`` builds.

    ``connect(on_interrupted, on_resumed)`` returns an unconnected ``awscrt.mqtt.Connection``.
    The CRT calls back on its own threads; messages cross to the caller through a queue.
    """

    def __init__(
        self,
        connect: Callable[[Callable[..., None], Callable[..., None]], Any],
        topic_filter: str,
        description: str,
        timeout: float,
    ) -> None:
        self._build = connect
        self.topic_filter = topic_filter
        self.description = description
        self._timeout = timeout
        self._queue: queue.Queue[Message] = queue.Queue()
        self._connection: Any = None

    def _on_message(self, topic: str, payload: bytes, **_: Any) -> None:
        self._queue.put(Message(topic, bytes(payload)))

    def _on_interrupted(self, connection: Any, error: BaseException, **_: Any) -> None:
        _note(f"connection to {self.description} lost ({crt_reason(error)}); reconnecting")

    def _on_resumed(
        self, connection: Any, return_code: Any, session_present: bool, **_: Any
    ) -> None:
        _note(f"reconnected to {self.description}")
        if not session_present:  # a clean session forgot the subscription
            connection.resubscribe_existing_topics()

    def start(self) -> None:
        from awscrt.mqtt import QoS

        self._connection = self._build(self._on_interrupted, self._on_resumed)
        try:
            self._connection.connect().result(self._timeout)
        except FutureTimeout:
            raise FollowError(
                f"cannot connect to {self.description}: no answer within {self._timeout:g} s"
            ) from None
        except Exception as err:  # awscrt raises AwsCrtError; a bad host name raises others
            raise FollowError(f"cannot connect to {self.description}: {crt_reason(err)}") from None
        future, _ = self._connection.subscribe(
            self.topic_filter, QoS.AT_LEAST_ONCE, self._on_message
        )
        try:
            future.result(self._timeout)
        except FutureTimeout:
            raise FollowError(
                f"no answer to the subscription to {self.topic_filter} on {self.description} "
                f"within {self._timeout:g} s"
            ) from None
        except Exception as err:  # SubscribeError: the server refused (not authorized?)
            raise FollowError(
                f"subscription to {self.topic_filter} refused by {self.description} "
                f"({crt_reason(err)}): is it allowed to subscribe and receive?"
            ) from None
        _note(f"following {self.topic_filter} on {self.description} (Ctrl-C to stop)")

    def get(self, timeout: float) -> Optional[Message]:
        try:
            return self._queue.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None

    def close(self) -> None:
        if self._connection is None:
            return
        try:
            self._connection.disconnect().result(5)
        except Exception as err:  # already gone: nothing left to close
            LOG.debug("disconnect: %s", err)
        self._connection = None


class LocalSource:
    """Tails ``ROOT/mqtt/published.jsonl``, which the simulated device appends one JSON line to
    per publish: ``{"topic", "payload" (the decoded JSON object), "qos", "client_id", "time"}``.

    Like a new subscriber it starts at the file's current end (``from_start`` replays it all);
    a file that does not exist yet is waited for and read from its start. A file replaced by
    another (a new inode: a device_sim run recreates its root) is finished, then the new one is
    read from its start; a file truncated in place is read again from its start. (A truncation
    followed by more writes than it removed, between two polls, looks like growth.)
    """

    def __init__(self, root: Path, topic_filter: str, *, from_start: bool = False) -> None:
        self.path = root / "mqtt" / "published.jsonl"
        self.topic_filter = topic_filter
        self.description = str(self.path)
        self._from_start = from_start
        self._handle: Any = None
        self._partial = b""
        self._pending: list[Message] = []

    def start(self) -> None:
        if self.path.is_file():
            self._open(at_end=not self._from_start)
            _note(f"following {self.topic_filter} in {self.path} (Ctrl-C to stop)")
        else:
            _note(f"waiting for {self.path} (Ctrl-C to stop)")

    def _open(self, *, at_end: bool) -> None:
        try:
            self._handle = open(self.path, "rb")  # noqa: SIM115 - held open while tailing
        except OSError as err:
            raise FollowError(f"cannot read {self.path}: {err.strerror or err}") from None
        if at_end:
            self._handle.seek(0, 2)
        self._partial = b""

    def _read_lines(self) -> list[bytes]:
        if self._handle is None:
            if not self.path.is_file():
                return []
            self._open(at_end=False)
            _note(f"following {self.topic_filter} in {self.path}")
        try:
            on_disk = os.stat(self.path)
        except OSError:
            on_disk = None
        held = os.fstat(self._handle.fileno())
        if on_disk is None or (on_disk.st_dev, on_disk.st_ino) != (held.st_dev, held.st_ino):
            # Removed or replaced (a device_sim run recreates its root): finish the file held
            # open, then read the new one, when there is one, from its start.
            lines = self._split(self._handle.read())
            if self._partial.strip():
                lines.append(self._partial)
            self._handle.close()
            self._handle = None
            self._partial = b""
            if on_disk is not None:
                _note(f"{self.path} was replaced; reading the new one from its start")
                return lines + self._read_lines()
            return lines
        if on_disk.st_size < self._handle.tell():  # truncated in place: start over
            _note(f"{self.path} was truncated; reading it from its start")
            self._handle.seek(0)
            self._partial = b""
        return self._split(self._handle.read())

    def _split(self, data: bytes) -> list[bytes]:
        """Complete lines of what was read; an unfinished last line waits for the rest."""
        *lines, self._partial = (self._partial + data).split(b"\n")
        return [line for line in lines if line.strip()]

    def _to_message(self, line: bytes) -> Optional[Message]:
        try:
            record = json.loads(line.decode("utf-8"))
        except ValueError:  # UnicodeDecodeError is a ValueError too
            return Message("?", line)  # shown as malformed
        if not isinstance(record, dict) or not isinstance(record.get("topic"), str):
            return Message("?", line)
        if not topic_matches(self.topic_filter, record["topic"]):
            return None
        payload = record.get("payload")
        # The record holds the decoded JSON object; a payload that was not JSON is kept as a
        # string, which is shown as malformed like any other.
        text = payload if isinstance(payload, str) else json.dumps(payload)
        raw = text.encode("utf-8")
        received = record.get("time")
        return Message(record["topic"], raw, str(received) if received is not None else None)

    def get(self, timeout: float) -> Optional[Message]:
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            if not self._pending:
                self._pending = [
                    m for m in map(self._to_message, self._read_lines()) if m is not None
                ]
            if self._pending:
                return self._pending.pop(0)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            time.sleep(min(POLL_SECONDS, remaining))

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
