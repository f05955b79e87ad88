"""What the device publishes: one JSON object per input, a :class:`Prediction` or a
:class:`Failure`, on the topic of :mod:`device_contract.topics`.

The dataclasses are the one description of the messages: their field order is the JSON key
order, their types and ``metadata`` give :func:`json_schema` (``docs/CONTRACTS.md`` prints it; a
test keeps the two equal) and the checks of :meth:`Prediction.from_dict`. :class:`Key` names the
keys for readers that take partial messages (``edge_follow``); a test holds it equal to the
fields (two places because a Python attribute and a JSON key are two names, checked equal).
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any, Dict, List, Mapping, Optional, Tuple, Type, TypeVar, Union

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class MessageError(ValueError):
    """A payload that is not one of the device's messages; the text says what is wrong."""


def _doc(text: str, **schema: Any) -> Dict[str, Any]:
    return {"doc": text, "schema": schema}


@dataclasses.dataclass(frozen=True)
class Score:
    """One class of a prediction."""

    index: int = dataclasses.field(metadata=_doc("class index in the model output", minimum=0))
    label: str = dataclasses.field(metadata=_doc("labels.json's name, else the index as text"))
    score: float = dataclasses.field(
        metadata=_doc("probability, rounded to 6 decimals", minimum=0, maximum=1)
    )


@dataclasses.dataclass(frozen=True)
class Prediction:
    """An input the model classified."""

    input: str = dataclasses.field(metadata=_doc("the input file's name"))
    top: Tuple[Score, ...] = dataclasses.field(
        metadata=_doc("the TopK best classes, best first", minItems=1)
    )
    latency_ms: float = dataclasses.field(
        metadata=_doc("decode plus inference time, ms (3 decimals)", minimum=0)
    )
    inference_ms: float = dataclasses.field(
        metadata=_doc("inference time alone, ms (3 decimals)", minimum=0)
    )
    model: str = dataclasses.field(metadata=_doc("metadata.json's model_id"))
    runtime: str = dataclasses.field(metadata=_doc("dlr or onnx"))
    timestamp: str = dataclasses.field(
        metadata=_doc("when the result was made, UTC, ISO 8601 with ms", format="date-time")
    )

    def to_dict(self) -> Dict[str, Any]:
        plain: Dict[str, Any] = _plain(self)
        return plain

    def to_json(self) -> str:
        return encode(self.to_dict())

    @classmethod
    def from_dict(cls, raw: Any) -> Prediction:
        return _build(cls, raw, cls.__name__)

    @classmethod
    def from_json(cls, payload: Union[str, bytes]) -> Prediction:
        return cls.from_dict(_load(payload))


@dataclasses.dataclass(frozen=True)
class Failure:
    """An input that could not be classified (also written beside it as ``NAME.error.json``)."""

    input: str = dataclasses.field(metadata=_doc("the input file's name"))
    error: str = dataclasses.field(metadata=_doc("why it failed"))
    model: str = dataclasses.field(metadata=_doc("metadata.json's model_id"))
    runtime: str = dataclasses.field(metadata=_doc("dlr or onnx"))
    timestamp: str = dataclasses.field(
        metadata=_doc("when it failed, UTC, ISO 8601 with ms", format="date-time")
    )

    def to_dict(self) -> Dict[str, Any]:
        plain: Dict[str, Any] = _plain(self)
        return plain

    def to_json(self) -> str:
        return encode(self.to_dict())

    @classmethod
    def from_dict(cls, raw: Any) -> Failure:
        return _build(cls, raw, cls.__name__)

    @classmethod
    def from_json(cls, payload: Union[str, bytes]) -> Failure:
        return cls.from_dict(_load(payload))


Message = Union[Prediction, Failure]
MESSAGES: Tuple[Type[Any], ...] = (Prediction, Failure)


# -- the device's metrics (issue 15) ---------------------------------------------------------

#: The top-1 confidence buckets' lower edges: ``[0, 0.5)``, ``[0.5, 0.7)``, ``[0.7, 0.9)``,
#: ``[0.9, 1]``. Fixed, so that windows from every device and model add up bucket by bucket.
CONFIDENCE_EDGES: Tuple[float, ...] = (0.0, 0.5, 0.7, 0.9)


def confidence_buckets() -> Tuple[str, ...]:
    """Every bucket's name, lowest first."""
    return _BUCKET_NAMES


def confidence_bucket(score: float) -> str:
    """The name of the bucket ``score`` falls in (``"0.7-0.9"``; the last is ``"0.9-1"``)."""
    index = 0
    for i, low in enumerate(CONFIDENCE_EDGES):
        if score >= low:
            index = i
    return _BUCKET_NAMES[index]


_BUCKET_NAMES: Tuple[str, ...] = tuple(
    f"{low:g}-{high:g}" for low, high in zip(CONFIDENCE_EDGES, (*CONFIDENCE_EDGES[1:], 1.0))
)


@dataclasses.dataclass(frozen=True)
class Count:
    """How many of one kind (a failure reason, a confidence bucket, a predicted class)."""

    name: str = dataclasses.field(metadata=_doc("what was counted"))
    count: int = dataclasses.field(metadata=_doc("how many in the window", minimum=0))


@dataclasses.dataclass(frozen=True)
class Latency:
    """Decode-plus-inference latency of the window's results (0 when there were none)."""

    p50_ms: float = dataclasses.field(metadata=_doc("median, ms", minimum=0))
    p95_ms: float = dataclasses.field(metadata=_doc("95th percentile, ms", minimum=0))
    max_ms: float = dataclasses.field(metadata=_doc("slowest, ms", minimum=0))


@dataclasses.dataclass(frozen=True)
class Metrics:
    """One device's numbers for one window (a minute by default), on the metrics topic."""

    thing: str = dataclasses.field(metadata=_doc("the core device's thing name"))
    model: str = dataclasses.field(metadata=_doc("metadata.json's model_id"))
    runtime: str = dataclasses.field(metadata=_doc("dlr or onnx"))
    window_start: str = dataclasses.field(
        metadata=_doc("the window's start, UTC, ISO 8601 with ms", format="date-time")
    )
    window_seconds: float = dataclasses.field(metadata=_doc("the window's length, s", minimum=0))
    processed: int = dataclasses.field(metadata=_doc("inputs with a result", minimum=0))
    failed: Tuple[Count, ...] = dataclasses.field(
        metadata=_doc("failed inputs by reason (the error up to its first colon)")
    )
    latency: Latency = dataclasses.field(metadata=_doc("latency of the results"))
    confidence: Tuple[Count, ...] = dataclasses.field(
        metadata=_doc("results by top-1 confidence bucket, every bucket listed")
    )
    classes: Tuple[Count, ...] = dataclasses.field(
        metadata=_doc("results by top-1 label, most frequent first (at most 20; rest: other)")
    )
    backlog_files: int = dataclasses.field(
        metadata=_doc("inputs waiting in the input folder at the window's end", minimum=0)
    )
    backlog_oldest_seconds: float = dataclasses.field(
        metadata=_doc("age of the oldest waiting input, s (0: none waiting)", minimum=0)
    )
    disk_free_bytes: int = dataclasses.field(
        metadata=_doc("free bytes on the input folder's file system", minimum=0)
    )
    dropped_windows: int = dataclasses.field(
        metadata=_doc(
            "earlier windows dropped unpublished since the last published one (offline too "
            "long: MetricsKeepWindows)",
            minimum=0,
        )
    )
    # Added with capture: optional (a device on an older component version sends none of them).
    captured: int = dataclasses.field(
        default=0,
        metadata=_doc("inputs captured in the window (CaptureBelowConfidence, ...)", minimum=0),
    )
    capture_dropped: int = dataclasses.field(
        default=0,
        metadata=_doc(
            "captures dropped in the window (CaptureMaxMB, a disk that refused them)", minimum=0
        ),
    )
    capture_uploaded: int = dataclasses.field(
        default=0, metadata=_doc("captures uploaded to S3 in the window", minimum=0)
    )
    capture_waiting: int = dataclasses.field(
        default=0,
        metadata=_doc("captures on the device waiting for upload at the window's end", minimum=0),
    )

    def to_dict(self) -> Dict[str, Any]:
        plain: Dict[str, Any] = _plain(self)
        return plain

    def to_json(self) -> str:
        return encode(self.to_dict())

    @classmethod
    def from_dict(cls, raw: Any) -> Metrics:
        return _build(cls, raw, cls.__name__)

    @classmethod
    def from_json(cls, payload: Union[str, bytes]) -> Metrics:
        return cls.from_dict(_load(payload))


def metrics_schema() -> Dict[str, Any]:
    """The schema of the metrics topic's payload (``docs/CONTRACTS.md``)."""
    return {"$schema": SCHEMA_DIALECT, **schema_of(Metrics)}


class Key:
    """The JSON keys, for readers of partial messages (equal to the fields: a test checks)."""

    INPUT = "input"
    TOP = "top"
    INDEX = "index"
    LABEL = "label"
    SCORE = "score"
    LATENCY_MS = "latency_ms"
    INFERENCE_MS = "inference_ms"
    MODEL = "model"
    RUNTIME = "runtime"
    TIMESTAMP = "timestamp"
    ERROR = "error"


def encode(message: Mapping[str, Any]) -> str:
    """The payload text of ``message`` (what a publisher sends, UTF-8 encoded)."""
    return json.dumps(message)


def parse(payload: Union[str, bytes, Mapping[str, Any]]) -> Message:
    """The message ``payload`` holds (a failure has ``error``); :class:`MessageError` if none."""
    raw = payload if isinstance(payload, Mapping) else _load(payload)
    if isinstance(raw, Mapping) and Key.ERROR in raw:
        return Failure.from_dict(raw)
    return Prediction.from_dict(raw)


# -- from the types ---------------------------------------------------------------------------

T = TypeVar("T")


def _load(payload: Union[str, bytes]) -> Any:
    try:
        return json.loads(payload)
    except (UnicodeDecodeError, ValueError) as err:
        raise MessageError(f"not JSON: {err}") from err


def _plain(value: Any) -> Any:
    """Dataclasses as dicts in field order, tuples as lists: the JSON shape."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [_plain(item) for item in value]
    return value


def _fields(cls: Type[Any]) -> List[Tuple[dataclasses.Field[Any], Any]]:
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls)]


def _item_type(hint: Any) -> Optional[Any]:
    """``X`` for ``Tuple[X, ...]``, else None."""
    if typing.get_origin(hint) is tuple:
        return typing.get_args(hint)[0]
    return None


def _type_schema(hint: Any) -> Dict[str, Any]:
    item = _item_type(hint)
    if item is not None:
        return {"type": "array", "items": schema_of(item)}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return schema_of(hint)
    names = {str: "string", int: "integer", float: "number", bool: "boolean"}
    return {"type": names[hint]}


def schema_of(cls: Type[Any]) -> Dict[str, Any]:
    """The JSON schema of one message dataclass: every field without a default required,
    nothing else allowed."""
    properties = {}
    required = []
    for field, hint in _fields(cls):
        if _required(field):
            required.append(field.name)
        properties[field.name] = {
            **_type_schema(hint),
            **field.metadata.get("schema", {}),
            "description": field.metadata["doc"],
        }
    return {
        "title": cls.__name__,
        "description": (cls.__doc__ or "").strip(),
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def json_schema() -> Dict[str, Any]:
    """The schema of every payload the device publishes (``docs/CONTRACTS.md``)."""
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "Inference component result",
        "oneOf": [schema_of(cls) for cls in MESSAGES],
    }


def _check(value: Any, hint: Any, rules: Mapping[str, Any], where: str) -> Any:
    item = _item_type(hint)
    if item is not None:
        if not isinstance(value, (list, tuple)):
            raise MessageError(f"{where} must be an array, got {type(value).__name__}")
        if len(value) < rules.get("minItems", 0):
            raise MessageError(f"{where} must hold at least {rules['minItems']} item(s)")
        return tuple(_build(item, entry, f"{where}[{i}]") for i, entry in enumerate(value))
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, hint)
    if not ok:
        raise MessageError(f"{where} must be {_type_schema(hint)['type']}, got {value!r}")
    if "minimum" in rules and value < rules["minimum"]:
        raise MessageError(f"{where} must be at least {rules['minimum']}, got {value!r}")
    if "maximum" in rules and value > rules["maximum"]:
        raise MessageError(f"{where} must be at most {rules['maximum']}, got {value!r}")
    return value


def _build(cls: Type[T], raw: Any, where: str) -> T:
    if not isinstance(raw, Mapping):
        raise MessageError(f"{where} must be an object, got {type(raw).__name__}")
    fields = _fields(cls)
    names = [field.name for field, _ in fields]
    missing = [field.name for field, _ in fields if field.name not in raw and _required(field)]
    extra = sorted(str(key) for key in raw if key not in names)
    if missing or extra:
        problems = [f"missing {', '.join(missing)}"] if missing else []
        problems += [f"unknown {', '.join(extra)}"] if extra else []
        raise MessageError(f"{where}: {'; '.join(problems)}")
    values = {
        field.name: _check(raw[field.name], hint, field.metadata["schema"], f"{where}.{field.name}")
        for field, hint in fields
        if field.name in raw
    }
    return cls(**values)


def _required(field: dataclasses.Field[Any]) -> bool:
    """A field without a default must be in every message; one with a default came later."""
    return field.default is dataclasses.MISSING
