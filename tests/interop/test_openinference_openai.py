"""Arize OpenInference's OpenAI instrumentation: `openinference.span.kind=LLM`, `llm.*` names, INTERNAL spans,
flattened `llm.input_messages.N.*` content and the whole request/response as `input.value`/`output.value`."""

from __future__ import annotations

from openinference.instrumentation.openai import OpenAIInstrumentor
from tests.interop.harness import AppPipeline
from tests.interop.scenarios import Bench, Package, check_calls, check_mixed_trace

PACKAGE = Package(
    param="openinference-openai",
    distribution="openinference-instrumentation-openai",
    client="openai",
    instrumentor=OpenAIInstrumentor,
    dialect="OpenInference (Arize)",
)


def test_calls_streams_and_errors(bench: Bench) -> None:
    check_calls(bench)


def test_mixed_trace_with_server_span_and_llmscope_sdk(bench: Bench, front: AppPipeline) -> None:
    check_mixed_trace(bench, front)
