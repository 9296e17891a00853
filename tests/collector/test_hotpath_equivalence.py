"""The optimized ingest hot paths equal their straightforward originals on any input.

`tests/collector/reference/` holds frozen copies of normalize, messages, limits and cost as they were
before the per-span CPU work; these properties generate attribute maps mixing every dialect's keys
(present, empty and odd-typed values) and pricing inputs, and require identical outputs (compared by
`repr`, so a type or float/int difference fails too).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any

from genai_prices import data_snapshot
from genai_prices.types import ModelPrice, StartDateConstraint, TieredPrices
from hypothesis import given, settings
from hypothesis import strategies as st

from llmscope_collector.processors import cost, limits, messages, normalize, pricing
from tests.collector.reference import cost as ref_cost
from tests.collector.reference import limits as ref_limits
from tests.collector.reference import messages as ref_messages
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


# Spans whose explicit keys take the plans' verbatim/memo paths: non-empty strings, finish reason lists.
_EXPLICIT_ATTRS = st.dictionaries(
    st.sampled_from([*normalize._VERBATIM.values(), "gen_ai.provider.name"]), st.one_of(_WORDS, _VALUES), max_size=7
)
_FINISH_LISTS = st.one_of(
    st.none(), st.lists(_WORDS, min_size=1, max_size=3), st.lists(st.one_of(_WORDS, _SCALARS), max_size=3)
)


@settings(max_examples=1500, deadline=None)
@given(
    explicit=_EXPLICIT_ATTRS,
    finish_reasons=_FINISH_LISTS,
    attrs=st.dictionaries(st.one_of(_KEYS, st.text(max_size=8)), _VALUES, max_size=6),
    many=st.booleans(),
)
def test_canonical_genai_explicit_keys_and_long_spans_equal_reference(
    explicit: dict[str, Any], finish_reasons: list[Any] | None, attrs: dict[str, Any], many: bool
) -> None:
    """The verbatim columns, provider memo and finish reason lists, on spans that get a key-tuple plan or not."""
    merged = {**attrs, **explicit}
    if finish_reasons is not None:
        merged["gen_ai.response.finish_reasons"] = finish_reasons
    if many:  # more keys than a key-tuple plan is remembered for: the key-set plan every time
        merged.update((f"gen_ai.prompt.{i}.content", "x") for i in range(normalize._MAX_KEYED_ATTRS))
    expected = ref_normalize.canonical_genai(merged)
    _same(normalize.canonical_genai(merged), expected)
    _same(normalize.canonical_genai(merged), expected)
    _same(normalize.canonical_genai(dict(reversed(merged.items()))), expected)  # another key order, another plan


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


# --- pricing -------------------------------------------------------------------------------------------

_SNAPSHOT = data_snapshot.get_snapshot()
_DB_MODELS = sorted({(p.id, m.id) for p in _SNAPSHOT.providers for m in p.models})
# The shapes the fast path must get right, over-sampled: tiered, cache-priced, dated and other conditional prices.
_SPECIAL_MODELS = sorted(
    (p.id, m.id)
    for p in _SNAPSHOT.providers
    for m in p.models
    if not isinstance(m.prices, ModelPrice)
    or any(isinstance(v, TieredPrices) for v in vars(m.prices).values())
    or getattr(m.prices, "cache_read_mtok", None) is not None
)
_DAY_NS = 86_400 * 10**9
# Days some price starts on: a call just before such a midnight must see the old price, just after the new one.
_PRICE_CHANGE_DAYS = sorted(
    {
        (c.constraint.start_date - dt.date(1970, 1, 1)).days
        for p in _SNAPSHOT.providers
        for m in p.models
        if not isinstance(m.prices, ModelPrice)
        for c in m.prices
        if isinstance(c.constraint, StartDateConstraint)
    }
)
_START_NS = st.one_of(
    st.builds(
        lambda day, offset: day * _DAY_NS + offset,
        st.sampled_from(_PRICE_CHANGE_DAYS),
        st.one_of(
            st.integers(min_value=-3000, max_value=3000),  # float seconds round to microseconds here
            st.sampled_from([-1, -499, -500, -501, -(10**6), -(10**6) - 1, 10**6, 10**6 - 1]),
        ),
    ),
    st.builds(
        lambda day, offset: day * _DAY_NS + offset,
        st.integers(min_value=19_000, max_value=21_000),  # 2022 - 2027: around genai-prices' price changes
        st.one_of(
            st.integers(min_value=0, max_value=_DAY_NS - 1),
            st.integers(min_value=-(10**7), max_value=10**7),  # a few ms either side of midnight
            st.sampled_from([0, 1, _DAY_NS - 1, 10**6, _DAY_NS - 10**6, 10**6 - 1, _DAY_NS - 10**6 + 1]),
        ),
    ),
    st.sampled_from([0, 2**63 - 1, 2**63 - 10**6, -1, -(10**18)]),
)
_COUNT = st.one_of(st.none(), st.integers(min_value=-5, max_value=3_000_000), st.sampled_from([200_000, 200_001]))
_USAGE = st.one_of(
    st.none(),
    st.builds(cost.sanitize_usage, _COUNT, _COUNT, _COUNT, _COUNT),
    st.builds(cost.Usage4, *(st.integers(min_value=-(10**6), max_value=10**7) for _ in range(4))),
)
_USER_ROWS = st.lists(
    st.tuples(
        st.sampled_from(["gpt-4o*", "claude-*", "*", "custom-model"]),
        st.decimals(min_value=0, max_value=100, places=3),
        st.decimals(min_value=0, max_value=100, places=3),
        st.one_of(st.none(), st.decimals(min_value=0, max_value=10, places=4)),
        st.one_of(st.none(), st.sampled_from(["openai", "Anthropic"])),
    ),
    max_size=2,
)


def _books(rows: list[tuple[str, Decimal, Decimal, Decimal | None, str | None]]) -> tuple[Any, Any]:
    def prices(kind: Any) -> tuple[Any, ...]:
        return tuple(kind(pattern, i, o, cache_read=c, provider=p) for pattern, i, o, c, p in rows)

    return cost.PriceBook(prices(cost.UserPrice)), ref_cost.PriceBook(prices(ref_cost.UserPrice))


def _outcome(fn: Any) -> str:
    try:
        return repr(fn())
    except Exception as exc:  # the same failure counts as the same outcome
        return f"raised {type(exc).__name__}"


_PROVIDERS = st.one_of(st.none(), st.sampled_from(sorted(cost._PROVIDER_IDS)), st.sampled_from(["openai", "nope"]))


@settings(max_examples=1500, deadline=None)
@given(
    model=st.one_of(st.sampled_from(_SPECIAL_MODELS), st.sampled_from(_DB_MODELS)),
    use_db_provider=st.booleans(),
    provider=_PROVIDERS,
    request_model=st.one_of(st.none(), st.sampled_from(["", "gpt-4o", "custom-model", "no-such-model"])),
    start_ns=_START_NS,
    usage=_USAGE,
    error=st.booleans(),
    rows=_USER_ROWS,
)
def test_price_book_cost_equals_reference(
    model: tuple[str, str],
    use_db_provider: bool,
    provider: str | None,
    request_model: str | None,
    start_ns: int,
    usage: cost.Usage4 | None,
    error: bool,
    rows: list[tuple[str, Decimal, Decimal, Decimal | None, str | None]],
) -> None:
    book, ref_book = _books(rows)
    args = (model[0] if use_db_provider else provider, (model[1], request_model), start_ns, usage)
    expected = _outcome(lambda: ref_book.cost(*args, error=error))
    assert _outcome(lambda: book.cost(*args, error=error)) == expected
    assert _outcome(lambda: book.cost(*args, error=error)) == expected  # again, from the caches


def _reference_price_rows(cols: dict[str, list[Any]], prices: Any) -> None:
    """`pricing.price_rows` as it was before it priced rows as tuples (over the reference PriceBook)."""
    for i, operation in enumerate(cols["operation"]):
        if operation not in frozenset(normalize.LLM_OPERATIONS):
            continue
        tokens = [cols[f][i] for f in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")]
        usage = None if all(t is None for t in tokens) else ref_cost.sanitize_usage(*tokens)
        models = (cols["response_model"][i], cols["request_model"][i])
        if not any(models):
            c = ref_cost.UNKNOWN
        else:
            error = cols["status_code"][i] == "ERROR"
            c = prices.cost(cols["provider"][i], models, cols["start_ns"][i], usage, error=error)
        cols["cost_usd"][i], cols["cost_input_usd"][i], cols["cost_output_usd"][i] = c.total, c.input, c.output
        cols["cost_known"][i], cols["cost_source"][i] = c.known, c.source


_PRICED_ROW = st.fixed_dictionaries(
    {
        "operation": st.sampled_from([*normalize.LLM_OPERATIONS, "execute_tool", None]),
        "model": st.one_of(st.sampled_from(_SPECIAL_MODELS), st.sampled_from(_DB_MODELS)),
        "use_db_provider": st.booleans(),
        "provider": _PROVIDERS,
        "response_model": st.booleans(),
        "request_model": st.one_of(st.none(), st.sampled_from(["", "gpt-4o", "custom-model", "no-such-model"])),
        "start_ns": _START_NS,
        "tokens": st.tuples(_COUNT, _COUNT, _COUNT, _COUNT),
        "status_code": st.sampled_from(["ERROR", "OK", "UNSET"]),
    }
)


@settings(max_examples=600, deadline=None)
@given(rows=st.lists(_PRICED_ROW, max_size=6), user_rows=_USER_ROWS)
def test_price_rows_equals_reference(rows: list[dict[str, Any]], user_rows: Any) -> None:
    """The cost columns `price_rows` fills, row for row, as the reference PriceBook prices them."""
    book, ref_book = _books(user_rows)
    cols: dict[str, list[Any]] = {
        "operation": [r["operation"] for r in rows],
        "provider": [r["model"][0] if r["use_db_provider"] else r["provider"] for r in rows],
        "response_model": [r["model"][1] if r["response_model"] else None for r in rows],
        "request_model": [r["request_model"] for r in rows],
        "start_ns": [r["start_ns"] for r in rows],
        "status_code": [r["status_code"] for r in rows],
    }
    for k, name in enumerate(pricing._USAGE):
        cols[name] = [r["tokens"][k] for r in rows]
    for name in pricing._COST:
        cols[name] = [None] * len(rows)
    expected = {name: list(values) for name, values in cols.items()}
    _reference_price_rows(expected, ref_book)
    pricing.price_rows(cols, book)
    assert repr(cols) == repr(expected)
    pricing.price_rows(cols, book)  # again, from the caches
    assert repr(cols) == repr(expected)


_DATED_MODELS = {
    (p.id, m.id): sorted(
        (c.constraint.start_date - dt.date(1970, 1, 1)).days
        for c in m.prices
        if isinstance(c.constraint, StartDateConstraint)
    )
    for p in _SNAPSHOT.providers
    for m in p.models
    if not isinstance(m.prices, ModelPrice)
}


@st.composite
def _dated_calls(draw: st.DrawFn) -> tuple[tuple[str, str], list[tuple[int, cost.Usage4]]]:
    """A model with conditional prices, called around the midnights its prices change (and elsewhere)."""
    model = draw(st.sampled_from(sorted(_DATED_MODELS)))
    days = _DATED_MODELS[model] or [20_000]
    near_change = st.builds(
        lambda day, offset: day * _DAY_NS + offset,
        st.sampled_from(days),
        st.one_of(
            st.integers(min_value=-3000, max_value=3000),
            st.sampled_from([-1, -499, -500, -501, -(10**6), -(10**6) - 1, 10**6, 10**6 - 1]),
        ),
    )
    usage = st.builds(
        cost.sanitize_usage, *(st.integers(min_value=1, max_value=300_000) for _ in range(2)), _COUNT, _COUNT
    )
    calls = draw(st.lists(st.tuples(st.one_of(near_change, near_change, _START_NS), usage), min_size=2, max_size=8))
    return model, calls


@settings(max_examples=400, deadline=None)
@given(case=_dated_calls())
def test_one_price_book_prices_a_model_over_time_like_the_reference(
    case: tuple[tuple[str, str], list[tuple[int, cost.Usage4]]],
) -> None:
    """One book across days and tiers: its per-day and per-price caches never answer for another day."""
    model, calls = case
    book, ref_book = cost.PriceBook(), ref_cost.PriceBook()
    for start_ns, usage in calls:
        args = (model[0], (model[1],), start_ns, usage)
        assert _outcome(lambda a=args: book.cost(*a)) == _outcome(lambda a=args: ref_book.cost(*a))


# --- content split and span limits ----------------------------------------------------------------------

_MESSAGE_JSON = st.sampled_from(
    [
        '[{"role": "user", "parts": [{"type": "text", "content": "hi"}]}, {"role": "assistant", "parts": []}]',
        '[{"b": 1, "a": [2, {"d": null, "c": "x"}]}]',
        '{"not": "a list"}',
        "[1, 2",
        "plain text",
        "[]",
    ]
)
_FLAT_KEYS = st.builds(
    "{}.{}.{}".format,
    st.sampled_from(sorted(ref_messages._FLAT_PREFIXES)),
    st.sampled_from(["0", "1", "2", "01", "10", "999999", "1000000", "x"]),
    st.sampled_from(
        [
            "message.role",
            "message.content",
            "message.tool_call_id",
            "message.contents.0.message_content.type",
            "message.contents.0.message_content.text",
            "message.tool_calls.0.tool_call.function.name",
            "role",
            "content",
            "tool_calls.0.name",
            "finish_reason",
            "prompt.text",
            "completion.text",
            "tool.json_schema",
            "name",
            "parameters",
            "",
            "a\n",
        ]
    ),
)
_CONTENT_KEYS = st.sampled_from(
    sorted({*ref_messages._JSON_MESSAGE_KEYS, *ref_messages._JSON_WHOLE_KEYS, *ref_messages._VALUE_KEYS})
)
_CONTENT_ATTRS = st.dictionaries(
    st.one_of(_FLAT_KEYS, _FLAT_KEYS, _CONTENT_KEYS, _KEYS, st.text(max_size=8)),
    st.one_of(_MESSAGE_JSON, _VALUES),
    max_size=12,
)


@settings(max_examples=1500, deadline=None)
@given(attrs=_CONTENT_ATTRS)
def test_split_content_equals_reference(attrs: dict[str, Any]) -> None:
    expected = repr(ref_messages.split_content(attrs))
    assert repr(messages.split_content(attrs)) == expected
    assert repr(messages.split_content(attrs)) == expected  # again, with every key now remembered


@dataclasses.dataclass
class _Status:
    code: int


@dataclasses.dataclass
class _Span:
    start_time_unix_nano: int
    end_time_unix_nano: int
    kind: int
    status: _Status


_LONG_VALUES = st.one_of(
    _VALUES,
    st.text(min_size=0, max_size=40),
    st.text(alphabet="aé€😀", min_size=5, max_size=40),
    st.lists(st.text(max_size=12), max_size=4),
    st.dictionaries(st.text(max_size=4), st.text(max_size=12), max_size=3),
)


@settings(max_examples=1500, deadline=None)
@given(
    attrs=st.dictionaries(st.one_of(_KEYS, st.text(max_size=8)), _LONG_VALUES, max_size=12),
    max_attributes=st.sampled_from([0, 1, 3, 1024]),
    max_value_bytes=st.sampled_from([0, 1, 5, 16, 40, 1024 * 1024]),
    times=st.tuples(*(st.sampled_from([0, 5, 2**63 - 1, 2**63, 2**64 - 1]) for _ in range(2))),
    kind=st.integers(min_value=-1, max_value=7),
    status=st.integers(min_value=-1, max_value=4),
)
def test_apply_span_limits_equals_reference(
    attrs: dict[str, Any],
    max_attributes: int,
    max_value_bytes: int,
    times: tuple[int, int],
    kind: int,
    status: int,
) -> None:
    span_limits = limits.SpanLimits(max_attributes, max_value_bytes)
    span = _Span(times[0], times[1], kind, _Status(status))
    expected_marks: dict[str, int] = {}
    marks: dict[str, int] = {}
    expected = ref_limits.apply_span_limits(span, dict(attrs), span_limits, expected_marks)
    actual = limits.apply_span_limits(span, dict(attrs), span_limits, marks)
    assert repr(actual) == repr(expected)
    assert marks == expected_marks
