"""Capture llmscope's spans in your own tests (like Logfire's `capfire`).

    from llmscope.testing import capture_spans

    def test_my_agent():
        with capture_spans() as captured:
            my_agent.run("Plan the offsite")       # real client calls, e.g. against llmscope_sim
        (call,) = captured.llm_spans
        assert call.attributes["gen_ai.request.model"] == "claude-sonnet-4-6"

With pytest the same is the `capllmscope` fixture (registered by installing llmscope):

    def test_my_agent(capllmscope):
        my_agent.run("Plan the offsite")
        assert capllmscope.llm_spans

Inside the block llmscope instruments the clients with the options given (as `llmscope.instrument`)
and records its spans in memory instead of exporting them; afterwards the app's llmscope setup (its
provider, and its instrumentation if it had one) is exactly as before. Spans your code starts with
its own OpenTelemetry tracer are not captured; `@llmscope.trace` spans are.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from llmscope_sdk import _attributes as A
from llmscope_sdk._instrumentor import instrumentation_override
from llmscope_sdk._setup import provider_override

__all__ = ["CapturedSpans", "capture_spans", "instrumented_with"]


class CapturedSpans:
    """The spans llmscope ended inside `capture_spans()`, in the order they ended."""

    def __init__(self, exporter: InMemorySpanExporter, methods: list[str]) -> None:
        self._exporter = exporter
        self.methods = methods  # the client methods instrumented, as `llmscope.instrument()` returns them

    @property
    def spans(self) -> list[ReadableSpan]:
        """Every span llmscope recorded (LLM calls and `@llmscope.trace` spans)."""
        return list(self._exporter.get_finished_spans())

    @property
    def llm_spans(self) -> list[ReadableSpan]:
        """Only the LLM client calls (spans with `gen_ai.request.model`)."""
        return [s for s in self.spans if s.kind is trace.SpanKind.CLIENT and A.REQUEST_MODEL in (s.attributes or {})]

    def attributes(self) -> list[dict[str, Any]]:
        """Each span's attributes as a plain dict, for compact assertions."""
        return [dict(s.attributes or {}) for s in self.spans]

    def clear(self) -> None:
        self._exporter.clear()


@contextlib.contextmanager
def instrumented_with(tracer_provider: trace.TracerProvider, **options: Any) -> Iterator[list[str]]:
    """llmscope instruments the clients with spans going to `tracer_provider` inside the block.

    `options` are `llmscope.instrument()`'s; yields the instrumented methods. For tests that bring
    their own provider (e.g. an OTLP exporter to a test collector); the previous setup comes back after.
    """
    with provider_override(tracer_provider), instrumentation_override(**options) as methods:
        yield methods


@contextlib.contextmanager
def capture_spans(**options: Any) -> Iterator[CapturedSpans]:
    """Record llmscope's spans in memory inside the block (`options` as for `llmscope.instrument()`)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        with instrumented_with(provider, **options) as methods:
            yield CapturedSpans(exporter, methods)
    finally:
        provider.shutdown()
