"""Arize OpenInference's Anthropic instrumentation: `llm.provider`/`llm.system`, `llm.token_count.*` (prompt
includes cache tokens), `llm.finish_reason` as Anthropic says it (`end_turn`)."""

from __future__ import annotations

from openinference.instrumentation.anthropic import AnthropicInstrumentor
from tests.interop.harness import AppPipeline
from tests.interop.scenarios import Bench, Package, check_calls, check_mixed_trace

PACKAGE = Package(
    param="openinference-anthropic",
    distribution="openinference-instrumentation-anthropic",
    client="anthropic",
    instrumentor=AnthropicInstrumentor,
    dialect="OpenInference (Arize)",
)


def test_calls_streams_and_errors(bench: Bench) -> None:
    check_calls(bench)


def test_mixed_trace_with_server_span_and_llmscope_sdk(bench: Bench, front: AppPipeline) -> None:
    check_mixed_trace(bench, front)
