"""One normalization table for all dialects: each case is (dialect attributes → canonical columns)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmscope_collector.processors import normalize
from llmscope_collector.processors.normalize import GENAI_COLUMNS, canonical_genai


@pytest.fixture(autouse=True, scope="module", params=["native", "python"])
def _plan_path(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test here on both ways a span's plan is applied: the C extension's `apply_plan` (when built)
    and the pure-Python path (test_genai_plan_native.py holds the two equal on arbitrary attributes)."""
    if request.param == "native" and not normalize.NATIVE:
        pytest.skip("the C extension is not built")
    with pytest.MonkeyPatch.context() as patch:
        if request.param == "python":
            patch.setattr(normalize, "_apply_plan", normalize._python_apply_plan)
        yield


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
            "gen_ai.usage.input_tokens": 4,
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


CASES += [
    (
        "prompt-identity-all-dialects",
        {"gen_ai.prompt.name": "triage", "gen_ai.prompt.version": "3"},
        {"prompt_name": "triage", "prompt_version": "3"},
    ),
    (
        "openinference-prompt-template-and-tags",
        {"llm.prompt_template.version": "v7", "tag.tags": '["a", "b"]', "metadata": '{"team": "ml", "n": 3}'},
        {"prompt_version": "v7", "tags": ["a", "b"], "metadata": [("n", "3"), ("team", "ml")]},
    ),
    (
        "traceloop-prompt-and-association",
        {
            "traceloop.prompt.key": "summarize",
            "traceloop.prompt.version": 2,
            "traceloop.association.properties.user_id": "u7",
            "traceloop.association.properties.tenant": "acme",
        },
        {"prompt_name": "summarize", "prompt_version": "2", "user_id": "u7", "metadata": [("tenant", "acme")]},
    ),
    (
        "llmscope-sdk-attributes",
        {
            "llmscope.tags": ["beta", "beta", "eu"],
            "llmscope.metadata.plan": "pro",
            "llmscope.stream.ended_by": "break",
            "llmscope.span.kind": "tool",
        },
        {"tags": ["beta", "eu"], "metadata": [("plan", "pro")], "stream_ended_by": "break", "span_type": "tool"},
    ),
    (
        "totals-explicit-and-derived",
        {"gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 4},
        {"total_tokens": 14},
    ),
    (
        "openinference-total-and-reasoning",
        {"llm.token_count.total": 99, "llm.token_count.completion_details.reasoning": 12},
        {"total_tokens": 99, "reasoning_tokens": 12},
    ),
    (
        "finish-reasons-normalized",
        {"gen_ai.completion.0.finish_reason": "end_turn", "gen_ai.completion.1.finish_reason": "tool_use"},
        {"finish_reasons": ["stop", "tool_call"]},
    ),
    (
        "openinference-provider-pairs",
        {"llm.provider": "azure", "llm.system": "openai", "llm.invocation_parameters": '{"model": "gpt-x"}'},
        {"provider": "azure.ai.openai", "request_model": "gpt-x"},
    ),
    (
        "traceloop-kinds-tool-and-agent",
        {"traceloop.span.kind": "tool", "traceloop.entity.name": "search"},
        {"operation": "execute_tool", "tool_name": "search", "agent_name": None},
    ),
    (
        "openinference-tool-and-agent",
        {"openinference.span.kind": "AGENT", "agent.name": "planner", "tool.id": "call_1"},
        {"operation": "invoke_agent", "agent_name": "planner", "tool_call_id": "call_1"},
    ),
    (
        "openinference-completions-api",
        {"openinference.span.kind": "LLM", "llm.prompts.0.prompt.text": "hi", "llm.choices.0.completion.text": "yo"},
        {"operation": "text_completion"},
    ),
    (
        "server-address-from-api-base",
        {"gen_ai.openai.api_base": "https://example.openai.azure.com/v1"},
        {"server_address": "example.openai.azure.com"},
    ),
    (
        "stream-from-invocation-parameters",
        {"llm.invocation_parameters": '{"stream": true}'},
        {"is_stream": True},
    ),
]


CASES += [
    (
        "openinference-response-id-from-output-value",
        {"openinference.span.kind": "LLM", "output.value": '{"id": "chatcmpl-1", "model": "gpt-4o"}'},
        {"response_id": "chatcmpl-1"},
    ),
    (
        "output-value-id-only-on-llm-spans",
        {"openinference.span.kind": "CHAIN", "output.value": '{"id": "row-7"}'},
        {"response_id": None},
    ),
    (
        "explicit-response-id-wins-over-output-value",
        {"gen_ai.response.id": "r-1", "openinference.span.kind": "LLM", "output.value": '{"id": "r-2"}'},
        {"response_id": "r-1"},
    ),
]


@pytest.mark.parametrize(("attrs", "expected"), [(a, e) for _, a, e in CASES], ids=[c[0] for c in CASES])
def test_dialect_maps_to_canonical(attrs: dict[str, Any], expected: dict[str, Any]) -> None:
    out = canonical_genai(attrs)
    assert {k: out[k] for k in expected} == expected


def _event(name: str, time_ns: int, **attributes: Any) -> dict[str, Any]:
    return {"name": name, "time_ns": time_ns, "attributes": attributes}


START = 1_700_000_000_000_000_000
EVENT_CASES: list[tuple[str, dict[str, Any], list[dict[str, Any]], bool, dict[str, Any]]] = [
    (
        "openinference-first-token-event",
        {"openinference.span.kind": "LLM"},
        [_event("First Token Stream Event", START + 250_000_000)],
        False,
        {"ttft_s": 0.25, "error_type": None},
    ),
    (
        "openllmetry-chunk-events-first-one-counts",
        {"gen_ai.is_streaming": True},
        [_event("gen_ai.content.completion.chunk", START + t) for t in (40_000_000, 10_000_000, 90_000_000)],
        False,
        {"ttft_s": 0.01},
    ),
    (
        "explicit-time-to-first-chunk-wins",
        {"gen_ai.response.time_to_first_chunk": 0.5},
        [_event("First Token Stream Event", START + 1_000)],
        False,
        {"ttft_s": 0.5},
    ),
    (
        "event-before-the-span-start-is-ignored",
        {},
        [_event("First Token Stream Event", START - 5)],
        False,
        {"ttft_s": None},
    ),
    (
        "exception-event-names-the-error-of-a-failed-span",
        {"openinference.span.kind": "LLM"},
        [_event("exception", START + 1, **{"exception.type": "openai.InternalServerError"})],
        True,
        {"error_type": "openai.InternalServerError"},
    ),
    (
        "handled-exception-on-a-successful-span-is-no-error",
        {},
        [_event("exception", START + 1, **{"exception.type": "KeyError"})],
        False,
        {"error_type": None},
    ),
    (
        "explicit-error-type-wins-over-exception-event",
        {"error.type": "500"},
        [_event("exception", START + 1, **{"exception.type": "InternalServerError"})],
        True,
        {"error_type": "500"},
    ),
]


@pytest.mark.parametrize(
    ("attrs", "events", "failed", "expected"),
    [(a, ev, f, e) for _, a, ev, f, e in EVENT_CASES],
    ids=[c[0] for c in EVENT_CASES],
)
def test_span_events_fill_columns_no_attribute_names(
    attrs: dict[str, Any], events: list[dict[str, Any]], failed: bool, expected: dict[str, Any]
) -> None:
    out = canonical_genai(attrs, events, start_ns=START, failed=failed)
    assert {k: out[k] for k in expected} == expected


_KEYS = st.sampled_from(
    [
        "gen_ai.operation.name",
        "gen_ai.provider.name",
        "gen_ai.system",
        "llm.provider",
        "llm.system",
        "gen_ai.request.model",
        "llm.model_name",
        "gen_ai.usage.input_tokens",
        "llm.token_count.prompt",
        "gen_ai.usage.total_tokens",
        "gen_ai.response.finish_reasons",
        "gen_ai.completion.0.finish_reason",
        "llm.invocation_parameters",
        "metadata",
        "tag.tags",
        "llmscope.tags",
        "llmscope.metadata.x",
        "traceloop.association.properties.k",
        "openinference.span.kind",
        "traceloop.span.kind",
        "gen_ai.openai.api_base",
        "gen_ai.response.time_to_first_chunk",
        "session.id",
        "user.id",
    ]
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["[1, 2", "{", "[]", "{}", '{"model": 5}', '["x", null]', "http://[::1", "LLM", "tool"]),
)
_VALUES = st.recursive(_SCALARS, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids))
_ATTRS = st.dictionaries(st.one_of(_KEYS, st.text(max_size=20)), _VALUES, max_size=12)


@settings(max_examples=400, deadline=None)
@given(_ATTRS)
def test_arbitrary_attribute_maps_never_crash_and_fill_every_column(attrs: dict[str, Any]) -> None:
    out = canonical_genai(attrs)
    assert set(out) == set(GENAI_COLUMNS)
    for column in ("input_tokens", "output_tokens", "total_tokens"):
        assert out[column] is None or (isinstance(out[column], int) and -(2**63) <= out[column] < 2**63)


_EXPLICIT = {
    "gen_ai.operation.name": ("operation", "embeddings"),
    "gen_ai.provider.name": ("provider", "openai"),
    "gen_ai.request.model": ("request_model", "m-explicit"),
    "gen_ai.usage.input_tokens": ("input_tokens", 321),
    "gen_ai.conversation.id": ("session_id", "conv-explicit"),
    "gen_ai.prompt.name": ("prompt_name", "p-explicit"),
    "gen_ai.tool.name": ("tool_name", "t-explicit"),
}


@settings(max_examples=300, deadline=None)
@given(_ATTRS, st.sampled_from(sorted(_EXPLICIT)))
def test_explicit_gen_ai_attribute_always_wins_over_aliases(noise: dict[str, Any], key: str) -> None:
    column, value = _EXPLICIT[key]
    attrs = {**noise, key: value}
    # (An operation only stays a model call's with something that shows a call: an error here.)
    assert canonical_genai(attrs, failed=True)[column] == value


_EVENTS = st.lists(
    st.fixed_dictionaries(
        {
            "name": st.sampled_from(["exception", "First Token Stream Event", "gen_ai.content.completion.chunk", "x"]),
            "time_ns": st.one_of(st.integers(min_value=0, max_value=2**64), st.none(), st.text(max_size=3)),
            "attributes": st.one_of(st.dictionaries(st.sampled_from(["exception.type", "k"]), _VALUES), _VALUES),
        }
    ),
    max_size=4,
)


@settings(max_examples=300, deadline=None)
@given(_ATTRS, _EVENTS, st.one_of(st.none(), st.integers(min_value=0, max_value=2**64)), st.booleans())
def test_arbitrary_events_never_crash(
    attrs: dict[str, Any], events: list[dict[str, Any]], start_ns: int | None, failed: bool
) -> None:
    out = canonical_genai(attrs, events, start_ns=start_ns, failed=failed)
    assert set(out) == set(GENAI_COLUMNS)
    assert out["ttft_s"] is None or out["ttft_s"] >= 0
    assert out["error_type"] is None or isinstance(out["error_type"], str)
