"""OpenLLMetry's (Traceloop) Anthropic instrumentation: gen_ai.* with `gen_ai.usage.cache_creation.input_tokens`,
span names like `anthropic.chat`."""

from __future__ import annotations

from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor
from tests.interop.harness import AppPipeline
from tests.interop.scenarios import Bench, Package, check_calls, check_mixed_trace

PACKAGE = Package(
    param="openllmetry-anthropic",
    distribution="opentelemetry-instrumentation-anthropic",
    client="anthropic",
    instrumentor=AnthropicInstrumentor,
    dialect="OpenLLMetry (Traceloop)",
)


def test_calls_streams_and_errors(bench: Bench) -> None:
    check_calls(bench)


def test_mixed_trace_with_server_span_and_llmscope_sdk(bench: Bench, front: AppPipeline) -> None:
    check_mixed_trace(bench, front)
