"""One normalization table for all dialects: each case is (dialect attributes → canonical columns)."""

from __future__ import annotations

from typing import Any

import pytest

from llmscope_collector.processors.normalize import canonical_genai

CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "otel-current",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-x",
            "gen_ai.usage.input_tokens": 120,
            "gen_ai.usage.output_tokens": 30,
            "gen_ai.usage.cache_read.input_tokens": 100,
            "gen_ai.usage.cache_creation.input_tokens": 0,
            "gen_ai.response.finish_reasons": ["stop"],
        },
        {
            "operation": "chat",
            "provider": "anthropic",
            "request_model": "claude-x",
            "input_tokens": 120,
            "output_tokens": 30,
            "cache_read_tokens": 100,
            "cache_write_tokens": 0,
            "finish_reasons": ["stop"],
        },
    ),
    (
        "otel-deprecated-names",
        {"gen_ai.system": "az.ai.openai", "gen_ai.usage.prompt_tokens": 5, "gen_ai.usage.completion_tokens": 2},
        {"provider": "azure.ai.openai", "input_tokens": 5, "output_tokens": 2},
    ),
    (
        "otel-latest-cache-write",
        {"gen_ai.usage.cache_write.input_tokens": 64},
        {"cache_write_tokens": 64},
    ),
    (
        "openinference",
        {
            "openinference.span.kind": "LLM",
            "llm.provider": "openai",
            "llm.model_name": "gpt-4o",
            "llm.token_count.prompt": 50,
            "llm.token_count.completion": 9,
            "llm.token_count.prompt_details.cache_read": 40,
            "session.id": "s1",
            "user.id": "u1",
        },
        {
            "operation": "chat",
            "provider": "openai",
            "request_model": "gpt-4o",
            "response_model": "gpt-4o",
            "input_tokens": 50,
            "output_tokens": 9,
            "cache_read_tokens": 40,
            "session_id": "s1",
            "user_id": "u1",
        },
    ),
    (
        "openllmetry-old",
        {
            "llm.request.type": "chat",
            "gen_ai.system": "Anthropic".lower(),
            "gen_ai.usage.prompt_tokens": 11,
            "gen_ai.usage.cache_read_input_tokens": 3,
            "llm.is_streaming": True,
            "traceloop.association.properties.session_id": "conv-9",
        },
        {
            "operation": "chat",
            "provider": "anthropic",
            "input_tokens": 11,
            "cache_read_tokens": 3,
            "is_stream": True,
            "session_id": "conv-9",
        },
    ),
    (
        "explicit-wins-over-alias",
        {
            "gen_ai.provider.name": "openai",
            "gen_ai.system": "anthropic",
            "gen_ai.operation.name": "embeddings",
            "openinference.span.kind": "LLM",
        },
        {"provider": "openai", "operation": "embeddings"},
    ),
    (
        "not-genai",
        {"http.route": "/orders", "http.response.status_code": 200},
        {"operation": None, "provider": None, "input_tokens": None},
    ),
    (
        "finish-reason-string-and-json",
        {"llm.finish_reason": "length"},
        {"finish_reasons": ["length"]},
    ),
    (
        "bad-token-types-are-dropped-not-crashing",
        {"gen_ai.usage.input_tokens": "abc", "gen_ai.usage.output_tokens": True},
        {"input_tokens": None, "output_tokens": None},
    ),
]


@pytest.mark.parametrize(("attrs", "expected"), [(a, e) for _, a, e in CASES], ids=[c[0] for c in CASES])
def test_dialect_maps_to_canonical(attrs: dict[str, Any], expected: dict[str, Any]) -> None:
    out = canonical_genai(attrs)
    assert {k: out[k] for k in expected} == expected
