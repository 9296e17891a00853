"""OTLP/JSON → `ExportTraceServiceRequest` bytes, following the OTLP spec's JSON deviations.

OTLP JSON differs from the proto3 JSON mapping in one way that matters here: trace/span ids are
hex strings, not base64. They are rewritten to base64 in place, then `json_format` does the rest
(lowerCamelCase or original field names, enums as integers, 64-bit integers as strings or numbers,
unknown fields ignored). An id that is not hex becomes empty, so only that span is rejected
(partial success) instead of the whole request. Plain documents take the faster direct builder in
`otlp_json_fast`; anything unusual goes through `json_format`, which has the final word.

Where `json_format` would change bad input silently, both paths do the same stricter thing: a span
kind or status code beyond int32 is stored at the nearest int32 end (and marked unknown by the
decoder) instead of keeping its low 32 bits, and a `bytesValue` that is not base64 is a 400 instead
of empty bytes. A document nested too deeply for the parser is a 400 with that reason, not a crash.
"""

from __future__ import annotations

import base64
from typing import Any

import msgspec
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from llmscope_collector.errors import InvalidPayload
from llmscope_collector.receiver.otlp_json_fast import NotFast, build_request, clamp_enum, decode_base64

_ID_KEYS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")
_BYTES_KEYS = ("bytesValue", "bytes_value")
_TOO_DEEP = "OTLP/JSON request is nested too deeply for the parser"


def _items(parent: dict[str, Any], *keys: str) -> list[dict[str, Any]]:
    for key in keys:
        value = parent.get(key)
        if isinstance(value, list):
            return [item for item in value if isinstance(item, dict)]
    return []


def _hex_to_base64(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return base64.b64encode(bytes.fromhex(value)).decode("ascii")
    except ValueError:
        return ""


def _rewrite_ids(obj: dict[str, Any]) -> None:
    for key in _ID_KEYS:
        if key in obj:
            obj[key] = _hex_to_base64(obj[key])


def _clamp_enum(obj: Any, key: str) -> None:
    value = obj.get(key) if isinstance(obj, dict) else None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        obj[key] = clamp_enum(value)


def _rewrite_request(doc: dict[str, Any]) -> None:
    """Ids hex → base64, and enum numbers within int32, for `json_format`."""
    for resource_spans in _items(doc, "resourceSpans", "resource_spans"):
        for scope_spans in _items(resource_spans, "scopeSpans", "scope_spans"):
            for span in _items(scope_spans, "spans"):
                _rewrite_ids(span)
                _clamp_enum(span, "kind")
                _clamp_enum(span.get("status"), "code")
                for link in _items(span, "links"):
                    _rewrite_ids(link)


def _check_bytes_values(node: Any) -> None:
    """`decode_base64` on every `bytesValue` in the document (json_format would accept any text)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _BYTES_KEYS and isinstance(value, str):
                decode_base64(value)
            else:
                _check_bytes_values(value)
    elif isinstance(node, list):
        for item in node:
            _check_bytes_values(item)


def json_to_protobuf(body: bytes) -> bytes:
    """Serialized protobuf request for an OTLP/JSON body; `InvalidPayload` with the reason otherwise."""
    if not body.strip():
        return b""
    try:
        doc = msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise InvalidPayload(f"request body is not valid UTF-8 JSON: {exc}") from None
    except RecursionError:
        raise InvalidPayload(_TOO_DEEP) from None
    if not isinstance(doc, dict):
        raise InvalidPayload("an OTLP/JSON request must be a JSON object with 'resourceSpans'")
    try:
        return bytes(build_request(doc).SerializeToString())
    except (NotFast, ValueError, TypeError, OverflowError, RecursionError):
        pass  # not the plain documented shape: let json_format decide (same result, or the error)
    return _via_json_format(doc)


def _via_json_format(doc: dict[str, Any]) -> bytes:
    message = ExportTraceServiceRequest()
    try:
        _check_bytes_values(doc)
        _rewrite_request(doc)
        json_format.ParseDict(doc, message, ignore_unknown_fields=True)
    except RecursionError:
        raise InvalidPayload(_TOO_DEEP) from None
    except InvalidPayload:
        raise
    except Exception as exc:  # pure conversion of client data: any failure means the data is bad
        raise InvalidPayload(f"not a valid OTLP/JSON ExportTraceServiceRequest: {exc}") from None
    return bytes(message.SerializeToString())
