"""OpenTelemetry's own OpenAI instrumentation (opentelemetry-python-genai): latest gen_ai.* conventions,
content as JSON `gen_ai.input.messages`/`gen_ai.output.messages` on the span (SPAN_ONLY)."""

from __future__ import annotations

from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor
from tests.interop.harness import AppPipeline
from tests.interop.scenarios import Bench, Package, check_calls, check_mixed_trace

PACKAGE = Package(
    param="otel-genai-openai",
    distribution="opentelemetry-instrumentation-genai-openai",
    client="openai",
    instrumentor=OpenAIInstrumentor,
    dialect="OTel gen_ai (latest)",
)


def test_calls_streams_and_errors(bench: Bench) -> None:
    check_calls(bench)


def test_mixed_trace_with_server_span_and_llmscope_sdk(bench: Bench, front: AppPipeline) -> None:
    check_mixed_trace(bench, front)
