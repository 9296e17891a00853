"""Properties of the ingest processors' behaviour (what must hold for any input), next to the golden files.

- normalize: a value sent under any dialect's alias lands in its canonical column, the first alias
  present wins, and the result depends neither on key order nor on what spans came before;
- limits: no stored value is longer than the limit, exactly the cut values are listed as truncated
  and each is a prefix of what was sent, attributes beyond the count are dropped (well-known ones
  kept first) and counted, anomalies are marked and every mark counted once;
- pricing: cost = tokens x the genai-prices rates, cache-aware (and exactly genai-prices' own
  `calc_price` for every model, tiers and dated prices included); an unknown model costs NULL, never $0;
  a decode worker's `PriceTable` (plain data, no genai-prices) prices every row as the price book does,
  or leaves it to the book.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import pickle
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import msgspec
from genai_prices import Usage, data_snapshot
from genai_prices.types import ModelPrice, StartDateConstraint
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from llmscope_collector.processors import limits, normalize, pricing
from llmscope_collector.processors.cost import PriceBook, Usage4, UserPrice, sanitize_usage, sanitized_counts
from llmscope_collector.processors.limits import (
    DROPPED_ATTRIBUTES,
    END_BEFORE_START,
    MARK_REASONS,
    MAX_TIME_NS,
    TIME_OUT_OF_RANGE,
    TRUNCATED_ATTRIBUTES,
    UNKNOWN_KIND,
    UNKNOWN_STATUS,
    SpanLimits,
    apply_span_limits,
    limit_span,
    within_limits,
)
from llmscope_collector.processors.normalize import canonical_genai
from llmscope_collector.storage.schema import cost_decimal

# --- normalize ------------------------------------------------------------------------------------

# Each dialect's aliases of a column, in priority order (OTel current, OTel deprecated, OpenInference,
# OpenLLMetry): the specification, written out here rather than read from the normalizer's table.
STR_ALIASES: dict[str, tuple[str, ...]] = {
    "response_model": ("gen_ai.response.model", "llm.response.model_name", "llm.model_name"),
    "session_id": ("gen_ai.conversation.id", "session.id", "traceloop.association.properties.session_id"),
    "user_id": ("user.id", "enduser.id", "traceloop.association.properties.user_id", "gen_ai.user", "llm.user"),
    "prompt_name": ("gen_ai.prompt.name", "traceloop.prompt.key", "prompt.id"),
    "prompt_version": (
        "gen_ai.prompt.version",
        "llm.prompt_template.version",
        "traceloop.prompt.version",
        "traceloop.prompt.version_name",
    ),
    "tool_call_id": ("gen_ai.tool.call.id", "tool.id", "tool_call.id"),
    "request_model": ("gen_ai.request.model", "llm.request.model_name", "llm.model_name", "embedding.model_name"),
    "tool_name": ("gen_ai.tool.name", "tool.name"),
    "agent_name": ("gen_ai.agent.name", "agent.name"),
    "error_type": ("error.type",),
}
INT_ALIASES: dict[str, tuple[str, ...]] = {
    "input_tokens": (
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.prompt_tokens",
        "llm.token_count.prompt",
        "llm.usage.prompt_tokens",
    ),
    "output_tokens": (
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.completion_tokens",
        "llm.token_count.completion",
        "llm.usage.completion_tokens",
    ),
    "cache_read_tokens": (
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_read_input_tokens",
        "llm.token_count.prompt_details.cache_read",
    ),
    "cache_write_tokens": (
        "gen_ai.usage.cache_creation.input_tokens",
        "gen_ai.usage.cache_write.input_tokens",
        "gen_ai.usage.cache_creation_input_tokens",
        "llm.token_count.prompt_details.cache_write",
    ),
    "reasoning_tokens": (
        "gen_ai.usage.reasoning.output_tokens",
        "gen_ai.usage.reasoning_tokens",
        "llm.token_count.completion_details.reasoning",
        "llm.usage.reasoning_tokens",
    ),
    "total_tokens": ("gen_ai.usage.total_tokens", "llm.token_count.total", "llm.usage.total_tokens"),
}
_ALL_ALIASES = sorted({k for keys in (*STR_ALIASES.values(), *INT_ALIASES.values()) for k in keys})
_OTHER_KEYS = [
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "openinference.span.kind",
    "llm.invocation_parameters",
    "traceloop.span.kind",
    "traceloop.entity.name",
    "gen_ai.response.finish_reasons",
    "llmscope.tags",
    "metadata",
    "llmscope.metadata.team",
    "traceloop.association.properties.tenant",
    "gen_ai.completion.0.finish_reason",
    "server.address",
    "http.method",
]
_SCALARS = st.one_of(
    st.none(),
    st.just(""),
    st.booleans(),
    st.integers(-(2**65), 2**65),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.sampled_from(["chat", "LLM", "tool", '{"model": "m"}', "[1, 2", " 7 "]),
)
_VALUES = st.one_of(
    _SCALARS, st.lists(_SCALARS, max_size=3), st.dictionaries(st.text(max_size=3), _SCALARS, max_size=2)
)
_NOISE_KEYS = st.one_of(st.sampled_from([*_ALL_ALIASES, *_OTHER_KEYS]), st.text(max_size=12))
# Values that land in a string column as they are / in an int column as this int.
_STR_VALUES = st.text(min_size=1, max_size=20).filter(lambda s: s[:1] not in "{[")
_INT_VALUES = st.one_of(
    st.integers(-(2**63), 2**63 - 1).map(lambda i: (i, i)),
    st.integers(-(10**12), 10**12).map(lambda i: (f" {i} ", i)),
    st.integers(-(2**52), 2**52).map(lambda i: (float(i), i)),
)


@st.composite
def _aliased(draw: st.DrawFn) -> tuple[str, dict[str, Any], Any]:
    """A column, a span sending it under some of its aliases (plus unrelated noise), and the value that must win."""
    column = draw(st.sampled_from(sorted({*STR_ALIASES, *INT_ALIASES})))
    aliases = STR_ALIASES.get(column) or INT_ALIASES[column]
    sent = draw(st.lists(st.sampled_from(aliases), min_size=1, unique=True))
    noise = draw(st.dictionaries(_NOISE_KEYS, _VALUES, max_size=10))
    attrs = {k: v for k, v in noise.items() if k not in aliases}
    landed = {}
    for alias in sent:
        if column in STR_ALIASES:
            attrs[alias] = landed[alias] = draw(_STR_VALUES)
        else:
            attrs[alias], landed[alias] = draw(_INT_VALUES)
    first = next(alias for alias in aliases if alias in landed)  # priority order, not the order sent
    return column, attrs, landed[first]


@settings(max_examples=400, deadline=None)
@given(_aliased(), st.booleans())
def test_a_value_under_any_alias_lands_in_its_column_and_the_first_alias_wins(
    case: tuple[str, dict[str, Any], Any], reverse: bool
) -> None:
    column, attrs, expected = case
    if reverse:  # key order carries no priority
        attrs = dict(reversed(attrs.items()))
    assert canonical_genai(attrs)[column] == expected
    assert canonical_genai(attrs)[column] == expected  # again, with the key set's plan remembered


def test_of_any_two_aliases_the_earlier_one_wins() -> None:
    for column, aliases in {**STR_ALIASES, **INT_ALIASES}.items():
        first, second = ("first", "second") if column in STR_ALIASES else (11, 22)
        for i, earlier in enumerate(aliases):
            for later in aliases[i + 1 :]:
                for attrs in ({earlier: first, later: second}, {later: second, earlier: first}):
                    assert canonical_genai(attrs)[column] == first, (column, earlier, later)


_ATTRS = st.dictionaries(st.one_of(_NOISE_KEYS, _NOISE_KEYS), _VALUES, max_size=14)


@settings(max_examples=300, deadline=None)
@given(_ATTRS, st.booleans(), st.randoms(use_true_random=False))
def test_columns_depend_only_on_the_attributes_not_on_key_order_or_earlier_spans(
    attrs: dict[str, Any], many: bool, rng: Any
) -> None:
    if many:  # more keys than a key-tuple plan is remembered for
        attrs = {**attrs, **{f"gen_ai.prompt.{i}.content": "x" for i in range(70)}}
    first = canonical_genai(attrs)
    items = list(attrs.items())
    rng.shuffle(items)
    assert canonical_genai(dict(items)) == first
    assert canonical_genai(attrs) == first


# Keys the column functions read besides the table's aliases: all must be in the normalizer's key index,
# or a span carrying only them would get its column left None without the function running.
_DERIVED_READS = [
    "gen_ai.response.id", "openinference.span.kind", "output.value", "gen_ai.operation.name", "llm.request.type",
    "traceloop.span.kind", "traceloop.entity.name", "gen_ai.provider.name", "gen_ai.system", "llm.provider",
    "llm.system", "llm.invocation_parameters", "gen_ai.response.finish_reasons", "llm.finish_reason",
    "gen_ai.response.finish_reason", "gen_ai.response.stop_reason", "llm.response.finish_reason",
    "llm.response.stop_reason", "gen_ai.request.stream", "gen_ai.is_streaming", "llm.is_streaming",
    "gen_ai.response.time_to_first_chunk", "llmscope.span.kind", "llmscope.tags", "tag.tags", "metadata",
    "server.address", "gen_ai.openai.api_base", "llm.openai.api_base",
]  # fmt: skip


def test_every_key_a_column_reads_is_in_the_key_index() -> None:
    for key in [*_DERIVED_READS, *_ALL_ALIASES]:
        assert key in normalize._KNOWN_KEYS, key
    for column, prefixes in normalize._SCANNED_PREFIXES.items():
        for key in normalize._KNOWN_KEYS:
            if key.startswith(prefixes):
                assert key in normalize._DERIVED[column][1], (column, key)


# --- limits ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Status:
    code: int


@dataclasses.dataclass
class _Span:
    start_time_unix_nano: int
    end_time_unix_nano: int
    kind: int
    status: _Status
    name: str = ""  # (name, key and event limits: test_bad_input.py, end to end)


_MARKS = {TRUNCATED_ATTRIBUTES, DROPPED_ATTRIBUTES, END_BEFORE_START, TIME_OUT_OF_RANGE, UNKNOWN_KIND, UNKNOWN_STATUS}
_PRIORITY = ("gen_ai.", "llm.", "openinference.", "traceloop.", "session.", "user.", "input.", "output.")
_LONG_VALUES = st.one_of(
    _VALUES,
    st.text(max_size=60),
    st.text(alphabet="aé€😀", min_size=5, max_size=40),
    st.lists(st.text(max_size=12), max_size=4),
    st.dictionaries(st.text(max_size=4), st.text(max_size=12), max_size=3),
)
_TIMES = st.sampled_from([0, 5, 2**62, MAX_TIME_NS, MAX_TIME_NS + 1, 2**64 - 1])


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else msgspec.json.encode(value).decode()


@settings(max_examples=500, deadline=None)
@given(
    attrs=st.dictionaries(st.one_of(_NOISE_KEYS, st.sampled_from(["input.value", "k", "session.id"])), _LONG_VALUES),
    max_attributes=st.sampled_from([0, 1, 3, 1024]),
    max_value_bytes=st.sampled_from([0, 1, 5, 16, 40, 1024 * 1024]),
    times=st.tuples(_TIMES, _TIMES),
    kind=st.integers(-1, 7),
    status=st.integers(-1, 4),
)
def test_limits_cut_drop_and_mark_exactly_what_is_over(
    attrs: dict[str, Any], max_attributes: int, max_value_bytes: int, times: tuple[int, int], kind: int, status: int
) -> None:
    span = _Span(times[0], times[1], kind, _Status(status))
    marked: dict[str, int] = {}
    out = apply_span_limits(span, dict(attrs), SpanLimits(max_attributes, max_value_bytes), marked)
    kept = {k: v for k, v in out.items() if k not in _MARKS}
    # Count: at most the limit, the rest dropped and counted, well-known keys kept before any other.
    assert set(kept) <= set(attrs)
    if max_attributes and len(attrs) > max_attributes:
        assert len(kept) == max_attributes and out[DROPPED_ATTRIBUTES] == len(attrs) - max_attributes
        if any(not k.startswith(_PRIORITY) for k in kept):
            assert all(k in kept for k in attrs if k.startswith(_PRIORITY))
    else:
        assert set(kept) == set(attrs) and DROPPED_ATTRIBUTES not in out
    # Length: nothing over the limit; exactly the cut values listed, each a prefix of what was sent.
    truncated = out.get(TRUNCATED_ATTRIBUTES, [])
    for key, value in kept.items():
        if key in truncated:
            assert isinstance(value, str) and _as_text(attrs[key]).startswith(value)
            assert len(_as_text(attrs[key]).encode()) > max_value_bytes >= len(value.encode())
        else:
            assert value == attrs[key] or value != value  # (NaN)
            if max_value_bytes and isinstance(value, (str, list, dict)):  # (numbers, booleans, null: never cut)
                assert len(_as_text(value).encode()) <= max_value_bytes
    # Anomalies are flagged, the span is kept as sent; each mark counted once under its reason.
    start, end = times
    assert out.get(END_BEFORE_START, False) is (end < start)
    assert out.get(TIME_OUT_OF_RANGE, False) is (max(start, end) > MAX_TIME_NS)
    assert out.get(UNKNOWN_KIND) == (None if 0 <= kind <= 5 else kind)
    assert out.get(UNKNOWN_STATUS) == (None if 0 <= status <= 2 else status)
    assert marked == {MARK_REASONS[m]: 1 for m in _MARKS if m in out}


# Values whose JSON is long for their shape: escaped control characters, astral characters, the
# longest floats and ints, nesting (what `within_limits` bounds instead of encoding).
_JSON_HEAVY = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**63 - 1) | st.sampled_from([-(2**63), 2**64]),
        st.floats() | st.sampled_from([-2.2250738585072014e-308, -1.2345678901234567e-100, -1.2345678901234568e-05]),
        st.text(alphabet=st.sampled_from('\x00\x1f"\\aé€😀\u2028'), max_size=6),
        st.text(alphabet="\x00\x1f", min_size=1, max_size=12),  # 6 bytes a character, the most
    ),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(alphabet="\x01aé😀", max_size=3), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=500, deadline=None)
@given(_JSON_HEAVY)
def test_the_json_bound_of_a_value_is_never_below_its_json(value: Any) -> None:
    assert limits._json_bound(value) >= len(msgspec.json.encode(value))


@settings(max_examples=500, deadline=None)
@given(
    attrs=st.dictionaries(st.text(alphabet="aé😀", max_size=5), st.one_of(_LONG_VALUES, _JSON_HEAVY), max_size=5),
    name=st.text(alphabet="aé😀", max_size=6),
    span_limits=st.builds(
        SpanLimits,
        st.sampled_from([0, 2, 5]),
        st.integers(0, 120),
        st.just(0),
        st.sampled_from([0, 1, 4, 8]),
    ),
    times=st.tuples(_TIMES, _TIMES),
    kind=st.integers(-1, 7),
    status=st.integers(-1, 4),
)
def test_a_span_within_the_limits_is_left_as_it_is(
    attrs: dict[str, Any], name: str, span_limits: SpanLimits, times: tuple[int, int], kind: int, status: int
) -> None:
    """`within_limits` (what the decoders send with each span, so that `limit_span` skips its walk)
    is only ever true of a span the exact path leaves alone: its JSON bound of arrays/maps is sound."""
    marked: dict[str, int] = {}
    fields = (times[0], times[1], kind, status, name, attrs)
    exact = limit_span(*fields, span_limits, marked, within=False)
    if within_limits(*fields, span_limits):
        assert exact is attrs and marked == {}
        assert limit_span(*fields, span_limits, marked) is attrs


# --- pricing --------------------------------------------------------------------------------------

_SNAPSHOT = data_snapshot.get_snapshot()
_MODELS = [(p, m) for p in _SNAPSHOT.providers for m in p.models]
_QUANTUM = Decimal("0.000000000001")
_DAY_NS = 86_400 * 10**9
_PLAIN_FIELDS = {"input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok"}


def _plain(price: Any) -> bool:
    """A flat per-token price (no tiers, no other units): cost is tokens x rates, nothing else."""
    values = {k: v for k, v in vars(price).items() if v is not None and not k.startswith("_")}
    return set(values) <= _PLAIN_FIELDS and all(type(v) is Decimal for v in values.values())


_PLAIN_MODELS = [(p.id, m.id, m.prices) for p, m in _MODELS if isinstance(m.prices, ModelPrice) and _plain(m.prices)]
_COUNTS = st.tuples(*(st.one_of(st.none(), st.integers(-5, 3_000_000)) for _ in range(4)))


def _q(value: Decimal) -> Decimal:
    return value.quantize(_QUANTUM, ROUND_HALF_EVEN)


@settings(max_examples=400, deadline=None)
@given(model=st.sampled_from(_PLAIN_MODELS), counts=_COUNTS, day=st.integers(19_000, 21_000))
def test_cost_is_tokens_times_the_rates_cache_aware(
    model: tuple[str, str, ModelPrice], counts: tuple[int | None, ...], day: int
) -> None:
    provider, model_id, price = model
    cost = PriceBook().cost(provider, (model_id,), day * _DAY_NS, sanitize_usage(*counts))
    assume(cost.source == f"genai-prices:{provider}/{model_id}")  # (a model id another model's rule answers)
    usage = sanitize_usage(*counts)
    # Input tokens include the cache tokens; those priced at a cache rate are not also priced as input.
    read_rate, write_rate = price.cache_read_mtok, price.cache_write_mtok
    plain_input = usage.input - (usage.cache_read if read_rate is not None else 0)
    plain_input -= usage.cache_write if write_rate is not None else 0
    zero = Decimal(0)
    cost_in = (price.input_mtok or zero) * plain_input + (read_rate or zero) * usage.cache_read
    cost_in += (write_rate or zero) * usage.cache_write
    cost_out = (price.output_mtok or zero) * usage.output
    assert (cost.input, cost.output) == (_q(cost_in / 10**6), _q(cost_out / 10**6))
    assert cost.total == cost.input + cost.output and cost.known


def _price_changes(model: Any) -> list[int]:
    if isinstance(model.prices, ModelPrice):
        return [20_000]
    return [
        (c.constraint.start_date - dt.date(1970, 1, 1)).days
        for c in model.prices
        if isinstance(c.constraint, StartDateConstraint)
    ] or [20_000]


@st.composite
def _priced_call(draw: st.DrawFn) -> tuple[Any, Any, int, Usage4]:
    provider, model = draw(st.sampled_from(_MODELS))
    day = draw(st.one_of(st.sampled_from(_price_changes(model)), st.integers(19_000, 21_000)))
    start_ns = day * _DAY_NS + draw(st.one_of(st.integers(-(10**7), 10**7), st.integers(0, _DAY_NS - 1)))
    counts = draw(st.tuples(*(st.one_of(st.integers(0, 300_000), st.sampled_from([128_000, 200_000, 200_001]))
                             for _ in range(4))))  # fmt: skip
    return provider, model, start_ns, sanitize_usage(*counts)


@settings(max_examples=500, deadline=None)
@given(_priced_call())
def test_cost_is_what_genai_prices_computes_for_every_model(call: tuple[Any, Any, int, Usage4]) -> None:
    """Tiers, dated prices, per-request fees: the price book's fast path gives genai-prices' own result."""
    provider, model, start_ns, usage = call
    book = PriceBook()
    cost = book.cost(provider.id, (model.id,), start_ns, usage)
    assume(cost.source == f"genai-prices:{provider.id}/{model.id}")
    when = dt.datetime.fromtimestamp(start_ns / 1e9, tz=dt.timezone.utc)
    tokens = Usage(
        input_tokens=usage.input,
        output_tokens=usage.output,
        cache_read_tokens=usage.cache_read,
        cache_write_tokens=usage.cache_write,
    )
    try:
        expected = model.calc_price(tokens, provider, genai_request_timestamp=when)
    except (ValueError, ArithmeticError):
        assert not cost.known and cost.total is None
        return
    fee = expected.total_price - expected.input_price - expected.output_price
    assert (cost.input, cost.output) == (_q(expected.input_price), _q(expected.output_price))
    assert cost.total == _q(expected.input_price) + _q(expected.output_price) + _q(fee)
    assert book.cost(provider.id, (model.id,), start_ns, usage) == cost  # again, from the caches


@settings(max_examples=200, deadline=None)
@given(
    rates=st.tuples(
        *(st.decimals(0, 100, places=3) for _ in range(2)),
        *(st.none() | st.decimals(0, 10, places=4) for _ in range(2)),
    ),
    counts=_COUNTS,
    per_request=st.decimals(0, 1, places=3),
)
def test_user_prices_are_tokens_times_their_rates(
    rates: tuple[Decimal, Decimal, Decimal | None, Decimal | None], counts: tuple[int | None, ...], per_request: Decimal
) -> None:
    price = UserPrice("my-*", *rates, per_request=per_request)
    usage = sanitize_usage(*counts)
    cost = PriceBook((price,)).cost("any", ("my-model",), 0, usage)
    input_rate, output_rate, read_rate, write_rate = rates
    plain_input = usage.input - (usage.cache_read if read_rate is not None else 0)
    plain_input -= usage.cache_write if write_rate is not None else 0
    zero = Decimal(0)
    cost_in = input_rate * plain_input + (read_rate or zero) * usage.cache_read
    cost_in += (write_rate or zero) * usage.cache_write
    assert (cost.input, cost.output) == (_q(cost_in / 10**6), _q(output_rate * usage.output / 10**6))
    assert cost.total == cost.input + cost.output + _q(per_request) and cost.source == "user:my-*"


# A partition's rows as `price_rows` reads them: models with fixed prices (most calls), dated prices, unknown
# and routed ones, and rows without one; drawn from a few per partition, so that rows repeat them.
_ROW_MODELS = st.sampled_from(
    [
        (None, None),
        ("openai", ""),
        ("openai", "no-such-model-x"),
        (None, "openai/gpt-4o-mini"),
        ("openai", "gpt-4o-mini-2024-07-18"),
        ("openai", "gpt-4o"),
        ("anthropic", "claude-3-5-haiku-20241022"),
        ("anthropic", "claude-sonnet-4-5-20250929"),
        *((p.id, m.id) for p, m in _MODELS[::7]),
    ]
)


@st.composite
def _priced_rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Rows drawing their models and providers from a few per partition (so the rows repeat them)."""
    pool = draw(st.lists(_ROW_MODELS, min_size=1, max_size=3))
    models = st.sampled_from([m for _, m in pool])
    providers = st.sampled_from([p for p, _ in pool])
    row = st.fixed_dictionaries(
        {
            "operation": st.sampled_from(["chat", "text_completion", "embeddings", "execute_tool", None]),
            "provider": providers,
            "response_model": models,
            "request_model": models,
            **{name: st.one_of(st.none(), st.integers(-5, 3_000_000)) for name in pricing._USAGE},
            "start_ns": st.one_of(
                st.integers(19_000 * _DAY_NS, 21_000 * _DAY_NS), st.sampled_from([0, 2**63 - 1, 20_000 * _DAY_NS])
            ),
            "status_code": st.sampled_from(["UNSET", "OK", "ERROR"]),
            "reported_cost_usd": st.one_of(st.none(), st.decimals(0, 5, places=12)),
        }
    )
    return draw(st.lists(row, min_size=1, max_size=12))


@settings(max_examples=200, deadline=None)
@given(_priced_rows())
def test_price_rows_prices_each_row_as_the_price_book_prices_one_call(rows: list[dict[str, Any]]) -> None:
    """`price_rows` looks a model's fixed rates up once per partition (`fixed_rates`, then `rated_row` per row):
    every row gets what `cost_row` (the general path, dated and user prices included) gives that call alone."""
    book, reference = PriceBook(), PriceBook()
    cols: dict[str, list[Any]] = {name: [row[name] for row in rows] for name in rows[0]}
    cols.update({name: [None] * len(rows) for name in pricing.COST_FIELDS})
    pricing.price_rows(cols, book)
    for i, row in enumerate(rows):
        got = tuple(cost_decimal(cols[name][i]) for name in pricing.COST_FIELDS[:3]) + tuple(
            cols[name][i] for name in pricing.COST_FIELDS[3:]
        )
        if row["operation"] not in normalize.LLM_OPERATIONS:
            assert got == (None,) * 5
            continue
        counts = [row[name] for name in pricing._USAGE]
        usage = None if all(c is None for c in counts) else sanitized_counts(*counts)
        models = (row["response_model"], row["request_model"])
        error = row["status_code"] == "ERROR"
        want = reference.cost_row(row["provider"], models, row["start_ns"], usage, error=error) if any(models) else None
        if want is None or not want[3]:  # a model the price source does not know: the reported cost, if any
            reported = row["reported_cost_usd"]
            want = (None, None, None, False, None) if reported is None else (reported, None, None, True, "reported")
        assert got == want, (row, got, want)


@settings(max_examples=100, deadline=None)
@given(counts=_COUNTS, error=st.booleans(), model=st.sampled_from(["no-such-model-x", "gpt-4o"]))
def test_unknown_models_cost_null_and_calls_without_usage_are_not_billed_when_failed(
    counts: tuple[int | None, ...], error: bool, model: str
) -> None:
    book = PriceBook()
    unknown = book.cost("openai", ("no-such-model-x",), 0, sanitize_usage(*counts), error=error)
    assert (unknown.total, unknown.known) == (None, False)
    no_usage = book.cost("openai", (model,), 0, None, error=error)
    assert (no_usage.total, no_usage.known) == ((Decimal(0), True) if error else (None, False))
    # The exclusive convention (cache tokens reported beside input, not in it) is added back.
    usage = sanitize_usage(*counts)
    assert usage.input >= usage.cache_read + usage.cache_write and min(dataclasses.astuple(usage)) >= 0


# --- a decode worker's price table -----------------------------------------------------------------


def _shipped(table: pricing.PriceTable) -> pricing.PriceTable:
    """The table as a worker gets it (pickled with its task)."""
    shipped = pickle.loads(pickle.dumps(table))
    assert isinstance(shipped, pricing.PriceTable)
    return shipped


@settings(max_examples=500, deadline=None)
@given(_priced_call(), st.booleans(), st.sampled_from([None, UserPrice("gpt-4o*", Decimal("2.5"), Decimal(10))]))
def test_a_worker_table_prices_a_call_as_the_price_book_or_leaves_it_to_the_book(
    call: tuple[Any, Any, int, Usage4], error: bool, user: UserPrice | None
) -> None:
    """Fixed, dated and tiered prices, user prices over the DB, unknown models: what the table gives is
    exactly the book's `cost_row`, and it leaves a call to the book only where its plain data cannot
    decide (a price only genai-prices' full rules compute, a dated price within a millisecond of midnight)."""
    provider, model, start_ns, usage = call
    book = PriceBook(() if user is None else (user,))
    counts = (usage.input, usage.output, usage.cache_read, usage.cache_write)
    for models in [(model.id,), (f"{provider.id}/{model.id}", None), ("no-such-model-x", model.id)]:
        table = pricing.PriceTable()
        assert table.cost_row(provider.id, models, start_ns, counts, error=error) is None
        assert table.learn(book, table.take_missing()) and not table.missing
        got = _shipped(table).cost_row(provider.id, models, start_ns, counts, error=error)
        want = book.cost_row(provider.id, models, start_ns, counts, error=error)
        if got is None:
            entries = [table.entries[(provider.id, m)] for m in models if m]
            dated = [e for e in entries if isinstance(e, pricing.DbPrice) and e.days]
            near_midnight = not pricing.MIDNIGHT_MARGIN_NS <= start_ns % _DAY_NS < _DAY_NS - pricing.MIDNIGHT_MARGIN_NS
            assert pricing.BOOK_ONLY in entries or (dated and near_midnight), (models, entries)
        else:
            assert got == want


@settings(max_examples=200, deadline=None)
@given(_priced_rows())
def test_price_rows_by_a_worker_table_stores_what_the_price_book_stores(rows: list[dict[str, Any]]) -> None:
    """As a decode pool runs it: a worker's table first empty (it names the models it lacks), then with the
    book's resolution of those; rows it still leaves are the book's (the collector decodes the record)."""
    book, table = PriceBook(), pricing.PriceTable()

    def columns() -> dict[str, list[Any]]:
        cols: dict[str, list[Any]] = {name: [row[name] for row in rows] for name in rows[0]}
        cols.update({name: [None] * len(rows) for name in pricing.COST_FIELDS})
        return cols

    want, got = columns(), columns()
    assert pricing.price_rows(want, book)
    if not pricing.price_rows(got, table):
        table.learn(book, table.take_missing())
        got = columns()
        if not pricing.price_rows(got, _shipped(table)):
            got = columns()
            assert pricing.price_rows(got, book)
    assert got == want


def test_a_sender_minting_model_names_leaves_the_price_caches_bounded() -> None:
    """Model names are the client's: new ones without end restart the worker table (pickled with every
    task) and the book's per-model cache at their bounds, and what they price is still the book's."""
    book, table = PriceBook(), pricing.PriceTable()
    counts = (1000, 100, 0, 0)
    for n in range(pricing.PriceTable.MAX_ENTRIES + 10):
        table.learn(book, [("openai", f"minted-{n}")])
        assert len(table.entries) <= pricing.PriceTable.MAX_ENTRIES
    version = table.version
    table.learn(book, [("openai", "gpt-4o")])  # a real model after the restart: learned, priced as the book does
    assert table.version == version + 1 and ("openai", "minted-0") not in table.entries
    got = _shipped(table).cost_row("openai", ("gpt-4o",), 1_750_000_000 * 10**9, counts, error=False)
    assert got == book.cost_row("openai", ("gpt-4o",), 1_750_000_000 * 10**9, counts, error=False)
    small = PriceBook()
    small.MAX_CACHED_MODELS = 8
    for n in range(20):
        assert small.cost_row("openai", (f"minted-{n}",), 0, counts, error=False) == pricing.UNKNOWN_ROW
        assert len(small._cache) <= 8
