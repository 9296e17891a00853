"""OpenLLMetry's (Traceloop) OpenAI instrumentation: gen_ai.* plus its own extras (`gen_ai.is_streaming`,
`gen_ai.usage.total_tokens`, `gen_ai.openai.api_base`), span names like `openai.chat`."""

from __future__ import annotations

from opentelemetry.instrumentation.openai import OpenAIInstrumentor
from tests.interop.harness import AppPipeline
from tests.interop.scenarios import Bench, Package, check_calls, check_mixed_trace

PACKAGE = Package(
    param="openllmetry-openai",
    distribution="opentelemetry-instrumentation-openai",
    client="openai",
    instrumentor=OpenAIInstrumentor,
    dialect="OpenLLMetry (Traceloop)",
)


def test_calls_streams_and_errors(bench: Bench) -> None:
    check_calls(bench)


def test_mixed_trace_with_server_span_and_llmscope_sdk(bench: Bench, front: AppPipeline) -> None:
    check_mixed_trace(bench, front)
