"""The common LLM row priced in integers (`pricing.unit_costs`) against the Decimal path (`rated_row`).

`price_rows` prices a row of fixed plain rates (`Bands`) with int counts in integers and stores its costs
as ints counting 1e-12 USD (`schema.cost_decimal`); the Decimal path stays the reference. On any band
prices (exponents from 1e-45 to 1e+6, tiers, missing prices, fees, negative and non-finite ones), any
counts (huge, negative, None, cache beyond input) and any Decimal context precision, the integer path must
give the reference's values or defer to it; and the rows, their `cost_known`/`cost_source`, the rows left
unpriced and the Arrow columns built from them must be the reference's.
"""

from __future__ import annotations

import bisect
import pickle
from decimal import Decimal, localcontext
from typing import Any

import pyarrow as pa
from hypothesis import example, given, settings
from hypothesis import strategies as st

from llmscope_collector.processors import arrow_native, pricing
from llmscope_collector.processors.pricing import Bands, DbPrice, PriceTable, rated_row, sanitized_counts, unit_costs
from llmscope_collector.storage.schema import COST_TYPE, REPORTED_SOURCE, cost_decimal

_ZERO = Decimal(0)
_PRICE = st.builds(
    lambda coefficient, exponent: Decimal(coefficient).scaleb(exponent),
    st.integers(0, 10**6) | st.integers(0, 10**15),
    st.integers(-45, 6),
) | st.sampled_from([Decimal("3E-6"), Decimal("1.5E-7"), Decimal("0E-30"), Decimal("-0"), Decimal("-1E-6")])
_ODD_PRICE = st.sampled_from([Decimal("NaN"), Decimal("Infinity"), Decimal("1E-900"), Decimal("-2.5E-6")])
_FEE = st.just(_ZERO) | _PRICE | _ODD_PRICE | st.sampled_from([Decimal("1E+20"), Decimal("0.0000000000005")])


@st.composite
def _bands(draw: st.DrawFn) -> Bands:
    """Tier starts and one band per tier (prices None, plain, or odd now and then)."""
    starts = tuple(sorted(draw(st.sets(st.integers(0, 5_000_000), max_size=3))))
    price = st.none() | _PRICE | _ODD_PRICE if draw(st.integers(0, 4)) == 0 else st.none() | _PRICE
    bands = [(draw(price), draw(price), draw(price), draw(price), draw(_FEE)) for _ in range(len(starts) + 1)]
    return Bands(starts, tuple(bands))


_COUNT = (
    st.none()
    | st.integers(-5, 3_000_000)
    | st.integers(-(10**30), 10**30)
    | st.sampled_from([0, 1, 10**18, 10**22, 1.5, True])
)
_COUNTS = st.tuples(_COUNT, _COUNT, _COUNT, _COUNT)
_PRECISION = st.sampled_from([28, 28, 12, 40])


def _same(got: tuple[Any, ...], want: tuple[Any, ...]) -> None:
    """Equal types and spelling (a row set aside is written as text; NaN too) once ints are made Decimals."""
    got = tuple(cost_decimal(v) for v in got[:3]) + got[3:]
    assert [(type(v), str(v)) for v in got] == [(type(v), str(v)) for v in want], (got, want)


@settings(max_examples=1000, deadline=None)
@given(_bands(), _COUNTS, _PRECISION)
@example(Bands((), ((Decimal("3E-6"), None, None, Decimal("1.5E-5"), _ZERO),)), (1000, 50, None, None), 28)
@example(Bands((), ((Decimal("5E-13"), None, None, Decimal("15E-13"), _ZERO),)), (1, 1, 0, 0), 28)  # half-even
@example(Bands((), ((Decimal(1), Decimal(1), None, None, _ZERO),)), (10**27, 0, 1, 0), 28)  # at the precision
def test_the_integer_path_gives_the_decimal_paths_costs_or_defers(
    bands: Bands, raw: tuple[Any, ...], precision: int
) -> None:
    counts = sanitized_counts(*raw)
    with localcontext() as context:
        context.prec = precision
        want = rated_row(bands, "src", counts)
        got = unit_costs(bands.units, bands.starts, counts, pricing._exact_limit())
    if got is not None:
        assert want is not None
        _same((*got, True, "src"), want)
    if precision == 28 and _usual(bands, counts):  # the common row: priced in integers (else this saves nothing)
        assert got is not None


def _usual(bands: Bands, counts: pricing.Counts) -> bool:
    """Counts below 1e9 and a band of prices up to 1 USD a token, to 1e-18, no fee: what genai-prices has."""
    if not (all(type(c) is int for c in counts) and max(counts) < 10**9):
        return False
    band = bands.bands[bisect.bisect_left(bands.starts, counts[0])]
    prices = [p for p in band[:4] if p is not None]
    return band[4] is _ZERO and all(
        p.is_finite() and not p.is_signed() and p.as_tuple().exponent >= -18 and p.adjusted() <= 0 for p in prices
    )


@st.composite
def _table_and_rows(draw: st.DrawFn) -> tuple[PriceTable, list[dict[str, Any]]]:
    """A worker's table of drawn fixed prices (and a dated one, an unknown model, a book-only one) and rows
    of those models."""
    table = PriceTable()
    models = [f"m{k}" for k in range(draw(st.integers(1, 3)))]
    for model in models:
        table.entries[("p", model)] = DbPrice(f"genai-prices:p/{model}", (), (draw(_bands()),))
    table.entries[("p", "dated")] = DbPrice("genai-prices:p/dated", (19_000,), (draw(_bands()), draw(_bands())))
    table.entries[("p", "unknown")] = None
    table.entries[("p", "book")] = pricing.BOOK_ONLY
    names = st.sampled_from([*models, "dated", "unknown", "book", "not-learned", None, ""])
    row = st.fixed_dictionaries(
        {
            "operation": st.sampled_from(["chat", "embeddings", "execute_tool", None]),
            "provider": st.just("p"),
            "response_model": names,
            "request_model": names,
            **{name: _COUNT for name in pricing._USAGE},
            "start_ns": st.sampled_from([0, -1, 2**63, 19_000 * 86_400 * 10**9 + 5 * 10**12, 1.5]),
            "status_code": st.sampled_from(["OK", "ERROR"]),
            "reported_cost_usd": st.none() | st.decimals(0, 5, places=12),
        }
    )
    return table, draw(st.lists(row, min_size=1, max_size=10))


def _want(table: PriceTable, row: dict[str, Any]) -> tuple[Any, ...] | None:
    """What the Decimal path gives one row (`price_rows`' rules: no model, the reported cost), None: unpriced."""
    counts = [row[name] for name in pricing._USAGE]
    usage = None if all(c is None for c in counts) else sanitized_counts(*counts)
    models = (row["response_model"], row["request_model"])
    if not any(models):
        want: tuple[Any, ...] | None = pricing.UNKNOWN_ROW
    else:
        want = table.cost_row("p", models, row["start_ns"], usage, error=row["status_code"] == "ERROR")
    if want is not None and not want[3] and row["reported_cost_usd"] is not None:
        want = (row["reported_cost_usd"], None, None, True, REPORTED_SOURCE)
    return want


_COSTS = arrow_native.RowArrays(pa.schema([(name, COST_TYPE) for name in pricing.COST_FIELDS[:3]]))


@settings(max_examples=300, deadline=None)
@given(_table_and_rows())
def test_price_rows_stores_the_decimal_paths_rows_and_arrow_columns(
    drawn: tuple[PriceTable, list[dict[str, Any]]],
) -> None:
    table, rows = drawn
    cols: dict[str, list[Any]] = {name: [row[name] for row in rows] for name in rows[0]}
    cols.update({name: [None] * len(rows) for name in pricing.COST_FIELDS})
    complete = pricing.price_rows(cols, table)
    nulls = (None,) * 5  # a row left for the book (`PricesNeeded`), or not a model call
    wants = [_want(table, row) if row["operation"] in pricing._LLM else nulls for row in rows]
    assert complete == all(w is not None for w in wants)
    expected: list[list[Any]] = [[], [], []]
    for i, want in enumerate(wants):
        got = tuple(cols[name][i] for name in pricing.COST_FIELDS)
        _same(got, nulls if want is None else want)
        for column, value in zip(expected, (want or nulls)[:3], strict=True):
            column.append(value)
    _same_arrow(cols, expected)
    shipped = pickle.loads(pickle.dumps(table))  # as a worker gets it: without the units made here (`Bands.units`)
    again: dict[str, list[Any]] = {name: [row[name] for row in rows] for name in rows[0]}
    again.update({name: [None] * len(rows) for name in pricing.COST_FIELDS})
    assert pricing.price_rows(again, shipped) == complete and repr(again) == repr(cols)  # (NaN: by its repr)


def _same_arrow(cols: dict[str, list[Any]], expected: list[list[Any]]) -> None:
    """The cost columns as the C builder and as pyarrow (after `cost_decimal`) store them: the reference's."""
    try:
        want = [pa.array(values, COST_TYPE) for values in expected]
    except (pa.ArrowException, OverflowError, TypeError, ValueError):  # a cost Arrow cannot store: refused alike
        assert _COSTS.arrays(cols) is None
        return
    pure = [pa.array(list(map(cost_decimal, cols[name])), COST_TYPE) for name in pricing.COST_FIELDS[:3]]
    assert all(a.equals(b) for a, b in zip(pure, want, strict=True))
    native = _COSTS.arrays(cols)
    if native is not None:
        assert all(a.equals(b) for a, b in zip(native, want, strict=True))
    elif arrow_native.AVAILABLE:  # (the extension decides every int and quantized Decimal)
        assert any(type(v) not in (int, type(None)) for name in pricing.COST_FIELDS[:3] for v in cols[name])
