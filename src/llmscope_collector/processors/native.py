"""Which OTLP wire decoder this process runs: the C extension (`_otlp_native.c`) or upb + Python.

Both turn `ExportTraceServiceRequest` bytes into the same plain values, which `decode.py` then
normalizes, limits, splits and prices (those rules exist once, in Python):

    [(resource_attributes, [(scope_name, scope_version, [SpanFields, ...]), ...]), ...]

`SpanFields` is `(head, attributes, events, events_sent, links, within_limits, ids_valid, kind,
status_code, start_ns, end_ns)`. `head` is the span's stored row as it begins (`decode._SPAN_FIELDS`'
first eleven): `(trace_id, span_id, parent_span_id, trace_state, name, kind, start_ns, end_ns,
duration_ns, status_code, status_message)` with ids in hex (whatever their length; the parent None when
not sent or all zero), an empty trace state or message None, the kind and status code by their
`KIND_NAMES`/`STATUS_NAMES` (an unknown one as the first), times clamped to `MAX_TIME_NS` and the
duration from them (0 when the end is not after the start). Made by the decoder, so that `decode.py`
handles no per-span value it only passes on. The rest are what `decode.py` still reads: attributes by
OTel's AnyValue rules (`decode.attributes_dict`), events as `{"time_ns", "name", "attributes"}` dicts
(the first `max_events` of `events_sent`; all of them on the scores carrier scope), links as
`{"trace_id", "span_id", "attributes"}` with hex ids (either, when there is none, the empty tuple: most
spans have neither, and two empty lists per span were made, tracked by the collector and torn down for
nothing), `within_limits` as `limits.within_limits` answers
for the span (made while its attributes are at hand, so that `decode.py` skips the per-attribute walk
of `limit_span` for the usual span), `ids_valid` the id rule (a 16-byte trace id and an 8-byte span id,
neither all zero), and the kind, status code and times as sent (for `limit_span`'s marks).

The native decoder checks the whole wire format with the GIL released, as upb checks it (same
accepted/refused bytes: tests/collector/test_native_decode.py), then builds the values with no
per-field wrapper objects: most of what the pure path spends per span. It is optional: without a
C compiler at install time (setup.py) the pure path runs, and `LLMSCOPE_DECODE_NATIVE=false`
(settings.py) forces it.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from llmscope_collector.processors.limits import MAX_TIME_NS, SpanLimits
from llmscope_collector.processors.scores import CARRIER_SCOPE

SpanHead = tuple[str, str, str | None, str | None, str, str, int, int, int, str, str | None]
Events = list[dict[str, Any]] | tuple[()]
"""A span's decoded events, or the empty tuple when it has none (no list made per span for nothing)."""
SpanFields = tuple[SpanHead, dict[str, Any], Events, int, list[Any] | tuple[()], bool, bool, int, int, int, int]
ScopeParts = tuple[str, str, list[SpanFields]]
ResourceParts = tuple[dict[str, Any], list[ScopeParts]]

# AnyValue's `string_value_strindex` (opentelemetry-proto >= 1.7 profiles) is a oneof case: sent
# after a string it clears it. The native decoder follows the installed schema.
_STRINDEX = "string_value_strindex" in AnyValue.DESCRIPTOR.fields_by_name
_REQUEST_TYPE = "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest"


KIND_NAMES = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
"""The stored `kind` of each OTLP span kind (by its number; an unknown one is stored as the first)."""
STATUS_NAMES = ("UNSET", "OK", "ERROR")
"""The stored `status_code` of each OTLP status code (likewise)."""
STATUS_ERROR = STATUS_NAMES.index("ERROR")

# The C functions and the shape of their arguments and values this module expects (3: `check_ids`; 4: it
# takes how many names to keep; 5: a span's head, and the names handed in; 6: no events or links: `()`).
_FORMAT = 6


def _load() -> tuple[ModuleType | None, str]:
    try:
        from llmscope_collector.processors import _otlp_native  # type: ignore[attr-defined]  # (C, optional)
    except ImportError as exc:
        return None, f"the C extension is not built ({exc})"
    if getattr(_otlp_native, "FORMAT", 1) != _FORMAT:  # a tree's build left from an older _otlp_native.c
        return None, "the C extension is stale (built from an older _otlp_native.c): rebuild it"
    return _otlp_native, ""


_native, UNAVAILABLE = _load()
AVAILABLE = _native is not None
"""Whether the C extension loaded; `UNAVAILABLE` says why not."""


def decoder_name(native: bool) -> str:
    """`native` or `python`: what a decode asked for `native` runs (the metrics' label, the log line)."""
    return "native" if native and AVAILABLE else "python"


def parse_request(payload: bytes, limits: SpanLimits) -> list[ResourceParts]:
    """The request's values (module docstring); raises protobuf's `DecodeError` for bytes upb refuses."""
    assert _native is not None, UNAVAILABLE
    try:
        parts: list[ResourceParts] = _native.parse_request(
            bytes(payload),
            limits.max_events,
            CARRIER_SCOPE,
            _STRINDEX,
            limits.max_value_bytes,
            limits.max_name_bytes,
            limits.max_attributes,
            KIND_NAMES,
            STATUS_NAMES,
        )
    except _native.DecodeError as exc:
        raise DecodeError(f"Error parsing message with type '{_REQUEST_TYPE}': {exc}") from None
    return parts


def span_head(
    trace_id: str,
    span_id: str,
    parent: str | None,
    trace_state: str,
    name: str,
    kind: int,
    start: int,
    end: int,
    code: int,
    message: str,
) -> SpanHead:
    """A span's `head` (module docstring) from its values as sent: the pure-Python twin of the C decoder's."""
    start, end = min(start, MAX_TIME_NS), min(end, MAX_TIME_NS)
    return (
        trace_id,
        span_id,
        parent,
        trace_state or None,
        name,
        KIND_NAMES[kind] if 0 <= kind < len(KIND_NAMES) else KIND_NAMES[0],
        start,
        end,
        end - start if end > start else 0,
        STATUS_NAMES[code] if 0 <= code < len(STATUS_NAMES) else STATUS_NAMES[0],
        message or None,
    )


def check_ids(payload: bytes, names: int, name_chars: int) -> tuple[int, int, list[str]]:
    """The receiver's check of a request (`receiver._export.check_request`'s native twin): the wire format
    as upb checks it and each span's ids by the decoder's rule, with the GIL released (no upb message, no
    Python object per span); (accepted, rejected, the first `names` rejected spans' names, each cut to
    `name_chars` characters: the receiver's reason format, which it owns and hands in). Raises `DecodeError`."""
    assert _native is not None, UNAVAILABLE
    try:
        accepted, rejected, kept = _native.check_ids(bytes(payload), _STRINDEX, names, name_chars)
    except _native.DecodeError as exc:
        raise DecodeError(f"Error parsing message with type '{_REQUEST_TYPE}': {exc}") from None
    return accepted, rejected, kept
