"""One prediction message -> one line of output.

Messages are the inference component's results (``device_contract/messages.py``, schema in
``docs/CONTRACTS.md``): a prediction ``{"input", "top": [{"index", "label", "score"}, ...],
"latency_ms", ...}``, or a failure ``{"input", "error", ...}``. They are read leniently, by the
contract's keys (a message from an older or newer component still shows what it has); one
without what a line needs is reported as malformed, and following goes on.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
from typing import Any, Optional

from device_contract import topics
from device_contract.messages import Key

_SHOWN_BYTES = 80
# Characters a terminal acts on rather than shows: C0 and C1 controls (ESC, CSI 0x9b, newline,
# carriage return), DEL, the Unicode line and paragraph separators, and the bidirectional
# embedding/override/isolate controls that reorder what is shown.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# The same less the C0 controls, which json.dumps always escapes (JSON strings cannot hold them).
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def printable(text: str) -> str:
    """``text`` with what a terminal would act on written as ``\\n``, ``\\x1b``, ``\\u202e``:
    device-controlled text (thing and input names, labels, errors) cannot forge lines or
    drive the terminal."""
    return _UNSAFE.sub(lambda found: _escape(found.group()), text)


def _json_line(value: Any) -> str:
    """One line of JSON for ``value``, exact (``json.loads`` gives ``value`` back), with no raw
    terminal controls: those are written ``\\u00XX`` (legal inside any JSON string)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return _UNSAFE_IN_JSON.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


@dataclasses.dataclass(frozen=True)
class Line:
    """What to print: ``text`` to stdout, or, for a malformed message, to stderr."""

    text: str
    malformed: bool = False


def topic_filter(prefix: str) -> str:
    """``<prefix>/+/predictions``: every thing's predictions (the component's default topic is
    ``edge-ai/{iot:thingName}/predictions``)."""
    return topics.subscription_filter(prefix)


def topic_matches(topic_filter_: str, topic: str) -> bool:
    """MQTT topic-filter matching (``+`` one level, ``#`` the rest), as a broker does."""
    wanted, levels = topic_filter_.split("/"), topic.split("/")
    for index, part in enumerate(wanted):
        if part == "#":
            return True
        if index >= len(levels) or (part != "+" and part != levels[index]):
            return False
    return len(levels) == len(wanted)


def thing_name(prefix: str, topic: str) -> str:
    """The ``+`` level of ``<prefix>/+/predictions``; the whole topic when it does not match."""
    return topics.thing_of(prefix, topic)


def decode(payload: bytes) -> tuple[Optional[dict[str, Any]], str]:
    """``(message, "")``, or ``(None, reason)`` when the payload is not a JSON object."""
    try:
        value = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "not UTF-8"
    except ValueError as err:
        return None, f"not JSON ({err})"
    if not isinstance(value, dict):
        return None, f"a JSON {type(value).__name__}, not an object"
    return value, ""


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def _shown(payload: bytes) -> str:
    text = payload[:_SHOWN_BYTES].decode("utf-8", errors="replace")
    return repr(text) + ("..." if len(payload) > _SHOWN_BYTES else "")


def _top(message: dict[str, Any]) -> Optional[str]:
    top = message.get(Key.TOP)
    if not isinstance(top, list) or not top:
        return None
    parts = []
    for entry in top:
        if not isinstance(entry, dict) or not isinstance(entry.get(Key.SCORE), (int, float)):
            return None
        label = entry.get(Key.LABEL, entry.get(Key.INDEX, "?"))
        parts.append(f"{label} {float(entry[Key.SCORE]):.3f}")
    return ", ".join(parts)


def render(
    prefix: str,
    topic: str,
    payload: bytes,
    *,
    as_json: bool,
    received: Optional[str] = None,
) -> Line:
    """The line for one message on ``topic``; ``received`` is when it was published, if known.

    Human output (and a malformed message's line) escapes control characters (:func:`printable`);
    ``as_json`` output is exact JSON.
    """
    line = _render(prefix, topic, payload, as_json=as_json, received=received)
    if as_json and not line.malformed:
        return line
    return Line(printable(line.text), line.malformed)


def _render(
    prefix: str,
    topic: str,
    payload: bytes,
    *,
    as_json: bool,
    received: Optional[str] = None,
) -> Line:
    thing = thing_name(prefix, topic)
    message, problem = decode(payload)
    if message is None:
        return Line(
            f"{received or _now()}  {thing}  malformed payload ({problem}): {_shown(payload)}",
            malformed=True,
        )
    if as_json:
        return Line(_json_line(message))
    when = str(message.get(Key.TIMESTAMP) or received or _now())
    name = str(message.get(Key.INPUT, "?"))
    if Key.ERROR in message:
        return Line(f"{when}  {thing}  {name}  ERROR {message[Key.ERROR]}")
    top = _top(message)
    if top is None:
        return Line(
            f"{when}  {thing}  malformed prediction (no top list of label/score): "
            f"{_shown(payload)}",
            malformed=True,
        )
    latency = message.get(Key.LATENCY_MS)
    suffix = f"  {float(latency):.1f} ms" if isinstance(latency, (int, float)) else ""
    return Line(f"{when}  {thing}  {name}  {top}{suffix}")
