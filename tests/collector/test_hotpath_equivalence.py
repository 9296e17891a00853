"""The optimized ingest hot paths equal their straightforward originals on any input.

`tests/collector/reference/` holds frozen copies of normalize, messages, limits and cost as they were
before the per-span CPU work; these properties generate attribute maps mixing every dialect's keys
(present, empty and odd-typed values) and pricing inputs, and require identical outputs (compared by
`repr`, so a type or float/int difference fails too).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from llmscope_collector.processors import normalize
from tests.collector.reference import normalize as ref_normalize

# Every key any column reads, a member of every scanned family, and some keys nothing reads.
_TABLE_KEYS = sorted(
    {k for keys in (*ref_normalize._STR_COLUMNS.values(), *ref_normalize._INT_COLUMNS.values()) for k in keys}
)
_DERIVED_KEYS = [
    "gen_ai.response.id",
    "openinference.span.kind",
    "output.value",
    "gen_ai.operation.name",
    "llm.request.type",
    "traceloop.span.kind",
    "traceloop.entity.name",
    "gen_ai.provider.name",
    "gen_ai.system",
    "llm.provider",
    "llm.system",
    "gen_ai.request.model",
    "llm.request.model_name",
    "llm.model_name",
    "embedding.model_name",
    "llm.invocation_parameters",
    "gen_ai.response.finish_reasons",
    "llm.finish_reason",
    "gen_ai.response.finish_reason",
    "gen_ai.response.stop_reason",
    "llm.response.finish_reason",
    "llm.response.stop_reason",
    "gen_ai.request.stream",
    "gen_ai.is_streaming",
    "llm.is_streaming",
    "gen_ai.response.time_to_first_chunk",
    "llmscope.span.kind",
    "llmscope.tags",
    "tag.tags",
    "metadata",
    "gen_ai.tool.name",
    "tool.name",
    "gen_ai.agent.name",
    "agent.name",
    "server.address",
    "gen_ai.openai.api_base",
    "llm.openai.api_base",
    *ref_normalize._TOTAL_TOKEN_KEYS,
]
_FAMILY_KEYS = [
    "gen_ai.completion.0.finish_reason",
    "gen_ai.completion.1.finish_reason",
    "gen_ai.completion.0.content",
    "traceloop.association.properties.session_id",
    "traceloop.association.properties.user_id",
    "traceloop.association.properties.tenant",
    "llmscope.metadata.team",
    "llmscope.metadata.session_id",
    "llm.prompts.0.prompt.text",
    "llm.choices.0.completion.text",
    "gen_ai.request.temperature",
    "server.port",
    "gen_ai.input.messages",
]
_KEYS = st.sampled_from(sorted({*_TABLE_KEYS, *_DERIVED_KEYS, *_FAMILY_KEYS}))
_WORDS = st.sampled_from(
    [
        "chat",
        "LLM",
        "llm",
        "EMBEDDING",
        "TOOL",
        "agent",
        "tool",
        "workflow",
        "completion",
        "embedding",
        "openai",
        " Azure ",
        "azure",
        "google",
        "vertexai",
        "gemini",
        "end_turn",
        "MAX_TOKENS",
        "stop",
        "true",
        "False",
        "12",
        " 7 ",
        "1e3",
        "https://api.example.com:8443/v1",
        "http://[::1",
        '{"model": "gpt-4o", "stream": true, "id": "r1", "k": 1}',
        '{"stream": "false"}',
        '["a", "b", 3, null, true]',
        '"x"',
        "[not json",
        "{",
    ]
)
_SCALARS = st.one_of(
    st.none(),
    st.just(""),
    st.just([]),
    _WORDS,
    st.text(max_size=6),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.sampled_from([0, 1, -1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1.0, 2.5, -0.0, 1e20, 0.25]),
    st.binary(max_size=3),
)
_VALUES = st.one_of(
    _SCALARS,
    st.lists(_SCALARS, max_size=3),
    st.dictionaries(st.sampled_from(["model", "stream", "id", "a"]), _SCALARS, max_size=3),
)
_ATTRS = st.dictionaries(st.one_of(_KEYS, _KEYS, st.text(max_size=8)), _VALUES, max_size=14)
_EVENT = st.fixed_dictionaries(
    {
        "name": st.sampled_from([*sorted(ref_normalize.FIRST_CHUNK_EVENTS), "exception", "other"]),
        "time_ns": st.one_of(st.integers(min_value=0, max_value=3000), st.booleans(), st.none()),
        "attributes": st.one_of(
            st.dictionaries(st.sampled_from(["exception.type", "x"]), _SCALARS, max_size=2), st.none()
        ),
    }
)


def _same(new: Any, old: Any) -> None:
    assert repr(new) == repr(old)
    assert [type(v) for v in new.values()] == [type(v) for v in old.values()]


@settings(max_examples=3000, deadline=None)
@given(
    attrs=_ATTRS,
    events=st.lists(_EVENT, max_size=3),
    start_ns=st.one_of(st.none(), st.integers(min_value=0, max_value=2000)),
    failed=st.booleans(),
)
def test_canonical_genai_equals_reference(
    attrs: dict[str, Any], events: list[dict[str, Any]], start_ns: int | None, failed: bool
) -> None:
    expected = ref_normalize.canonical_genai(attrs, events, start_ns=start_ns, failed=failed)
    _same(normalize.canonical_genai(attrs, events, start_ns=start_ns, failed=failed), expected)
    # Twice: the second call takes the cached plan for this key set.
    _same(normalize.canonical_genai(attrs, events, start_ns=start_ns, failed=failed), expected)


def test_canonical_genai_equals_reference_on_dialect_fixtures() -> None:
    """The realistic shapes of each dialect (the normalize table's cases) agree too."""
    from tests.collector.test_normalize import CASES

    for _, attrs, _ in CASES:
        _same(normalize.canonical_genai(attrs), ref_normalize.canonical_genai(attrs))


def test_every_key_a_column_reads_is_in_the_key_index() -> None:
    """A key missing from `_DERIVED`'s reads would leave its column None: the generator's universe proves it."""
    for key in _DERIVED_KEYS + _TABLE_KEYS:
        assert key in normalize._KNOWN_KEYS, key
    for column, prefixes in normalize._SCANNED_PREFIXES.items():
        for key in normalize._KNOWN_KEYS:
            if key.startswith(prefixes):
                assert key in normalize._DERIVED[column][1], (column, key)
