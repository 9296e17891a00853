"""Instrumentation never changes what the user's call returns or raises, and a dead collector, a
full export queue or a failing exporter never reaches the user's call."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any

import anthropic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import llmscope_sdk
from llmscope.testing import instrumented_with
from llmscope_sim import SimulatedProvider

MODEL = "claude-sonnet-4-6"
TOOLS = [{"name": "lookup", "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}]

words = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=40)
requests = st.fixed_dictionaries(
    {
        "max_tokens": st.integers(1, 120),
        "messages": st.lists(words, min_size=1, max_size=3).map(
            lambda texts: (
                [{"role": "user", "content": t} for t in texts[:1]]
                + [
                    m
                    for i, t in enumerate(texts[1:])
                    for m in ({"role": "assistant", "content": f"ok {i}"}, {"role": "user", "content": t})
                ]
            )
        ),
    },
    optional={
        "stop_sequences": st.lists(st.sampled_from(["alpha", "beta", "the"]), max_size=2),
        "system": words,
        "tools": st.just(TOOLS),
        "extra_headers": st.sampled_from([{"x-sim-error": "400"}, {"x-sim-error": "500"}, {"x-sim-error": "429"}]),
    },
)


def _outcome(client: anthropic.Anthropic, request: dict[str, Any]) -> tuple[str, Any]:
    try:
        return "ok", client.messages.create(model=MODEL, **request).model_dump()
    except anthropic.APIStatusError as exc:
        return type(exc).__name__, (exc.status_code, exc.message, exc.body)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=requests)
def test_identical_results_and_errors_with_and_without(
    sim: SimulatedProvider, spans: Any, request: dict[str, Any]
) -> None:
    client = anthropic.Anthropic(base_url=sim.base_url, api_key="k", max_retries=0)
    llmscope_sdk.instrument()
    with_instrumentation = _outcome(client, request)
    llmscope_sdk.uninstrument()
    without = _outcome(client, request)
    assert with_instrumentation == without


class _ExplodingExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        raise RuntimeError("exporter is broken")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_dead_collector_full_queue_and_broken_exporter_never_reach_the_call(sim: SimulatedProvider) -> None:
    provider = TracerProvider()
    dead = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{_closed_port()}", insecure=True, timeout=1)
    provider.add_span_processor(
        BatchSpanProcessor(dead, max_queue_size=2, max_export_batch_size=1, schedule_delay_millis=10)
    )
    provider.add_span_processor(BatchSpanProcessor(_ExplodingExporter(), max_queue_size=2, max_export_batch_size=1))
    try:
        with instrumented_with(provider):
            client = anthropic.Anthropic(base_url=sim.base_url, api_key="k", max_retries=0)
            results = [
                client.messages.create(model=MODEL, max_tokens=5, messages=[{"role": "user", "content": f"m{i}"}])
                for i in range(30)
            ]
            assert len({r.id for r in results}) == 30
            llmscope_sdk.flush(timeout_s=0.5)  # bounded even though nothing can be delivered
    finally:
        provider.shutdown()
