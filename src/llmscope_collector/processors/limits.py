"""Per-span limits and anomaly marks, applied while decoding: nothing is dropped without a trace.

`limit_span` (`apply_span_limits` of a protobuf span) is called once per span by `decode.py` with
the span's decoded attributes and returns the attributes to store. Over-long values are cut (at a
UTF-8 boundary) and listed in `llmscope.truncated_attributes`; attributes beyond the count limit
are dropped (well-known GenAI keys kept first) and counted in `llmscope.dropped_attributes_count`;
an end before the start or an out-of-range kind/status code is kept as sent and flagged. Each mark
is counted by reason.

The limits are the server's (`Runtime.limits`), passed in by the decoder; marks are counted into
the caller's `marked` mapping (the decoded batch's), which travels back from a decode worker with
its batch and is added to that server's `llmscope_ingest_spans_marked_total`. Nothing here is
process-wide, so two collectors in one process keep their own limits and counts.

Names are limited too: a span name, an event name or an attribute key (the span's or an event's)
longer than `max_name_bytes` is cut, and events beyond `max_events` are dropped (the first ones
kept). `apply_span_limits` marks and counts those on the span (`llmscope.truncated_name`,
`llmscope.truncated_keys`, `llmscope.truncated_event_names`, `llmscope.dropped_events_count`);
`decode.py` stores `cut_name(name)`, decodes only `span_events(...)` (the native decoder: the first
`max_events`), and has `limit_events` cut the decoded events' names and keys (its marks go to
`apply_span_limits`).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from typing import Any

import msgspec

TRUNCATED_ATTRIBUTES = "llmscope.truncated_attributes"
DROPPED_ATTRIBUTES = "llmscope.dropped_attributes_count"
END_BEFORE_START = "llmscope.end_before_start"
UNKNOWN_KIND = "llmscope.unknown_span_kind"
UNKNOWN_STATUS = "llmscope.unknown_status_code"
TIME_OUT_OF_RANGE = "llmscope.time_out_of_range"
TRUNCATED_NAME = "llmscope.truncated_name"
TRUNCATED_KEYS = "llmscope.truncated_keys"
TRUNCATED_EVENT_NAMES = "llmscope.truncated_event_names"
DROPPED_EVENTS = "llmscope.dropped_events_count"
MAX_TIME_NS = 2**63 - 1
"""OTLP times are unsigned 64-bit; stored ones are signed (year 2262): later times are clamped and marked."""
_PRIORITY_PREFIXES = ("gen_ai.", "llm.", "openinference.", "traceloop.", "session.", "user.", "input.", "output.")
_MAX_KIND, _MAX_STATUS = 5, 2


@dataclasses.dataclass(frozen=True)
class SpanLimits:
    """0 disables a limit."""

    max_attributes: int = 1024
    max_value_bytes: int = 1024 * 1024
    max_events: int = 1024
    max_name_bytes: int = 4096


DEFAULT_LIMITS = SpanLimits()
Marks = dict[str, int]
"""Spans marked, by reason (`MARK_REASONS`' values): filled while a request is decoded."""


def apply_span_limits(
    span: Any, attrs: dict[str, Any], limits: SpanLimits, marked: Marks, event_marks: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`attrs` within `limits`, plus `llmscope.*` marks for whatever was changed or odd (counted in `marked`);
    `event_marks` are `limit_events`' marks for the span's events, added with the others."""
    start, end, kind, status = span.start_time_unix_nano, span.end_time_unix_nano, span.kind, span.status.code
    return limit_span(start, end, kind, status, span.name, attrs, limits, marked, event_marks)


def limit_span(
    start: int,
    end: int,
    kind: int,
    status: int,
    name: str,
    attrs: dict[str, Any],
    limits: SpanLimits,
    marked: Marks,
    event_marks: dict[str, Any] | None = None,
    within: bool | None = None,
) -> dict[str, Any]:
    """`apply_span_limits` of a span's fields as sent (times, kind, status code, name); `within` is
    `within_limits` of them when the caller has it (both decoders send it with each span)."""
    if not event_marks and (within_limits(start, end, kind, status, name, attrs, limits) if within is None else within):
        return attrs  # the usual span, nothing to change or mark: returned as it is
    marks = dict(event_marks or {})
    name_limit = limits.max_name_bytes
    if name_limit:
        if _over(name, name_limit):
            marks[TRUNCATED_NAME] = True
        keys = sum(_over(key, name_limit) for key in attrs)
        if keys:
            marks[TRUNCATED_KEYS] = marks.get(TRUNCATED_KEYS, 0) + keys
            attrs = {cut_name(key, limits): value for key, value in attrs.items()}
    return _limited(limits, start, end, kind, status, attrs, marks, marked)


def within_limits(
    start: int, end: int, kind: int, status: int, name: str, attrs: dict[str, Any], limits: SpanLimits
) -> bool:
    """Whether `limit_span` returns a span's attributes as they are, with no mark (its events aside).

    This is the check that walks every attribute, so the decoders make it while they read a span and
    send the answer with it: the native one in C (`span_within` in `_otlp_native.c`, the same rules
    on the same values: tests/collector/test_native_decode.py), the pure one here. An array or map
    value counts by `_json_bound`, not its JSON's length (which C would have to encode as msgspec
    does): one over the bound but not the limit is left as it is by `limit_span`'s exact path."""
    name_limit = limits.max_name_bytes
    return (
        start <= end <= MAX_TIME_NS
        and 0 <= kind <= _MAX_KIND
        and 0 <= status <= _MAX_STATUS
        and (not limits.max_attributes or len(attrs) <= limits.max_attributes)
        and (not name_limit or not _over(name, name_limit))
        and _sizes_within(attrs, limits.max_value_bytes, name_limit)
    )


def span_name(span: Any, limits: SpanLimits) -> str:
    """The span's name within `max_name_bytes`."""
    return cut_name(span.name, limits)


def cut_name(name: str, limits: SpanLimits) -> str:
    """`name` (a span or event name, an attribute key) within `max_name_bytes`, cut at a UTF-8 boundary."""
    limit = limits.max_name_bytes
    return _truncate(name, limit) if limit and _over(name, limit) else name


def span_events(events: Any, limits: SpanLimits) -> Any:
    """The events of a span to decode and store: the first `max_events`."""
    limit = limits.max_events
    return events[:limit] if limit and len(events) > limit else events


def limit_events(events: Sequence[dict[str, Any]], sent: int, limits: SpanLimits) -> dict[str, Any]:
    """Cut the names and attribute keys of a span's decoded `events` (of `sent`) in place; their marks."""
    marks: dict[str, Any] = {}
    if sent > len(events):
        marks[DROPPED_EVENTS] = sent - len(events)
    limit = limits.max_name_bytes
    if not limit:
        return marks
    names = keys = 0
    for event in events:
        if _over(event["name"], limit):
            event["name"] = _truncate(event["name"], limit)
            names += 1
        over = sum(_over(key, limit) for key in event["attributes"])
        if over:
            event["attributes"] = {cut_name(key, limits): value for key, value in event["attributes"].items()}
            keys += over
    if names:
        marks[TRUNCATED_EVENT_NAMES] = names
    if keys:
        marks[TRUNCATED_KEYS] = keys
    return marks


def _sizes_within(attrs: dict[str, Any], value_limit: int, key_limit: int) -> bool:
    """No key over `key_limit` bytes, no value over `value_limit` (arrays/maps: by `_json_bound`; 0: no
    limit), in one pass with `_over`'s common answers inline: the lengths alone decide, mostly."""
    key_quarter = key_limit >> 2 if key_limit else sys.maxsize  # len * 4 <= limit: a character is <= 4 bytes
    if not value_limit:
        return all(len(key) <= key_quarter or not _over(key, key_limit) for key in attrs)
    quarter = value_limit >> 2
    for key, value in attrs.items():
        if len(key) > key_quarter and _over(key, key_limit):
            return False
        value_type = type(value)
        if value_type is str:
            if len(value) > quarter and _over(value, value_limit):
                return False
        elif value_type is list or value_type is dict:
            if _json_bound(value) > value_limit:
                return False
        elif value_type not in _NEVER_OVER and _over(value, value_limit):  # (a subclass: not from a decoder)
            return False
    return True


_BOUND_CAP = 2**60  # where `_json_bound` saturates, as its C twin (`json_bound`) must, short of overflowing


def _json_bound(value: Any) -> int:
    """At least the length of `value`'s JSON as msgspec writes it, from its shape alone (no encoding,
    so that C computes the same): a character at most 6 bytes (`\\u001f`; msgspec writes non-ASCII
    as UTF-8, <= 4), an int64 20, a float 32 (msgspec's shortest repr: <= 24), a separator per item.
    A type it does not know (or an int beyond 64 bits) is `_BOUND_CAP`: over any limit."""
    value_type = type(value)
    if value_type is str:
        return 2 + 6 * len(value)
    if value is None:
        return 4
    if value_type is bool:
        return 5
    if value_type is float:
        return 32
    if value_type is int:
        return 20 if -(2**63) <= value < 2**63 else _BOUND_CAP
    if value_type is list:
        total = 2 + sum(_json_bound(item) + 1 for item in value)
    elif value_type is dict:
        total = 2 + sum(_json_bound(key) + _json_bound(item) + 2 for key, item in value.items())
    else:
        return _BOUND_CAP
    return min(total, _BOUND_CAP)


def _limited(
    limits: SpanLimits,
    start: int,
    end: int,
    kind: int,
    status: int,
    attrs: dict[str, Any],
    marks: dict[str, Any],
    marked: Marks,
) -> dict[str, Any]:
    """`apply_span_limits` for a span that may need a change or a mark; `marks` holds the names' ones."""
    if limits.max_attributes and len(attrs) > limits.max_attributes:
        kept = _keep_first(attrs, limits.max_attributes)
        marks[DROPPED_ATTRIBUTES] = len(attrs) - len(kept)
        attrs = kept
    if limits.max_value_bytes:
        limit = limits.max_value_bytes
        truncated = []
        for key, value in attrs.items():  # `_over`, with its common answers inline (no call per value)
            value_type = type(value)
            if (value_type is str and len(value) * 4 <= limit) or value_type in _NEVER_OVER:
                continue
            if _over(value, limit):
                truncated.append(key)
        if truncated:
            attrs = dict(attrs)
            for key in truncated:
                attrs[key] = _truncate(attrs[key], limits.max_value_bytes)
            marks[TRUNCATED_ATTRIBUTES] = truncated
    if end < start:
        marks[END_BEFORE_START] = True
    if max(start, end) > MAX_TIME_NS:
        marks[TIME_OUT_OF_RANGE] = True
    if not 0 <= kind <= _MAX_KIND:
        marks[UNKNOWN_KIND] = kind
    if not 0 <= status <= _MAX_STATUS:
        marks[UNKNOWN_STATUS] = status
    if not marks:
        return attrs
    for key in marks:
        reason = MARK_REASONS[key]
        marked[reason] = marked.get(reason, 0) + 1
    return {**attrs, **marks}


MARK_REASONS = {  # the `reason` label of llmscope_ingest_spans_marked_total, per mark
    DROPPED_ATTRIBUTES: "dropped_attributes",
    TRUNCATED_ATTRIBUTES: "truncated_value",
    END_BEFORE_START: "end_before_start",
    UNKNOWN_KIND: "unknown_span_kind",
    UNKNOWN_STATUS: "unknown_status_code",
    TIME_OUT_OF_RANGE: "time_out_of_range",
    TRUNCATED_NAME: "truncated_name",
    TRUNCATED_KEYS: "truncated_key",
    TRUNCATED_EVENT_NAMES: "truncated_event_name",
    DROPPED_EVENTS: "dropped_events",
}


def _keep_first(attrs: dict[str, Any], limit: int) -> dict[str, Any]:
    """The first `limit` attributes, well-known GenAI/OpenInference/OpenLLMetry keys before the rest."""
    ranked = sorted(attrs, key=lambda key: not key.startswith(_PRIORITY_PREFIXES))
    return {key: attrs[key] for key in ranked[:limit]}


_NEVER_OVER = frozenset({int, float, bool, bytes, type(None)})  # value types `_over` is always False for


def _over(value: Any, limit: int) -> bool:
    if isinstance(value, str):
        # A character is 1-4 UTF-8 bytes: only encode when the length alone cannot decide.
        if len(value) * 4 <= limit:
            return False
        return len(value) > limit or len(value.encode("utf-8")) > limit
    if isinstance(value, (list, dict)):
        return len(msgspec.json.encode(value)) > limit
    return False


def _truncate(value: Any, limit: int) -> str:
    """A string of at most `limit` UTF-8 bytes; arrays/maps become their JSON text, cut."""
    text = value if isinstance(value, str) else msgspec.json.encode(value).decode("utf-8")
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore")
