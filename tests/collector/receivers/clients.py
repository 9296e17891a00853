"""Minimal real clients for the receivers under test: raw gRPC calls and HTTP posts."""

from __future__ import annotations

import time
from typing import Any

import grpc
import httpx
from google.rpc import error_details_pb2, status_pb2

from llmscope_collector.server import EmbeddedServer
from tests import otlp_factory as f

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def grpc_export(
    server: EmbeddedServer,
    payload: bytes,
    *,
    metadata: tuple[tuple[str, str], ...] = (),
    compression: grpc.Compression | None = None,
) -> bytes:
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        call = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
        return call(payload, timeout=10, metadata=metadata, compression=compression)  # type: ignore[no-any-return]


def retry_info(error: grpc.RpcError) -> error_details_pb2.RetryInfo | None:
    """The RetryInfo detail of a failed call's `grpc-status-details-bin`, if any."""
    for key, value in error.trailing_metadata() or ():  # type: ignore[attr-defined]
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.RetryInfo()
                if detail.Unpack(info):
                    return info
    return None


def traces_url(server: EmbeddedServer) -> str:
    return f"http://127.0.0.1:{server.http_port}/v1/traces"


def post(server: EmbeddedServer, body: bytes, content_type: str = "application/x-protobuf", **headers: str) -> Any:
    all_headers = {"content-type": content_type, **{k.replace("_", "-"): v for k, v in headers.items()}}
    return httpx.post(traces_url(server), content=body, headers=all_headers, timeout=10)


def valid_request(spans: int = 2, **attrs: Any) -> bytes:
    trace_id = f.new_trace_id()
    now = time.time_ns()
    built = [f.span(trace_id, f.new_span_id(), f"s{i}", now, now + 1000, attrs=attrs) for i in range(spans)]
    return bytes(f.request(built).SerializeToString())


def metric(server: EmbeddedServer, name: str, **labels: str) -> float:
    """A sample of the server's own registry (what its /metrics shows), 0 if never counted."""
    return server.collector.runtime.metrics.value(name, **labels)


def requests(server: EmbeddedServer, transport: str, outcome: str) -> float:
    return metric(server, "llmscope_ingest_requests_total", transport=transport, outcome=outcome)


def accepted(server: EmbeddedServer, project: str = "default") -> float:
    return metric(server, "llmscope_ingest_spans_accepted_total", project=project)
