"""Proxy fixtures: the simulated provider upstream, a proxy whose spans are captured in memory, and
`llmscope serve --proxy-port` (in process) for end-to-end checks through the collector and API."""

from __future__ import annotations

import dataclasses
import json
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from llmscope_collector.server import EmbeddedServer
from llmscope_collector.settings import Settings
from llmscope_proxy import ProxyConfig, ProxyServer
from llmscope_sim import SimulatedProvider


def any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


class CapturedSpans:
    """A proxy sink that keeps every span it is handed, with the credentials it came with."""

    def __init__(self) -> None:
        self.items: list[tuple[Any, dict[str, Any], dict[str, str]]] = []

    def __call__(self, payload: bytes, credentials: Mapping[str, str]) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(payload)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    attrs = {a.key: any_value(a.value) for a in span.attributes}
                    self.items.append((span, attrs, dict(credentials)))

    def attributes(self) -> list[dict[str, Any]]:
        return [attrs for _, attrs, _ in self.items]


@pytest.fixture
def sim() -> Iterator[SimulatedProvider]:
    with SimulatedProvider(seed=7) as provider:
        yield provider


@pytest.fixture
def captured() -> CapturedSpans:
    return CapturedSpans()


@pytest.fixture
def proxy(sim: SimulatedProvider, captured: CapturedSpans) -> Iterator[ProxyServer]:
    config = ProxyConfig(openai_base_url=sim.base_url + "/v1", anthropic_base_url=sim.base_url, capture_content=True)
    with ProxyServer(config, captured, lambda _credentials: None, host="127.0.0.1", port=0) as server:
        yield server


@pytest.fixture
def proxied(settings: Settings, sim: SimulatedProvider) -> Iterator[EmbeddedServer]:
    """`llmscope serve --proxy-port 0` with the simulated provider as both upstreams."""
    config = dataclasses.replace(
        settings,
        proxy_port=0,
        proxy_openai_base_url=sim.base_url + "/v1",
        proxy_anthropic_base_url=sim.base_url,
        proxy_capture_content=True,
    )
    server = EmbeddedServer(config)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def stored_trace(server: EmbeddedServer, trace_id: str, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Flush the proxy's spans and the collector, then read the trace back over the API."""
    assert server.proxy is not None
    assert server.proxy.recorder.flush(10)
    server.collector.flush()
    request = urllib.request.Request(f"{server.api_url}/v1/traces/{trace_id}", headers=dict(headers or {}))
    with urllib.request.urlopen(request, timeout=10) as response:
        body: dict[str, Any] = json.loads(response.read())
    return body
