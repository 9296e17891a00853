"""`/metrics` publishes ingest and API figures; `X-Request-ID` is echoed or generated; JSON logs."""

from __future__ import annotations

import io
import json
import logging

import httpx

from llmscope_collector.log_config import REQUEST_ID, JsonFormatter
from llmscope_collector.server import EmbeddedServer
from tests.collector.receivers.clients import grpc_export, post, valid_request


def test_metrics_endpoint_reports_ingest_and_http(server: EmbeddedServer) -> None:
    grpc_export(server, valid_request(2))
    post(server, b"garbage")
    httpx.get(server.api_url + "/v1/traces/zz", timeout=10)
    text = httpx.get(server.api_url + "/metrics", timeout=10).text
    assert 'llmscope_ingest_spans_accepted_total{project="default"} 2.0' in text
    assert 'llmscope_ingest_requests_total{outcome="invalid",transport="http"} 1.0' in text
    assert 'llmscope_ingest_requests_total{outcome="accepted",transport="grpc"} 1.0' in text
    assert 'llmscope_http_requests_total{method="GET",route="/v1/traces/{trace_id}",status="400"} 1.0' in text
    assert (
        'llmscope_http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/v1/traces/{trace_id}"} 1.0'
        in text
    )
    assert "llmscope_http_requests_in_flight 1.0" in text  # the /metrics request itself
    assert "llmscope_wal_records_appended_total 1.0" in text  # read from the WAL at scrape time


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
