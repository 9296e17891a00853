"""The stock OpenTelemetry exporters (OTLP/HTTP protobuf and OTLP/gRPC, gzip, auth header) against a
real collector: spans are accepted, stamped with the key's project, and stored in its partition."""

from __future__ import annotations

import dataclasses

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter

from llmscope_collector.server import EmbeddedServer
from llmscope_collector.settings import Settings
from tests.collector.receivers.clients import accepted, requests


def _send(exporter: SpanExporter, name: str) -> str:
    provider = TracerProvider(resource=Resource.create({"service.name": "exporter-test"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("e2e").start_as_current_span(name, attributes={"gen_ai.request.model": "m"}) as span:
        trace_id = format(span.get_span_context().trace_id, "032x")
    provider.shutdown()
    return trace_id


def test_stock_exporters_with_api_key_land_in_the_keys_project(settings: Settings) -> None:
    with EmbeddedServer(dataclasses.replace(settings, auth="required")) as server:
        store = server.collector.receivers.auth_store
        store.create_project("team-a")
        _, key = store.create_key("team-a")
        headers = {"authorization": f"Bearer {key}"}
        http = HttpExporter(
            endpoint=f"http://127.0.0.1:{server.http_port}/v1/traces",
            headers=headers,
            compression=HttpCompression.Gzip,
        )
        grpc_exporter = GrpcExporter(endpoint=f"127.0.0.1:{server.grpc_port}", insecure=True, headers=headers)
        trace_ids = {_send(http, "via-http"), _send(grpc_exporter, "via-grpc")}
        assert accepted(server, "team-a") == 2
        assert requests(server, "http", "accepted") == 1 and requests(server, "grpc", "accepted") == 1
        server.collector.flush()
        files = list((server.settings.data_dir / "spans").glob("project=team-a/date=*/*.parquet"))
        assert files and not list((server.settings.data_dir / "spans").glob("project=default/*/*.parquet"))
        for trace_id in trace_ids:
            assert server.store.get_trace(trace_id, "team-a") is not None
            assert server.store.get_trace(trace_id) is None  # not visible from another project


def test_stock_http_exporter_without_key_is_refused_not_retried_forever(settings: Settings) -> None:
    with EmbeddedServer(dataclasses.replace(settings, auth="required")) as server:
        http = HttpExporter(endpoint=f"http://127.0.0.1:{server.http_port}/v1/traces", timeout=5)
        _send(http, "no-key")
        assert requests(server, "http", "unauthenticated") == 1
