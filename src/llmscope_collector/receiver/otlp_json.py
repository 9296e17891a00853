"""OTLP/JSON → `ExportTraceServiceRequest` bytes, following the OTLP spec's JSON deviations.

OTLP JSON differs from the proto3 JSON mapping in one way that matters here: trace/span ids are
hex strings, not base64. They are rewritten to base64 in place, then `json_format` does the rest
(lowerCamelCase or original field names, enums as integers, 64-bit integers as strings or numbers,
unknown fields ignored). An id that is not hex becomes empty, so only that span is rejected
(partial success) instead of the whole request. Plain documents take the faster direct builder in
`otlp_json_fast`; anything unusual goes through `json_format`, which has the final word.
"""

from __future__ import annotations

import base64
from typing import Any

import msgspec
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from llmscope_collector.errors import InvalidPayload
from llmscope_collector.receiver.otlp_json_fast import NotFast, build_request

_ID_KEYS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


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


def _rewrite_request_ids(doc: dict[str, Any]) -> None:
    for resource_spans in _items(doc, "resourceSpans", "resource_spans"):
        for scope_spans in _items(resource_spans, "scopeSpans", "scope_spans"):
            for span in _items(scope_spans, "spans"):
                _rewrite_ids(span)
                for link in _items(span, "links"):
                    _rewrite_ids(link)


def json_to_protobuf(body: bytes) -> bytes:
    """Serialized protobuf request for an OTLP/JSON body; `InvalidPayload` with the reason otherwise."""
    if not body.strip():
        return b""
    try:
        doc = msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise InvalidPayload(f"request body is not valid UTF-8 JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidPayload("an OTLP/JSON request must be a JSON object with 'resourceSpans'")
    try:
        return bytes(build_request(doc).SerializeToString())
    except (NotFast, ValueError, TypeError, OverflowError, RecursionError):
        pass  # not the plain documented shape: let json_format decide (same result, or the error)
    return _via_json_format(doc)


def _via_json_format(doc: dict[str, Any]) -> bytes:
    _rewrite_request_ids(doc)
    message = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(doc, message, ignore_unknown_fields=True)
    except RecursionError:
        raise InvalidPayload("OTLP/JSON request is nested too deeply") from None
    except Exception as exc:  # pure conversion of client data: any failure means the data is bad
        raise InvalidPayload(f"not a valid OTLP/JSON ExportTraceServiceRequest: {exc}") from None
    return bytes(message.SerializeToString())
