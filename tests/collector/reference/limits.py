# Frozen copy of src/llmscope_collector/processors/limits.py at 149fe9a, the reference the
# optimized module is proven equal to (tests/collector/test_hotpath_equivalence.py). Do not edit.
"""Per-span limits and anomaly marks, applied while decoding: nothing is dropped without a trace.

`apply_span_limits` is called once per span by `decode.py` with the span's decoded attributes and
returns the attributes to store. Over-long values are cut (at a UTF-8 boundary) and listed in
`llmscope.truncated_attributes`; attributes beyond the count limit are dropped (well-known GenAI
keys kept first) and counted in `llmscope.dropped_attributes_count`; an end before the start or an
out-of-range kind/status code is kept as sent and flagged. Each mark is counted by reason.

The limits are process-wide (set once at collector start) because decoding has no other context.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec

TRUNCATED_ATTRIBUTES = "llmscope.truncated_attributes"
DROPPED_ATTRIBUTES = "llmscope.dropped_attributes_count"
END_BEFORE_START = "llmscope.end_before_start"
UNKNOWN_KIND = "llmscope.unknown_span_kind"
UNKNOWN_STATUS = "llmscope.unknown_status_code"
TIME_OUT_OF_RANGE = "llmscope.time_out_of_range"
MAX_TIME_NS = 2**63 - 1
"""OTLP times are unsigned 64-bit; stored ones are signed (year 2262): later times are clamped and marked."""
_PRIORITY_PREFIXES = ("gen_ai.", "llm.", "openinference.", "traceloop.", "session.", "user.", "input.", "output.")
_MAX_KIND, _MAX_STATUS = 5, 2

# (Edited: the marks are counted into the caller's `marked` and the limits are a parameter, as in the
# live module since it stopped being process-wide; the limiting itself is as frozen.)


@dataclasses.dataclass(frozen=True)
class SpanLimits:
    """0 disables a limit."""

    max_attributes: int = 1024
    max_value_bytes: int = 1024 * 1024


def apply_span_limits(span: Any, attrs: dict[str, Any], limits: Any, marked: dict[str, int]) -> dict[str, Any]:
    """`attrs` within the active limits, plus `llmscope.*` marks for whatever was changed or odd."""
    marks: dict[str, Any] = {}
    if limits.max_attributes and len(attrs) > limits.max_attributes:
        kept = _keep_first(attrs, limits.max_attributes)
        marks[DROPPED_ATTRIBUTES] = len(attrs) - len(kept)
        attrs = kept
    if limits.max_value_bytes:
        truncated = [key for key, value in attrs.items() if _over(value, limits.max_value_bytes)]
        if truncated:
            attrs = dict(attrs)
            for key in truncated:
                attrs[key] = _truncate(attrs[key], limits.max_value_bytes)
            marks[TRUNCATED_ATTRIBUTES] = truncated
    if span.end_time_unix_nano < span.start_time_unix_nano:
        marks[END_BEFORE_START] = True
    if max(span.start_time_unix_nano, span.end_time_unix_nano) > MAX_TIME_NS:
        marks[TIME_OUT_OF_RANGE] = True
    if not 0 <= span.kind <= _MAX_KIND:
        marks[UNKNOWN_KIND] = span.kind
    if not 0 <= span.status.code <= _MAX_STATUS:
        marks[UNKNOWN_STATUS] = span.status.code
    if not marks:
        return attrs
    for key in marks:
        marked[_REASONS[key]] = marked.get(_REASONS[key], 0) + 1
    return {**attrs, **marks}


_REASONS = {
    DROPPED_ATTRIBUTES: "dropped_attributes",
    TRUNCATED_ATTRIBUTES: "truncated_value",
    END_BEFORE_START: "end_before_start",
    UNKNOWN_KIND: "unknown_span_kind",
    UNKNOWN_STATUS: "unknown_status_code",
    TIME_OUT_OF_RANGE: "time_out_of_range",
}


def _keep_first(attrs: dict[str, Any], limit: int) -> dict[str, Any]:
    """The first `limit` attributes, well-known GenAI/OpenInference/OpenLLMetry keys before the rest."""
    ranked = sorted(attrs, key=lambda key: not key.startswith(_PRIORITY_PREFIXES))
    return {key: attrs[key] for key in ranked[:limit]}


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
