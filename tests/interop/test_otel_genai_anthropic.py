"""OpenTelemetry's own Anthropic instrumentation (opentelemetry-python-genai): latest gen_ai.* conventions,
including `gen_ai.usage.cache_write.input_tokens` (the rename of cache_creation)."""

from __future__ import annotations

from opentelemetry.instrumentation.genai.anthropic import AnthropicInstrumentor
from tests.interop.harness import AppPipeline
from tests.interop.scenarios import Bench, Package, check_calls, check_mixed_trace

PACKAGE = Package(
    param="otel-genai-anthropic",
    distribution="opentelemetry-instrumentation-genai-anthropic",
    client="anthropic",
    instrumentor=AnthropicInstrumentor,
    dialect="OTel gen_ai (latest)",
)


def test_calls_streams_and_errors(bench: Bench) -> None:
    check_calls(bench)


def test_mixed_trace_with_server_span_and_llmscope_sdk(bench: Bench, front: AppPipeline) -> None:
    check_mixed_trace(bench, front)
