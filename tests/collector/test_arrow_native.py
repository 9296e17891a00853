"""The C extension's Arrow columns (`_arrow_rows.c`) against pyarrow's conversion of the same lists.

The decode workers build each partition's span table from column lists; where the extension answers,
the table must be pyarrow's (values, nulls, types), on any rows: any Unicode, empty strings, huge or
negative ints, NaN and infinities, nested lists and content refs. Where a value is not what its column
holds (a bool in an int column, an int beyond int64, a lone surrogate, a tuple for a list...) it must
answer None, so pyarrow decides, and `to_part` must set aside the same rows either way. And it must
answer for the usual rows, or it saves nothing.
"""

from __future__ import annotations

import itertools
import os
from decimal import Decimal, localcontext
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from llmscope_collector.processors import arrow_native, decode, previews, stitch
from llmscope_collector.processors.cost import PriceBook
from llmscope_collector.processors.previews import PREVIEW_CANDIDATES
from llmscope_collector.storage.batch import DecodedPart
from llmscope_collector.storage.schema import (
    CONTENT_ITEM_SCHEMA,
    CONTENT_ITEMS,
    CONTENT_REF_TYPE,
    COST_TYPE,
    SPAN_SCHEMA,
    cost_decimal,
)
from tests.otlp_strategies import otlp_llm_requests

if os.environ.get("LLMSCOPE_REQUIRE_NATIVE") and not arrow_native.AVAILABLE:  # CI builds it: a failed build fails
    raise RuntimeError("LLMSCOPE_REQUIRE_NATIVE is set but the C extension _arrow_rows is not built")
pytestmark = pytest.mark.skipif(not arrow_native.AVAILABLE, reason="the C extension is not built")

_PRICES = PriceBook()
_PURE = arrow_native.RowArrays(pa.schema([]))  # builds no column: `_span_table` converts all with pyarrow

_TEXT = st.text(max_size=8) | st.sampled_from(["", "é", "日本", "😀", "\x00", "a" * 300, "ÿ" * 40])
_ODD_TEXT = st.text(st.characters(exclude_categories=()), max_size=6)  # lone surrogates too
_INT = st.integers(-(2**63), 2**63 - 1) | st.sampled_from([0, -1, 2**63 - 1, -(2**63)])
_FLOAT = st.floats() | st.sampled_from([float("nan"), float("inf"), float("-inf"), -0.0, 5e-324])
_REF = st.tuples(_TEXT, _TEXT, _TEXT, _INT)
_COST = st.decimals(min_value=-(10**5), max_value=10**5, places=12, allow_nan=False)
# A cost as `price_rows` writes the common row's: an int counting 1e-12 USD (`schema.cost_decimal`).
_UNITS = st.integers(-(10**18) + 1, 10**18 - 1) | st.sampled_from([0, -1, 10**18 - 1, -(10**18) + 1])
_ODD_UNITS = st.integers(-(2**70), 2**70) | st.sampled_from([10**18, -(10**18), 2**63, -(2**63) - 1, 2**64])
# Decimals as text writes them (any exponent, trailing zeros, signed zeros, NaN, infinities), around the
# column's bounds: 18 digits at scale 12, pyarrow's precision count (a zero's exponent counts too).
_EDGE_DECIMALS = [
    "0", "-0", "0E+6", "0E+7", "-0E-12", "0E-20", "0E-39", "0E+39", "1E+3", "1E+5", "1E+6", "5E+2",
    "0.000000000001", "0.0000000000001", "1E-13", "10E-13", "1.0000000000000", "1." + "0" * 30,
    "0.1" + "0" * 39, "999999.999999999999", "-999999.999999999999", "1000000", "-1E+5", "1E-38", "1E+38",
    "123456789012345678E-12", "1234567890123456789E-13", "NaN", "-sNaN", "Infinity", "-Infinity", "1e3",
    "12.5E-3", "-0.000001", "1E-7",
]  # fmt: skip
_ANY_COST = st.builds(
    lambda sign, digits, exponent: Decimal((sign, tuple(int(d) for d in digits), exponent)),
    st.integers(0, 1),
    st.text("0123456789", min_size=1, max_size=40),
    st.integers(-45, 45),
) | st.sampled_from([Decimal(t) for t in _EDGE_DECIMALS])
_ENTRY = st.tuples(_TEXT, _TEXT)
_MAP = st.lists(_ENTRY, max_size=3) | st.lists(_ENTRY, min_size=1, max_size=1).map(lambda e: e + e)  # duplicates
_ODD = st.sampled_from([True, False, 1, 2**64, -(2**63) - 1, 1.5, b"x", "\ud800", "a\udfffb", (), ("a",), {}])

# The values of each type's column: the plain ones the decode makes, and the odd ones pyarrow decides on.
_PLAIN: dict[pa.DataType, st.SearchStrategy[Any]] = {
    pa.string(): _TEXT,
    pa.int64(): _INT,
    pa.bool_(): st.booleans(),
    pa.float64(): _FLOAT,
    pa.list_(pa.string()): st.lists(st.none() | _TEXT, max_size=3),
    pa.list_(CONTENT_REF_TYPE): st.lists(st.none() | _REF, max_size=3),
    COST_TYPE: _COST | _UNITS,
    pa.map_(pa.string(), pa.string()): _MAP,
}
_ODD_VALUES: dict[pa.DataType, st.SearchStrategy[Any]] = {
    pa.string(): _ODD_TEXT | _ODD,
    pa.int64(): st.integers(-(2**70), 2**70) | _ODD,
    pa.bool_(): _ODD,
    pa.float64(): st.integers() | _ODD,
    pa.list_(pa.string()): st.tuples(_TEXT) | st.lists(_ODD_TEXT | _ODD, max_size=2) | _ODD,
    pa.list_(CONTENT_REF_TYPE): st.lists(st.tuples(_TEXT, _TEXT) | st.tuples(_ODD, _TEXT, _TEXT, _ODD), max_size=2)
    | _ODD,
    COST_TYPE: _ANY_COST | _ODD_UNITS | st.sampled_from([True, 1.5, "1", Decimal]),
    pa.map_(pa.string(), pa.string()): st.lists(
        st.tuples(_ODD_TEXT, _ODD_TEXT) | st.tuples(_TEXT, st.none()) | st.tuples(_TEXT) | st.lists(_TEXT), max_size=2
    )
    | st.dictionaries(_TEXT, _TEXT, max_size=2)
    | _ODD,
}


@st.composite
def _columns(draw: st.DrawFn, odd: bool) -> dict[str, list[Any]]:
    """A partition's column lists (`to_part`'s input): mostly nulls and plain values, some odd when `odd`."""
    count = draw(st.integers(0, 6))
    cols: dict[str, list[Any]] = {}
    for field in SPAN_SCHEMA:
        values = st.none() | _PLAIN[field.type]
        if odd and draw(st.integers(0, 9)) == 0:
            values = values | _ODD_VALUES[field.type]
        cols[field.name] = draw(st.lists(values, min_size=count, max_size=count))
    cols[CONTENT_ITEMS] = [[] for _ in range(count)]
    return cols


def _to_part(cols: dict[str, list[Any]]) -> DecodedPart | type[BaseException]:
    """`to_part` of a copy of `cols`, or the type of what it raised (a lone surrogate in a row set
    aside fails its JSON line: the decoders never make one, both paths must fail alike)."""
    try:
        return decode.to_part({k: list(v) for k, v in cols.items()})
    except UnicodeEncodeError as exc:
        return type(exc)


def _both(cols: dict[str, list[Any]]) -> tuple[DecodedPart | type[BaseException], DecodedPart | type[BaseException]]:
    """`to_part` of `cols` with the extension, then without (pyarrow's conversion only: spans, content
    items and preview candidates)."""
    native = _to_part(cols)
    built = decode._NATIVE, decode._CONTENT_NATIVE, previews._CANDIDATES_NATIVE
    decode._NATIVE = decode._CONTENT_NATIVE = previews._CANDIDATES_NATIVE = _PURE
    try:
        pure = _to_part(cols)
    finally:
        decode._NATIVE, decode._CONTENT_NATIVE, previews._CANDIDATES_NATIVE = built
    return native, pure


def _float_bits(values: list[Any]) -> list[Any]:
    return [None if v is None else v.hex() for v in values]  # NaN equals NaN, -0.0 differs from 0.0


def _assert_same_table(native: pa.Table, pure: pa.Table) -> None:
    native.validate(full=True)
    assert native.schema == pure.schema
    for name in pure.column_names:
        a, b = native.column(name), pure.column(name)
        if pa.types.is_floating(a.type):
            assert _float_bits(a.to_pylist()) == _float_bits(b.to_pylist()), name
        else:
            assert a.equals(b), name


@settings(max_examples=100, deadline=None)
@given(_columns(odd=False))
@example({**{f.name: [None] for f in SPAN_SCHEMA}, CONTENT_ITEMS: [[]]})
def test_plain_rows_are_built_natively_as_pyarrow_builds_them(cols: dict[str, list[Any]]) -> None:
    arrays = decode._NATIVE.arrays(cols)
    assert arrays is not None
    assert len(arrays) == len(decode._NATIVE.positions) == len(SPAN_SCHEMA)  # every column
    for i, array in zip(decode._NATIVE.positions, arrays, strict=True):
        array.validate(full=True)
        expected = _pyarrows(cols[SPAN_SCHEMA.field(i).name], SPAN_SCHEMA.field(i).type)
        if pa.types.is_floating(array.type):
            assert _float_bits(array.to_pylist()) == _float_bits(expected.to_pylist())
        else:
            assert array.equals(expected), SPAN_SCHEMA.field(i).name


@settings(max_examples=100, deadline=None)
@given(_columns(odd=True))
def test_any_rows_make_the_same_part_either_way(cols: dict[str, list[Any]]) -> None:
    """Odd values: the extension answers None and pyarrow decides, setting the same rows aside."""
    native, pure = _both(cols)
    if not isinstance(native, DecodedPart) or not isinstance(pure, DecodedPart):
        assert native == pure
        return
    _assert_same_table(native.spans, pure.spans)
    assert native.unstorable == pure.unstorable
    assert native.content.equals(pure.content)
    assert native.content.schema == pure.content.schema
    assert (native.previews is None) == (pure.previews is None)
    if native.previews is not None and pure.previews is not None:
        assert native.previews.equals(pure.previews)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("start_ns", True),  # a bool is an int to Python, not to pyarrow
        ("start_ns", 2**63),
        ("ttft_s", 1),  # pyarrow converts an int to a float: the extension leaves it to pyarrow
        ("name", "\ud800"),
        ("name", b"bytes"),
        ("tags", ("a", "b")),
        ("content_refs", [("input", "gen_ai.input.messages", "h")]),
    ],
)
def test_a_value_the_extension_does_not_decide_is_left_to_pyarrow(column: str, value: Any) -> None:
    cols: dict[str, list[Any]] = {f.name: [None, None] for f in SPAN_SCHEMA}
    cols[column][1] = value
    assert decode._NATIVE.arrays(cols) is None
    cols[column][1] = None
    assert decode._NATIVE.arrays(cols) is not None


def test_the_usual_bench_rows_are_built_natively() -> None:
    """Costs as `price_rows` writes them, content refs as the split makes them, a non-ASCII name."""
    cols: dict[str, list[Any]] = {f.name: [None] * 3 for f in SPAN_SCHEMA}
    cols.update(
        trace_id=["ab" * 16] * 3,
        name=["chat gpt-4o", "réponse ✓", "工具"],
        start_ns=[1, 2**62, -5],
        cost_usd=[Decimal("0.003255000000"), None, 0],
        cost_input_usd=[1_000_000_000, Decimal("-0E-12"), None],
        metadata=[[("user", "ü"), ("user", "b")], [], None],
        content_refs=[[("input", "gen_ai.input.messages", "0" * 32, 1366)], None, []],
        finish_reasons=[["stop"], [], None],
        is_stream=[True, False, None],
    )
    assert decode._NATIVE.arrays(cols) is not None
    native = decode._span_table(cols)
    costs = {f.name: list(map(cost_decimal, cols[f.name])) for f in SPAN_SCHEMA if f.type == COST_TYPE}
    _assert_same_table(native, pa.Table.from_pydict({**cols, **costs}, schema=SPAN_SCHEMA))


def _pyarrows(values: list[Any], type_: pa.DataType) -> pa.Array:
    """pyarrow's array of a decoded column (a cost column's ints are units: `decode._span_table` converts them)."""
    return pa.array(list(map(cost_decimal, values)) if type_ == COST_TYPE else values, type_)


def _one_column(type_: pa.DataType, values: list[Any]) -> tuple[pa.Table | None, pa.Array | None]:
    """The extension's table of one column of `values`, and pyarrow's array (None: pyarrow refuses them)."""
    native = arrow_native.RowArrays(pa.schema([("c", type_)])).table([values])
    try:
        expected = _pyarrows(values, type_)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        return native, None
    return native, expected


def _assert_pyarrows(native: pa.Table | None, expected: pa.Array | None) -> None:
    """Where the extension answers, pyarrow converts the values alike; where pyarrow refuses, it answers None."""
    if expected is None:
        assert native is None
    elif native is not None:
        native.validate(full=True)
        assert native.column(0).chunk(0).equals(expected)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.none() | _ANY_COST | _COST, max_size=4))
@example([Decimal("-0"), Decimal("0E-20"), Decimal("1E+3"), Decimal("0.000000000001"), None])
def test_decimals_are_converted_as_pyarrow_converts_them(values: list[Any]) -> None:
    """Any coefficient and exponent: where pyarrow stores the value, the extension stores the same 128 bits
    or defers; where pyarrow refuses it (digits below 1e-12, over 18 digits, NaN), the extension defers."""
    _assert_pyarrows(*_one_column(COST_TYPE, values))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.none() | _UNITS | _ODD_UNITS | _COST, max_size=4))
@example([10**18 - 1, -(10**18) + 1, 0, None, Decimal("1.5")])
def test_int_costs_are_stored_as_units_of_the_scale(values: list[Any]) -> None:
    """An int in a cost column counts 1e-12 USD (`schema.cost_decimal`, as `price_rows` writes the common
    row): stored as that Decimal; one beyond 18 digits is pyarrow's to refuse."""
    native, expected = _one_column(COST_TYPE, values)
    _assert_pyarrows(native, expected)
    if all(v is None or isinstance(v, Decimal) or abs(v) < 10**18 for v in values):
        assert native is not None


@pytest.mark.parametrize("text", _EDGE_DECIMALS)
def test_an_edge_decimal_is_decided_as_pyarrow_decides_it(text: str) -> None:
    """Each edge converted as pyarrow converts it, and only a scale beyond +-38 (not decided here) left to
    pyarrow where it stores the value."""
    native, expected = _one_column(COST_TYPE, [Decimal(text)])
    _assert_pyarrows(native, expected)
    if expected is not None and text != "0E-39":
        assert native is not None, text


def test_a_decimal_printed_with_a_lower_case_exponent_is_left_to_pyarrow() -> None:
    """str(Decimal) follows the thread's context (`capitals=0`: "1e+3"): a spelling the extension does not
    parse is pyarrow's to convert."""
    with localcontext() as context:  # (not `localcontext(capitals=0)`: Python 3.11 and later only)
        context.capitals = 0
        native, expected = _one_column(COST_TYPE, [Decimal("1E+3")])
    assert native is None and expected is not None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.none() | _MAP | _ODD_VALUES[pa.map_(pa.string(), pa.string())], max_size=4))
def test_maps_are_converted_as_pyarrow_converts_them(values: list[Any]) -> None:
    """Lists of (str, str) tuples (empty, duplicate keys, any Unicode) as pyarrow's; anything else (a
    dict, a None value, a lone surrogate, a 1-tuple) is pyarrow's to decide."""
    native, expected = _one_column(pa.map_(pa.string(), pa.string()), values)
    _assert_pyarrows(native, expected)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.none() | _COST.map(lambda d: d.quantize(Decimal("1E-12"))), max_size=4), st.lists(_MAP, max_size=4))
def test_the_decodes_costs_and_maps_are_built_natively(costs: list[Any], maps: list[Any]) -> None:
    """Costs quantized to 12 places (`pricing.priced`, `normalize._reported_cost`) and metadata as the
    normalizer makes it: the extension's to build, or the span table is pyarrow's again."""
    assert _one_column(COST_TYPE, costs)[0] is not None
    assert _one_column(pa.map_(pa.string(), pa.string()), maps)[0] is not None


# The small tables a part has beside its spans, built whole by the extension (`RowArrays.table`).
_SIDE_TABLES = (CONTENT_ITEM_SCHEMA, PREVIEW_CANDIDATES)
_INT32 = st.integers(-(2**31), 2**31 - 1) | st.sampled_from([0, -1, 2**31 - 1, -(2**31)])
_SIDE_PLAIN: dict[pa.DataType, st.SearchStrategy[Any]] = {pa.string(): _TEXT, pa.int64(): _INT, pa.int32(): _INT32}
_SIDE_ODD: dict[pa.DataType, st.SearchStrategy[Any]] = {
    pa.string(): _ODD_VALUES[pa.string()],
    pa.int64(): _ODD_VALUES[pa.int64()],
    pa.int32(): st.integers(-(2**40), 2**40) | _ODD,
}


@st.composite
def _side_table(draw: st.DrawFn) -> tuple[pa.Schema, list[list[Any]]]:
    """One of the side tables' schemas and its column lists: mostly plain values, sometimes an odd one."""
    schema = draw(st.sampled_from(_SIDE_TABLES))
    count = draw(st.integers(0, 6))
    columns = []
    for field in schema:
        values = st.none() | _SIDE_PLAIN[field.type]
        if draw(st.integers(0, 4)) == 0:
            values = values | _SIDE_ODD[field.type]
        columns.append(draw(st.lists(values, min_size=count, max_size=count)))
    return schema, columns


@settings(max_examples=200, deadline=None)
@given(_side_table())
@example((PREVIEW_CANDIDATES, [[2**31], ["t"], [1], [2], [None], ["é"]]))  # a row beyond int32: pyarrow refuses it
def test_a_side_table_is_built_natively_as_pyarrow_builds_it(drawn: tuple[pa.Schema, list[list[Any]]]) -> None:
    """Where the extension answers, the table is pyarrow's; where it answers None, pyarrow decides."""
    schema, columns = drawn
    native = arrow_native.RowArrays(schema).table(columns)
    try:
        expected = pa.Table.from_arrays(
            [pa.array(c, f.type) for c, f in zip(columns, schema, strict=True)], schema=schema
        )
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        assert native is None
        return
    if native is not None:
        native.validate(full=True)
        assert native.schema == schema
        assert native.equals(expected)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(_SIDE_PLAIN[pa.int32()], _TEXT, _INT, _INT, st.none() | _TEXT, st.none() | _TEXT), max_size=5)
)
def test_plain_side_tables_are_built_natively(rows: list[tuple[Any, ...]]) -> None:
    """The rows the decode makes (in-range rows, any Unicode) are the extension's to build, or it saves nothing."""
    columns = [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in PREVIEW_CANDIDATES]
    assert arrow_native.RowArrays(PREVIEW_CANDIDATES).table(columns) is not None
    assert arrow_native.RowArrays(CONTENT_ITEM_SCHEMA).table(columns[1:5:3]) is not None


def test_a_schema_with_a_column_the_extension_does_not_build_gets_no_native_table() -> None:
    schema = pa.schema([("hash", pa.string()), ("cost", pa.decimal128(10, 2))])  # (only the cost columns' decimal)
    assert arrow_native.RowArrays(schema).table([["h"], [None]]) is None


@settings(max_examples=60, deadline=None)
@given(otlp_llm_requests())
def test_a_decoded_request_s_content_and_previews_are_the_same_either_way(request: ExportTraceServiceRequest) -> None:
    """LLM spans with content, as the decoder makes them: the content items and the preview candidates
    the extension builds are pyarrow's."""
    payload = request.SerializeToString()
    native = decode.decode_bytes(payload, "p", _PRICES)
    built = decode._CONTENT_NATIVE, previews._CANDIDATES_NATIVE
    decode._CONTENT_NATIVE = previews._CANDIDATES_NATIVE = _PURE
    try:
        pure = decode.decode_bytes(payload, "p", _PRICES)
    finally:
        decode._CONTENT_NATIVE, previews._CANDIDATES_NATIVE = built
    assert native.partitions.keys() == pure.partitions.keys()
    for key, part in native.partitions.items():
        other = pure.partitions[key]
        assert part.content.equals(other.content)
        assert part.content.schema == other.content.schema
        assert (part.previews is None) == (other.previews is None)
        if part.previews is not None and other.previews is not None:
            assert part.previews.schema == other.previews.schema
            assert part.previews.equals(other.previews)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from("abcd"), st.sampled_from([None, "x", "y", "z", ""])), max_size=40),
    st.integers(0, 3),
)
def test_run_sets_list_each_runs_distinct_values_by_first_row(pairs: list[tuple[str, str | None]], skip: int) -> None:
    """`run_sets` over runs of sorted keys (arrays sliced, as a table's chunks can be): per run, its non-null
    values once each, in the order of their first rows; keys out of order get None (Acero's path)."""
    pairs.sort(key=lambda p: p[0])
    keys = pa.array(["0"] * skip + [k for k, _ in pairs]).slice(skip)
    values = pa.array(["w"] * skip + [v for _, v in pairs]).slice(skip)
    starts = arrow_native.run_starts(keys)
    assert starts is not None
    model: dict[str, dict[str, None]] = {}
    for key, value in pairs:
        found = model.setdefault(key, {})
        if value is not None:
            found[value] = None
    got = arrow_native.run_sets(values, starts)
    assert got is not None and got.to_pylist() == [list(found) for found in model.values()]
    assert starts.to_pylist()[-1] == len(pairs)
    if len(set(k for k, _ in pairs)) > 1:
        assert arrow_native.run_starts(pa.array([k for k, _ in reversed(pairs)])) is None


_CANDIDATE_ROWS = st.lists(
    st.tuples(
        st.sampled_from("abcd"),
        st.none() | st.integers(-2, 2) | st.sampled_from([-(2**63), 2**63 - 1]),
        st.none() | st.integers(-2, 2),
        st.sampled_from([None, "in", "", "in2"]),
        st.sampled_from([None, "out", "", "out2"]),
    ),
    max_size=30,
)


def _candidates(rows: list[tuple[Any, ...]], skip: int) -> pa.Table:
    """Preview candidates of these rows, in runs of trace ids (sorted), each column sliced past `skip`
    leading rows (as a chunk of a larger table can be)."""
    rows = sorted(rows, key=lambda r: r[0])
    pad = [("0", 0, 0, "p", "p")] * skip
    columns = list(zip(*(pad + rows), strict=True)) if pad or rows else [()] * 5
    names = ["trace_id", "start_ns", "end_ns", "input", "output"]
    arrays = [
        pa.array(list(values), PREVIEW_CANDIDATES.field(name).type).slice(skip)
        for name, values in zip(names, columns, strict=True)
    ]
    return pa.table([pa.array(range(len(rows)), pa.int32()), *arrays], schema=PREVIEW_CANDIDATES)


@settings(max_examples=300, deadline=None)
@given(_CANDIDATE_ROWS, st.integers(0, 9), st.booleans())
@example([], 0, False)
@example([("a", None, None, "in", None), ("a", 1, 1, None, "out")], 3, True)
def test_run_best_picks_the_first_least_or_greatest_selected_row(
    rows: list[tuple[Any, ...]], skip: int, descending: bool
) -> None:
    """`run_best` against the same pick in Python: per run, among the selected rows (input valid), the least
    (greatest) start, nulls after every value, ties to the first row; no row where none is selected."""
    table = _candidates(rows, skip)
    keys, times, inputs = (table.column(n).chunk(0) for n in ("trace_id", "start_ns", "input"))
    assert skip == 0 or times.offset == skip
    starts = arrow_native.run_starts(keys)
    assert starts is not None
    got = arrow_native.run_best(times, inputs, starts, descending=descending)
    assert got is not None
    bounds = starts.to_pylist()
    expected: list[int | None] = []
    for first, end in itertools.pairwise(bounds):
        chosen = [r for r in range(first, end) if inputs[r].is_valid]
        order = sorted(
            chosen,
            key=lambda r: (
                times[r].as_py() is None,
                -(times[r].as_py() or 0) if descending else (times[r].as_py() or 0),
            ),
        )
        expected.append(order[0] if order else None)  # (`sorted` is stable: ties keep the first row)
    assert got.to_pylist() == expected


@settings(max_examples=300, deadline=None)
@given(_CANDIDATE_ROWS, st.integers(0, 9))
@example([], 0)
@example([("a", 5, 5, "in", None)], 0)
def test_previews_by_runs_pick_as_the_sort_and_group_by_do(rows: list[tuple[Any, ...]], skip: int) -> None:
    """The writer's candidates (in runs of trace ids): each side's pick per trace by the runs is the stable
    sort's and Acero's hash "first"'s (`_first_per_trace`, the path of candidates in any order), and so are
    the previews `trace_previews` gives any trace ids."""
    table = _candidates(rows, skip)
    by_runs = previews._picks_by_runs(table)
    if table.num_rows == 0:
        assert by_runs is None
        return
    assert by_runs is not None
    for side, at, order in previews._SIDES:
        picked = by_runs[side].filter(by_runs[side].column(f"{side}_first").is_valid()).sort_by("trace_id")
        hashed = previews._first_per_trace(table, side, at, order)
        if hashed is None:
            assert picked.num_rows == 0
            continue
        assert picked.to_pylist() == hashed.select(picked.column_names).sort_by("trace_id").to_pylist()


_INT_SUMS = [field for field in stitch._SUMMED if field != "cost_usd"]
_INT64 = st.none() | st.integers(-3, 3) | st.integers(-(2**63), 2**63 - 1)
_DELTA_ROWS = st.lists(
    st.tuples(
        st.sampled_from("abcd"),
        st.lists(_INT64, min_size=2 + len(_INT_SUMS), max_size=2 + len(_INT_SUMS)),  # start, end, the sums
        st.none() | st.booleans(),
        st.none() | st.integers(-(10**18) + 1, 10**18 - 1).map(lambda units: Decimal(units).scaleb(-12)),
        st.lists(st.sampled_from([None, "", "u", "v"]), min_size=7, max_size=7),  # the firsts, the sets
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(_DELTA_ROWS, st.integers(0, 9))
@example([], 0)
@example([("a", [2**63 - 1] * (2 + len(_INT_SUMS)), True, Decimal("1.5"), [None] * 7)] * 2, 1)
def test_delta_aggregates_by_runs_are_acero_s(rows: list[tuple[Any, ...]], skip: int) -> None:
    """A trace delta's aggregates by runs of trace ids (`stitch._by_runs`: `run_total`, `run_sets`, the
    picks) against Acero's hash group-by of the same inputs (`stitch._hashed`): every column equal, its
    type too, on sums that wrap, all-null runs, single-row runs, no rows, and sliced arrays."""
    rows = sorted(rows, key=lambda r: r[0])
    pad = [("0", [0] * (2 + len(_INT_SUMS)), False, Decimal(0), ["p"] * 7)] * skip
    drawn = pad + rows
    ints = ["start_ns", "end_ns", *_INT_SUMS]
    columns: dict[str, pa.Array] = {
        "trace_id": pa.array([r[0] for r in drawn], pa.string()),
        "is_root": pa.array([r[2] for r in drawn], pa.bool_()),
        "cost_usd": pa.array([r[3] for r in drawn], COST_TYPE),
    }
    columns.update({name: pa.array([r[1][i] for r in drawn], pa.int64()) for i, name in enumerate(ints)})
    strings = [*stitch._FIRSTS, *stitch._SETS]
    columns.update({name: pa.array([r[4][i] for r in drawn], pa.string()) for i, name in enumerate(strings)})
    inputs = pa.table({name: array.slice(skip) for name, array in columns.items()})
    trace_ids = inputs.column("trace_id").chunk(0)
    starts = arrow_native.run_starts(trace_ids)
    assert starts is not None
    got = stitch._by_runs(inputs, trace_ids, starts)
    assert got is not None
    hashed = stitch._hashed(inputs, stitch._HASHED)
    assert sorted(got) == sorted(hashed)
    for name, column in hashed.items():
        assert got[name].type == column.type, name
        assert got[name].to_pylist() == column.to_pylist(), name


_ROW_VALUES = st.one_of(st.none(), st.integers(), st.text(max_size=3), st.lists(st.integers(), max_size=2))


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=0, max_value=6).flatmap(
        lambda w: st.tuples(st.just(w), st.lists(st.tuples(*[_ROW_VALUES] * w), max_size=6))
    )
)
def test_rows_are_transposed_as_zip_transposes_them(drawn: tuple[int, list[tuple[Any, ...]]]) -> None:
    width, rows = drawn
    columns = arrow_native.transpose(rows, width)
    assert columns == ([[] for _ in range(width)] if not rows else [list(c) for c in zip(*rows, strict=True)])
    assert all(type(c) is list for c in columns) and len(columns) == width
    if rows and width:  # the Python path decides what is not a list of tuples of `width`
        assert arrow_native.transpose([*rows[:-1], list(rows[-1])], width) == columns
        with pytest.raises(ValueError):
            arrow_native.transpose([*rows, (*rows[0], None)], width)


_PAIRS = st.lists(
    st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.text(max_size=2)), max_size=4), max_size=5
)


@settings(max_examples=200, deadline=None)
@given(_PAIRS)
def test_content_pairs_are_deduplicated_as_a_dict_deduplicates_them(per_span: list[list[tuple[str, str]]]) -> None:
    items = dict(itertools.chain.from_iterable(per_span))  # (a key's first place, its last value)
    assert arrow_native.unique_pairs(per_span) == (list(items), list(items.values()))
    if per_span and per_span[0]:  # not lists of 2-tuples: the dict decides (and raises what it raises)
        as_lists = [[list(pair) for pair in per_span[0]], *per_span[1:]]
        assert arrow_native.unique_pairs(as_lists) == (list(items), list(items.values()))
        with pytest.raises(TypeError):
            arrow_native.unique_pairs([[([], "x")]])


def test_the_extension_transposes_and_deduplicates_where_it_is_built() -> None:
    if not arrow_native.AVAILABLE:
        pytest.skip("the C extension is not built")
    assert arrow_native._transpose is not None and arrow_native._transpose([(1, 2)], 2) == [[1], [2]]
    assert arrow_native._transpose([(1, 2), [3, 4]], 2) is None
    assert arrow_native._unique_pairs is not None and arrow_native._unique_pairs([[("a", "1")], [("a", "2")]]) == (
        ["a"],
        ["2"],
    )
    assert arrow_native._unique_pairs([[["a", "1"]]]) is None
