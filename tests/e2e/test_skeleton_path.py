"""One LLM call travels the whole path: real anthropic client → SDK → OTLP/gRPC on 127.0.0.1 →
collector → Parquet → DuckDB → Litestar over real HTTP, and the waterfall matches what the
simulated provider returned."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from llmscope.testing import instrumented_with
from llmscope_collector.server import EmbeddedServer
from llmscope_sim import SimulatedProvider

MODEL = "claude-sonnet-4-6"


@pytest.fixture
def provider(server: EmbeddedServer) -> Iterator[TracerProvider]:
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{server.grpc_port}", insecure=True)
    tp = TracerProvider(resource=Resource.create({"service.name": "e2e-app"}))
    tp.add_span_processor(BatchSpanProcessor(exporter))
    try:
        with instrumented_with(tp):
            yield tp
    finally:
        tp.shutdown()


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def test_sync_and_async_calls_reach_the_waterfall(server: EmbeddedServer, provider: TracerProvider) -> None:
    tracer = provider.get_tracer("e2e")
    with SimulatedProvider(seed=3) as sim:
        client = anthropic.Anthropic(base_url=sim.base_url, api_key="k", max_retries=0)
        aclient = anthropic.AsyncAnthropic(base_url=sim.base_url, api_key="k", max_retries=0)
        with tracer.start_as_current_span("agent") as root:
            first = client.messages.create(model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "one"}])
            second = asyncio.run(
                aclient.messages.create(model=MODEL, max_tokens=60, messages=[{"role": "user", "content": "two"}])
            )
    assert provider.force_flush(10_000)
    server.collector.flush()
    trace_id = format(root.get_span_context().trace_id, "032x")
    body = _get_json(f"{server.api_url}/v1/traces/{trace_id}")

    spans = body["spans"]
    agent = spans[0]
    assert agent["name"] == "agent" and agent["depth"] == 0 and agent["parent_span_id"] is None
    ours = [s for s in spans if s["name"] == f"chat {MODEL}"]
    assert [s["parent_span_id"] for s in ours] == [agent["span_id"]] * 2
    assert [s["depth"] for s in ours] == [1, 1]
    assert agent["children"] == [s["span_id"] for s in ours]
    for span, message in zip(ours, (first, second), strict=True):
        assert span["kind"] == "CLIENT"
        assert span["provider"] == "anthropic"
        assert span["request_model"] == MODEL and span["response_model"] == message.model
        assert span["response_id"] == message.id
        assert span["input_tokens"] == message.usage.input_tokens
        assert span["output_tokens"] == message.usage.output_tokens
        assert span["finish_reasons"] == ["stop"]
        assert 0 <= span["start_offset_ms"] <= body["duration_ms"]
    assert ours[0]["start_offset_ms"] < ours[1]["start_offset_ms"]
    totals = body["totals"]
    assert totals["llm_calls"] == 2
    assert totals["input_tokens"] == first.usage.input_tokens + second.usage.input_tokens
    assert totals["output_tokens"] == first.usage.output_tokens + second.usage.output_tokens


def test_demo_command_prints_a_waterfall(tmp_path: Path) -> None:
    """`llmscope demo --exit` end to end, as a user runs it (ephemeral ports, temp data dir)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "llmscope_collector",
            "demo",
            "--exit",
            "--traces",
            "2",
            "--otlp-grpc-port",
            "0",
            "--otlp-http-port",
            "0",
            "--api-port",
            "0",
            "--data-dir",
            str(tmp_path / "data"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "invoke_agent planner" in out and f"chat {MODEL}" in out
    assert "3 LLM calls" in out and "2 demo traces stored" in out
    assert list((tmp_path / "data" / "spans").glob("project=default/date=*/*.parquet"))


def test_port_in_use_is_a_clear_error(server: EmbeddedServer, tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "llmscope_collector",
            "serve",
            "--otlp-grpc-port",
            str(server.grpc_port),
            "--otlp-http-port",
            "0",
            "--api-port",
            "0",
            "--data-dir",
            str(tmp_path / "d2"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert f"127.0.0.1:{server.grpc_port} (otlp_grpc_port) is not available" in proc.stderr
