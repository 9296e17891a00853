"""`/metrics` publishes ingest and API figures; `X-Request-ID` is echoed or generated; JSON logs."""

from __future__ import annotations

import io
import json
import logging

import httpx

from llmscope_collector.log_config import REQUEST_ID, JsonFormatter
from llmscope_collector.prometheus_text import Counter, Histogram
from llmscope_collector.server import EmbeddedServer
from tests.collector.receivers.clients import grpc_export, post, valid_request


def test_metrics_endpoint_reports_ingest_and_http(server: EmbeddedServer) -> None:
    grpc_export(server, valid_request(2))
    post(server, b"garbage")
    httpx.get(server.api_url + "/v1/traces/zz", timeout=10)
    text = httpx.get(server.api_url + "/metrics", timeout=10).text
    assert 'llmscope_ingest_spans_accepted_total{project="default"} 2' in text
    assert 'llmscope_ingest_requests_total{transport="http",outcome="invalid"} 1' in text
    assert 'llmscope_ingest_requests_total{transport="grpc",outcome="accepted"} 1' in text
    assert 'llmscope_http_requests_total{method="GET",route="/v1/traces/{trace_id}",status="400"} 1' in text
    assert (
        'llmscope_http_request_duration_seconds_bucket{method="GET",route="/v1/traces/{trace_id}",le="+Inf"} 1' in text
    )
    assert "llmscope_http_requests_in_flight 1" in text  # the /metrics request itself


def test_request_id_is_echoed_when_sane_and_generated_otherwise(server: EmbeddedServer) -> None:
    given = httpx.get(server.api_url + "/health", headers={"x-request-id": "abc-123"}, timeout=10)
    assert given.headers["x-request-id"] == "abc-123"
    for bad in ("", "x" * 200, "a b"):
        generated = httpx.get(server.api_url + "/health", headers={"x-request-id": bad}, timeout=10)
        assert len(generated.headers["x-request-id"]) == 32
    missing = httpx.get(server.api_url + "/nope", timeout=10)
    assert missing.status_code == 404 and len(missing.headers["x-request-id"]) == 32


def test_json_log_lines_carry_the_request_id() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.jsonlog")
    logger.addHandler(handler)
    token = REQUEST_ID.set("rid-1")
    try:
        record = logger.makeRecord("test.jsonlog", logging.WARNING, __file__, 1, "hello %s", ("x",), None)
        record.request_id = REQUEST_ID.get()
        record.status = 201
        handler.handle(record)
    finally:
        REQUEST_ID.reset(token)
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert line["message"] == "hello x" and line["request_id"] == "rid-1" and line["status"] == 201
    assert line["level"] == "WARNING" and line["ts"].endswith("+00:00")


def test_text_format_escapes_and_accumulates() -> None:
    counter = Counter("c_total", "help", ("l",))
    counter.inc('a"b\\c\nd', amount=2)
    assert 'c_total{l="a\\"b\\\\c\\nd"} 2' in counter.render()
    histogram = Histogram("h", "help", buckets=(1.0, 2.0))
    for value in (0.5, 1.5, 3.0):
        histogram.observe(value)
    lines = histogram.render()
    assert 'h_bucket{le="1"} 1' in lines and 'h_bucket{le="2"} 2' in lines and 'h_bucket{le="+Inf"} 3' in lines
    assert "h_sum 5" in lines and "h_count 3" in lines
