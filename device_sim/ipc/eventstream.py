"""The event-stream wire format (``application/vnd.amazon.eventstream``) and its RPC headers.

A message, as aws-c-event-stream encodes and decodes it (``include/aws/event-stream/
event_stream.h``, ``source/event_stream.c``, ``source/event_stream_channel_handler.c``)::

    [total length: u32 BE][headers length: u32 BE][prelude CRC32: u32 BE]
    [headers ...][payload ...][message CRC32: u32 BE]

The prelude CRC covers the first 8 bytes; the message CRC covers everything before it
(prelude and prelude CRC included). CRC32 is the IEEE/"gzip" polynomial (``zlib.crc32``).
A message is at most 16 MiB (``AWS_EVENT_STREAM_MAX_MESSAGE_SIZE``), its headers at most
128 KiB (``AWS_EVENT_STREAM_MAX_HEADERS_SIZE``), a header name at most 127 bytes.

A header is ``[name length: u8][name: utf-8][type: u8][value]``; the value by type:
0 bool true / 1 bool false (no bytes), 2 byte (i8), 3 int16, 4 int32, 5 int64,
6 byte buffer (``u16`` length + bytes), 7 string (``u16`` length + utf-8),
8 timestamp (i64, milliseconds since the epoch), 9 UUID (16 bytes). All big-endian.
The numbering is awscrt's ``awscrt.eventstream.HeaderType`` (a test checks they agree).

The RPC layer (aws-c-event-stream ``source/event_stream_rpc.c``, ``event_stream_rpc_server.c``;
awscrt ``awscrt/eventstream/rpc.py``) adds the int32 headers ``:message-type``,
``:message-flags`` and ``:stream-id``, and the string header ``operation`` on the first message
of a stream.
"""

from __future__ import annotations

import dataclasses
import enum
import socket
import struct
import uuid
import zlib
from typing import Optional, Sequence, Union

PRELUDE_LENGTH = 12
TRAILER_LENGTH = 4
MAX_MESSAGE_SIZE = 16 * 1024 * 1024
MAX_HEADERS_SIZE = 128 * 1024
MAX_HEADER_NAME_LENGTH = 127

MESSAGE_TYPE_HEADER = ":message-type"
MESSAGE_FLAGS_HEADER = ":message-flags"
STREAM_ID_HEADER = ":stream-id"
OPERATION_HEADER = "operation"
CONTENT_TYPE_HEADER = ":content-type"
SERVICE_MODEL_TYPE_HEADER = "service-model-type"
VERSION_HEADER = ":version"
CONTENT_TYPE_JSON = "application/json"
CONTENT_TYPE_TEXT = "text/plain"


class FrameError(Exception):
    """Bytes that are not a valid event-stream message (length, CRC or header encoding)."""


class HeaderType(enum.IntEnum):
    BOOL_TRUE = 0
    BOOL_FALSE = 1
    BYTE = 2
    INT16 = 3
    INT32 = 4
    INT64 = 5
    BYTE_BUF = 6
    STRING = 7
    TIMESTAMP = 8
    UUID = 9


class MessageType(enum.IntEnum):
    """``:message-type`` values (``enum aws_event_stream_rpc_message_type``)."""

    APPLICATION_MESSAGE = 0
    APPLICATION_ERROR = 1
    PING = 2
    PING_RESPONSE = 3
    CONNECT = 4
    CONNECT_ACK = 5
    PROTOCOL_ERROR = 6
    INTERNAL_ERROR = 7


MESSAGE_TYPE_COUNT = 8

# ``:message-flags`` bits (``enum aws_event_stream_rpc_message_flag``).
FLAG_CONNECTION_ACCEPTED = 0x1
FLAG_TERMINATE_STREAM = 0x2

HeaderValue = Union[bool, int, bytes, str, uuid.UUID]

_FIXED = {
    HeaderType.BYTE: ">b",
    HeaderType.INT16: ">h",
    HeaderType.INT32: ">i",
    HeaderType.INT64: ">q",
    HeaderType.TIMESTAMP: ">q",
}


@dataclasses.dataclass(frozen=True)
class Header:
    name: str
    value: HeaderValue
    type: HeaderType

    @classmethod
    def string(cls, name: str, value: str) -> Header:
        return cls(name, value, HeaderType.STRING)

    @classmethod
    def int32(cls, name: str, value: int) -> Header:
        return cls(name, value, HeaderType.INT32)


@dataclasses.dataclass(frozen=True)
class Message:
    headers: tuple[Header, ...]
    payload: bytes

    def header(self, name: str, type_: Optional[HeaderType] = None) -> Optional[HeaderValue]:
        """The value of the first header called ``name`` (of type ``type_`` if given)."""
        for header in self.headers:
            if header.name == name and (type_ is None or header.type == type_):
                return header.value
        return None

    def int_header(self, name: str) -> Optional[int]:
        value = self.header(name, HeaderType.INT32)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def str_header(self, name: str) -> Optional[str]:
        value = self.header(name, HeaderType.STRING)
        return value if isinstance(value, str) else None


def _encode_header(header: Header) -> bytes:
    name = header.name.encode("utf-8")
    if not 0 < len(name) <= MAX_HEADER_NAME_LENGTH:
        raise ValueError(f"header name {header.name!r} must be 1 to 127 bytes")
    out = bytes([len(name)]) + name + bytes([int(header.type)])
    kind, value = header.type, header.value
    if kind in (HeaderType.BOOL_TRUE, HeaderType.BOOL_FALSE):
        return out
    if kind in _FIXED:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"header {header.name!r} of type {kind.name} needs an int")
        return out + struct.pack(_FIXED[kind], value)
    if kind == HeaderType.UUID:
        if not isinstance(value, uuid.UUID):
            raise ValueError(f"header {header.name!r} of type UUID needs a uuid.UUID")
        return out + value.bytes
    if kind == HeaderType.STRING and isinstance(value, str):
        raw = value.encode("utf-8")
    elif kind == HeaderType.BYTE_BUF and isinstance(value, bytes):
        raw = value
    else:
        raise ValueError(f"header {header.name!r} of type {kind.name} has a {type(value).__name__}")
    if len(raw) > 0xFFFF:
        raise ValueError(f"header {header.name!r} value is longer than 65535 bytes")
    return out + struct.pack(">H", len(raw)) + raw


def encode_message(headers: Sequence[Header], payload: bytes = b"") -> bytes:
    """One message, framed and checksummed."""
    encoded_headers = b"".join(_encode_header(h) for h in headers)
    if len(encoded_headers) > MAX_HEADERS_SIZE:
        raise ValueError("headers exceed 128 KiB")
    total = PRELUDE_LENGTH + len(encoded_headers) + len(payload) + TRAILER_LENGTH
    if total > MAX_MESSAGE_SIZE:
        raise ValueError(f"message of {total} bytes exceeds 16 MiB")
    prelude = struct.pack(">II", total, len(encoded_headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + encoded_headers + payload
    return body + struct.pack(">I", zlib.crc32(body))


def _decode_headers(data: bytes) -> tuple[Header, ...]:
    headers: list[Header] = []
    pos = 0

    def take(n: int) -> bytes:
        nonlocal pos
        if pos + n > len(data):
            raise FrameError("header runs past the headers length")
        chunk = data[pos : pos + n]
        pos += n
        return chunk

    while pos < len(data):
        (name_len,) = take(1)
        if name_len == 0:
            raise FrameError("header with an empty name")
        name = take(name_len).decode("utf-8", errors="replace")
        (type_byte,) = take(1)
        try:
            kind = HeaderType(type_byte)
        except ValueError:
            raise FrameError(f"unknown header value type {type_byte}") from None
        value: HeaderValue
        if kind == HeaderType.BOOL_TRUE:
            value = True
        elif kind == HeaderType.BOOL_FALSE:
            value = False
        elif kind in _FIXED:
            fmt = _FIXED[kind]
            (value,) = struct.unpack(fmt, take(struct.calcsize(fmt)))
        elif kind == HeaderType.UUID:
            value = uuid.UUID(bytes=take(16))
        else:
            (length,) = struct.unpack(">H", take(2))
            raw = take(length)
            value = raw.decode("utf-8", errors="replace") if kind == HeaderType.STRING else raw
        headers.append(Header(name, value, kind))
    return tuple(headers)


def check_prelude(prelude: bytes) -> int:
    """The total message length from a 12-byte prelude, after the checks the CRT makes."""
    total, headers_len, prelude_crc = struct.unpack(">III", prelude)
    # Same order as event_stream_channel_handler.c s_process_read_message: size, then CRC.
    if total > MAX_MESSAGE_SIZE:
        raise FrameError(f"message length {total} exceeds 16 MiB")
    if total < PRELUDE_LENGTH + TRAILER_LENGTH:
        raise FrameError(f"message length {total} is too small")
    if zlib.crc32(prelude[:8]) != prelude_crc:
        raise FrameError("prelude CRC mismatch")
    if headers_len > total - PRELUDE_LENGTH - TRAILER_LENGTH or headers_len > MAX_HEADERS_SIZE:
        raise FrameError(f"headers length {headers_len} does not fit the message")
    return int(total)


def decode_message(data: bytes) -> Message:
    """One whole message (exactly ``data``), verified."""
    if len(data) < PRELUDE_LENGTH:
        raise FrameError("shorter than a prelude")
    total = check_prelude(data[:PRELUDE_LENGTH])
    if len(data) != total:
        raise FrameError(f"message length {total} but {len(data)} bytes")
    (message_crc,) = struct.unpack(">I", data[-TRAILER_LENGTH:])
    if zlib.crc32(data[:-TRAILER_LENGTH]) != message_crc:
        raise FrameError("message CRC mismatch")
    (headers_len,) = struct.unpack(">I", data[4:8])
    headers_end = PRELUDE_LENGTH + headers_len
    headers = _decode_headers(data[PRELUDE_LENGTH:headers_end])
    return Message(headers=headers, payload=data[headers_end:-TRAILER_LENGTH])


def _read_exactly(sock: socket.socket, n: int, *, at_boundary: bool) -> Optional[bytes]:
    chunks: list[bytes] = []
    remaining = n
    while remaining:
        chunk = sock.recv(remaining)
        if not chunk:
            if at_boundary and remaining == n:
                return None
            raise FrameError("connection closed in the middle of a message")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_message(sock: socket.socket) -> Optional[Message]:
    """The next message from ``sock``; None at a clean end of stream; FrameError if invalid.

    The prelude is checked before the rest is read, as the CRT does, so a corrupted length
    cannot make the reader wait for (or allocate) bytes that never come.
    """
    prelude = _read_exactly(sock, PRELUDE_LENGTH, at_boundary=True)
    if prelude is None:
        return None
    total = check_prelude(prelude)
    rest = _read_exactly(sock, total - PRELUDE_LENGTH, at_boundary=False)
    assert rest is not None
    return decode_message(prelude + rest)


def rpc_headers(
    message_type: MessageType, flags: int = 0, stream_id: int = 0, *extra: Header
) -> list[Header]:
    """``extra``, then ``:message-type``, ``:message-flags`` and ``:stream-id``.

    The order aws-c-event-stream writes them in (``s_send_protocol_message`` in both
    ``event_stream_rpc_server.c`` and ``event_stream_rpc_client.c``): application headers first.
    """
    return [
        *extra,
        Header.int32(MESSAGE_TYPE_HEADER, int(message_type)),
        Header.int32(MESSAGE_FLAGS_HEADER, flags),
        Header.int32(STREAM_ID_HEADER, stream_id),
    ]
