"""Bad or oversized OTLP input is refused with a reason or stored marked, never changed silently (issue 15).

End to end: real sockets, the collector's decode workers, and the stored trace read back through the API.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from llmscope_collector.processors import limits
from llmscope_collector.server import EmbeddedServer
from tests import otlp_factory as f
from tests.collector.receivers.clients import grpc_export, metric, post, requests, traces_url


def _json_span(trace_id: str, **fields: Any) -> dict[str, Any]:
    now = time.time_ns()
    span = {"traceId": trace_id, "spanId": "eee19b7ec3c1b174", "name": "s", "startTimeUnixNano": now}
    return {"resourceSpans": [{"scopeSpans": [{"spans": [{**span, "endTimeUnixNano": now + 1, **fields}]}]}]}


def _stored_span(server: EmbeddedServer, trace_id: str) -> dict[str, Any]:
    server.collector.flush()
    response = httpx.get(f"{server.api_url}/v1/traces/{trace_id}", timeout=30)
    assert response.status_code == 200, response.text
    (span,) = response.json()["spans"]
    detail = httpx.get(f"{server.api_url}/v1/spans/{trace_id}/{span['span_id']}", timeout=30)
    assert detail.status_code == 200, detail.text
    return detail.json()  # type: ignore[no-any-return]


def test_deeply_nested_json_is_400_with_a_reason(server: EmbeddedServer) -> None:
    """Issue 15.6: a 2 KB document nested 1000 deep was a 500 (RecursionError)."""
    body = b'{"resourceSpans":' + b"[" * 1000 + b"]" * 1000 + b"}"
    response = post(server, body, "application/json")
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["message"]
    value = "1"
    for _ in range(1000):  # the same depth inside an attribute value
        value = '{"arrayValue":{"values":[' + value + "]}}"
    prefix, suffix = '{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"a","value":', "}]}]}]}]}"
    response = post(server, (prefix + value + suffix).encode(), "application/json")
    assert response.status_code == 400 and "nested too deeply" in response.json()["message"]
    assert requests(server, "http", "internal_error") == 0


def test_span_kind_beyond_32_bits_is_stored_marked(server: EmbeddedServer) -> None:
    """Issue 15.10: `"kind": 1099511627776` was stored as UNSPECIFIED with no mark (its low 32 bits, 0)."""
    trace_id = f.new_trace_id().hex()
    doc = _json_span(trace_id, kind=1099511627776, status={"code": 2**40})
    assert httpx.post(traces_url(server), json=doc, timeout=10).status_code == 200
    span = _stored_span(server, trace_id)
    assert span["attributes"][limits.UNKNOWN_KIND] == 2**31 - 1
    assert span["attributes"][limits.UNKNOWN_STATUS] == 2**31 - 1
    assert span["kind"] == "UNSPECIFIED"


def test_bytes_value_that_is_not_base64_is_400(server: EmbeddedServer) -> None:
    """Issue 15.10: `"bytesValue": "!!!"` was stored as empty bytes with a 200."""
    for value in ("!!!", "YWJj\n", "Y"):
        doc = _json_span(f.new_trace_id().hex(), attributes=[{"key": "b", "value": {"bytesValue": value}}])
        response = httpx.post(traces_url(server), json=doc, timeout=10)
        assert response.status_code == 400, value
        assert "is not base64" in response.json()["message"]
    for value, stored in (("YWJj", "YWJj"), ("YWI", "YWI="), ("_-8", "/+8=")):  # padded or not, URL-safe too
        trace_id = f.new_trace_id().hex()
        doc = _json_span(trace_id, attributes=[{"key": "b", "value": {"bytesValue": value}}])
        assert httpx.post(traces_url(server), json=doc, timeout=10).status_code == 200
        assert _stored_span(server, trace_id)["attributes"]["b"] == stored


def test_names_keys_and_event_counts_are_limited_marked_and_counted(server: EmbeddedServer) -> None:
    """Issue 15.11: a 10 MiB span name, a 2 MiB attribute key and 50,000 events were stored whole, unmarked."""
    trace_id, now = f.new_trace_id(), time.time_ns()
    span = f.span(trace_id, f.new_span_id(), "n" * (10 * 1024 * 1024), now, now + 1000, attrs={"k" * (2 << 20): 1})
    for i in range(50_000):
        event = span.events.add()
        event.name, event.time_unix_nano = f"e{i}", now
    event = span.events[0]
    event.name = "é" * 5000  # 10,000 bytes, over the 4096 byte name limit; cut at a character boundary
    event.attributes.add(key="x" * 5000).value.int_value = 1
    marked = {reason: _marked(server, reason) for reason in _REASONS}
    grpc_export(server, f.request([span]).SerializeToString())
    stored = _stored_span(server, trace_id.hex())
    max_name = limits.SpanLimits().max_name_bytes
    assert stored["name"] == "n" * max_name
    attributes = stored["attributes"]
    assert attributes["k" * max_name] == 1 and not any(len(key) > max_name for key in attributes)
    assert attributes[limits.TRUNCATED_NAME] is True and attributes[limits.TRUNCATED_KEYS] == 2
    assert attributes[limits.TRUNCATED_EVENT_NAMES] == 1
    assert attributes[limits.DROPPED_EVENTS] == 50_000 - limits.SpanLimits().max_events
    events = stored["events"]
    assert len(events) == limits.SpanLimits().max_events and events[1]["name"] == "e1"
    assert events[0]["name"] == "é" * (max_name // 2) and list(events[0]["attributes"]) == ["x" * max_name]
    assert all(_marked(server, reason) == marked[reason] + 1 for reason in _REASONS)  # counted once each


_REASONS = ("truncated_name", "truncated_key", "truncated_event_name", "dropped_events")


def _marked(server: EmbeddedServer, reason: str) -> float:
    return metric(server, "llmscope_ingest_spans_marked_total", reason=reason)


def test_error_messages_quote_a_bounded_part_of_a_span_name(server: EmbeddedServer) -> None:
    span = f.span(b"\0" * 16, f.new_span_id(), "n" * 1_000_000, 1, 2)  # rejected: zero trace id
    response = post(server, f.request([span]).SerializeToString())
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 1 and len(answer.partial_success.error_message) < 200
