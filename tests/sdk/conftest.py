"""SDK fixtures: an in-memory span exporter, the simulated provider, instrumented clients."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import llmscope_sdk
from llmscope_sdk import _instrumentor, _setup
from llmscope_sim import SimulatedProvider


@pytest.fixture
def sim() -> Iterator[SimulatedProvider]:
    with SimulatedProvider(seed=7) as provider:
        yield provider


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Instrument with a private TracerProvider that records finished spans in memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    llmscope_sdk.uninstrument()
    _setup._provider = None
    llmscope_sdk.configure(tracer_provider=provider)
    llmscope_sdk.instrument()
    try:
        yield exporter
    finally:
        llmscope_sdk.uninstrument()
        _setup._provider = None
        assert not _instrumentor.instrumented()
        provider.shutdown()
