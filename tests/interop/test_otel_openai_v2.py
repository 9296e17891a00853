"""The older contrib `openai-v2` instrumentation in its default mode (no OTEL_SEMCONV_STABILITY_OPT_IN):
deprecated `gen_ai.system`, content only as log events (which a traces backend never receives)."""

from __future__ import annotations

from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from tests.interop.harness import AppPipeline
from tests.interop.scenarios import Bench, Package, check_calls, check_mixed_trace

PACKAGE = Package(
    param="otel-openai-v2",
    distribution="opentelemetry-instrumentation-openai-v2",
    client="openai",
    instrumentor=OpenAIInstrumentor,
    dialect="OTel gen_ai (v1.30, default mode)",
)


def test_calls_streams_and_errors(bench: Bench) -> None:
    check_calls(bench)


def test_mixed_trace_with_server_span_and_llmscope_sdk(bench: Bench, front: AppPipeline) -> None:
    check_mixed_trace(bench, front)
