"""Scores as OTel `gen_ai.evaluation.result` span events → rows of the `scores` dataset.

One mapping serves every way a score comes in. An instrumentation that evaluates a GenAI call adds
a `gen_ai.evaluation.result` event to a span (OTel GenAI conventions: `gen_ai.evaluation.name`,
`.score.value`, `.score.label`, `gen_ai.evaluation.explanation`); that span is the score's target.
`POST /v1/scores` travels the same way, so an acknowledged score is in the WAL exactly like a span:
the API wraps each score in a *carrier* span of the reserved scope `llmscope.scores` whose event
names its target explicitly (`llmscope.score.trace_id`, `.span_id`, `.session_id`) with the fields
OTel has no name for (`llmscope.score.id`, `.source`, `.author`, `.data_type`). The decoder stores
carrier spans' scores and never the carrier spans themselves.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

EVALUATION_EVENT = "gen_ai.evaluation.result"
CARRIER_SCOPE = "llmscope.scores"

NAME = "gen_ai.evaluation.name"
VALUE = "gen_ai.evaluation.score.value"
LABEL = "gen_ai.evaluation.score.label"
EXPLANATION = "gen_ai.evaluation.explanation"
SCORE_ID = "llmscope.score.id"
SOURCE = "llmscope.score.source"
AUTHOR = "llmscope.score.author"
DATA_TYPE = "llmscope.score.data_type"
TARGET_TRACE = "llmscope.score.trace_id"
TARGET_SPAN = "llmscope.score.span_id"
TARGET_SESSION = "llmscope.score.session_id"

_SOURCES = frozenset(("human", "api", "eval"))
_MAX_TEXT = 4096


def score_row(
    attrs: Mapping[str, Any],
    time_ns: int,
    received_ns: int,
    target: tuple[str | None, str | None, str | None],
) -> dict[str, Any] | None:
    """The stored row of one evaluation event, or None when it has no name or no value at all.

    `target` is (trace_id, span_id, session_id) of the span that carried the event; a carrier's
    explicit `llmscope.score.*` target attributes take precedence. Without an id, the id is derived
    from the target, the name and the time, so the same event sent twice is one score."""
    name = _text(attrs.get(NAME))
    if not name:
        return None
    value, label, data_type = _value(attrs.get(VALUE), _text(attrs.get(LABEL)), _text(attrs.get(DATA_TYPE)))
    if value is None and label is None:
        return None
    trace_id = _text(attrs.get(TARGET_TRACE)) or target[0]
    span_id = _text(attrs.get(TARGET_SPAN)) or target[1]
    session_id = _text(attrs.get(TARGET_SESSION)) or target[2]
    source = _text(attrs.get(SOURCE))
    score_id = _text(attrs.get(SCORE_ID)) or _derived_id(trace_id, span_id, session_id, name, time_ns)
    return {
        "id": score_id,
        "trace_id": trace_id.lower() if trace_id else None,
        "span_id": span_id.lower() if span_id else None,
        "session_id": session_id,
        "name": name,
        "data_type": data_type,
        "value": value,
        "label": label,
        "comment": _text(attrs.get(EXPLANATION)),
        "source": source if source in _SOURCES else "eval",
        "author": _text(attrs.get(AUTHOR)),
        "time_ns": time_ns,
        "received_ns": received_ns,
    }


def _value(raw: Any, label: str | None, declared: str | None) -> tuple[float | None, str | None, str]:
    """(value, label, data_type): booleans are 1/0 with a "true"/"false" label."""
    if isinstance(raw, bool) or declared == "boolean":
        truth = _truth(raw, label)
        if truth is not None:
            return float(truth), "true" if truth else "false", "boolean"
    number = _number(raw)
    if number is not None:
        return number, label, "numeric"
    return None, label, "categorical"


def _truth(raw: Any, label: str | None) -> bool | None:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int | float) and raw in (0, 1):
        return bool(raw)
    if label is not None and label.lower() in ("true", "false"):
        return label.lower() == "true"
    return None


def _number(raw: Any) -> float | None:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        number = float(raw)
        return number if math.isfinite(number) else None
    if isinstance(raw, str):
        try:
            number = float(raw)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _text(raw: Any) -> str | None:
    if raw is None or raw == "":
        return None
    return str(raw)[:_MAX_TEXT]


def _derived_id(trace: str | None, span: str | None, session: str | None, name: str, time_ns: int) -> str:
    key = "\x1f".join((trace or "", span or "", session or "", name, str(time_ns)))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def carrier_request(scores: list[dict[str, Any]], received_ns: int) -> bytes:
    """An OTLP request carrying `scores` (validated API scores: `id`, `name`, `value`, targets...)
    as `gen_ai.evaluation.result` events of carrier spans: the bytes the WAL keeps before the ack."""
    request = ExportTraceServiceRequest()
    scope_spans = request.resource_spans.add().scope_spans.add()
    scope_spans.scope.name = CARRIER_SCOPE
    for score in scores:
        span = scope_spans.spans.add()
        digest = hashlib.sha256(score["id"].encode()).digest()
        span.trace_id = bytes.fromhex(score["trace_id"]) if score.get("trace_id") else digest[:16]
        span.span_id = digest[16:24]
        span.name = "score"
        span.start_time_unix_nano = span.end_time_unix_nano = received_ns
        event = span.events.add()
        event.name = EVALUATION_EVENT
        event.time_unix_nano = score.get("time_ns") or received_ns
        event.attributes.extend(_carrier_attributes(score))
    return bytes(request.SerializeToString())


def _carrier_attributes(score: dict[str, Any]) -> list[KeyValue]:
    value = score["value"]
    attrs: dict[str, Any] = {
        NAME: score["name"],
        SCORE_ID: score["id"],
        SOURCE: score.get("source") or "api",
        AUTHOR: score.get("author"),
        EXPLANATION: score.get("comment"),
        TARGET_TRACE: score.get("trace_id"),
        TARGET_SPAN: score.get("span_id"),
        TARGET_SESSION: score.get("session_id"),
    }
    if isinstance(value, bool):
        attrs[DATA_TYPE] = "boolean"
        attrs[VALUE] = value
    elif isinstance(value, int | float):
        attrs[DATA_TYPE] = "numeric"
        attrs[VALUE] = float(value)
    else:
        attrs[DATA_TYPE] = "categorical"
        attrs[LABEL] = str(value)
    return [KeyValue(key=key, value=_any_value(v)) for key, v in attrs.items() if v is not None]


def _any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=str(value))
