"""The OTLP/gRPC receiver over a real socket: valid export, partial success, malformed bodies."""

from __future__ import annotations

import json
import time
import urllib.request

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from llmscope_collector.server import EmbeddedServer
from tests import otlp_factory as f

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def _export(server: EmbeddedServer, payload: bytes) -> ExportTraceServiceResponse:
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        call = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
        raw = call(payload, timeout=10)
    return ExportTraceServiceResponse.FromString(raw)


def _get(server: EmbeddedServer, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(server.api_url + path, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _two_span_request(trace_id: bytes) -> bytes:
    root, child = f.new_span_id(), f.new_span_id()
    now = time.time_ns()
    spans = [
        f.span(trace_id, root, "root", now, now + 50_000_000),
        f.span(
            trace_id,
            child,
            "chat m",
            now + 10_000_000,
            now + 40_000_000,
            parent=root,
            kind=3,
            attrs={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.input_tokens": 12,
                "gen_ai.usage.output_tokens": 7,
            },
        ),
    ]
    return f.request(spans).SerializeToString()


def test_export_is_stored_and_queryable(server: EmbeddedServer) -> None:
    trace_id = f.new_trace_id()
    response = _export(server, _two_span_request(trace_id))
    assert not response.HasField("partial_success")
    server.collector.flush()
    status, body = _get(server, f"/v1/traces/{trace_id.hex()}")
    assert status == 200
    assert [s["name"] for s in body["spans"]] == ["root", "chat m"]
    assert body["spans"][1]["input_tokens"] == 12 and body["spans"][1]["depth"] == 1


def test_truncated_protobuf_is_invalid_argument_and_server_keeps_serving(server: EmbeddedServer) -> None:
    payload = _two_span_request(f.new_trace_id())
    with pytest.raises(grpc.RpcError) as info:
        _export(server, payload[: len(payload) // 2])
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "ExportTraceServiceRequest" in (info.value.details() or "")
    # The same server still accepts a valid request afterwards.
    trace_id = f.new_trace_id()
    _export(server, _two_span_request(trace_id))
    server.collector.flush()
    assert _get(server, f"/v1/traces/{trace_id.hex()}")[0] == 200


def test_spans_with_bad_ids_are_rejected_individually(server: EmbeddedServer) -> None:
    trace_id = f.new_trace_id()
    now = time.time_ns()
    good = f.span(trace_id, f.new_span_id(), "good", now, now + 1000)
    bad_trace = f.span(b"\x00" * 16, f.new_span_id(), "zero-trace", now, now + 1000)
    short_span = f.span(trace_id, b"\x01\x02", "short-span-id", now, now + 1000)
    response = _export(server, f.request([good, bad_trace, short_span]).SerializeToString())
    assert response.partial_success.rejected_spans == 2
    assert "zero-trace" in response.partial_success.error_message
    server.collector.flush()
    status, body = _get(server, f"/v1/traces/{trace_id.hex()}")
    assert status == 200 and [s["name"] for s in body["spans"]] == ["good"]


def test_empty_request_succeeds(server: EmbeddedServer) -> None:
    response = _export(server, b"")
    assert not response.HasField("partial_success")
