"""The stitcher's cheaper Arrow steps give what the kernels they replace gave (the flush thread's CPU,
issue 22): null as False or 0 by bitmap passes and one `if_else` instead of `fill_null`, a cost's
unscaled integer read from its decimal's low word instead of multiplying by 10^12 and casting, empty
unions nulled under a validity mask instead of `if_else` over the lists, and per run of rows the first
or last selected row by a count of the selected rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given
from hypothesis import strategies as st

from llmscope_collector.processors import stitch
from llmscope_collector.processors.arrow_native import run_starts
from llmscope_collector.storage.schema import COST_TYPE

_INT64 = st.integers(-(2**63), 2**63 - 1)
_COSTS = st.decimals(min_value=Decimal("-999999.999999999999"), max_value=Decimal("999999.999999999999"), places=12)


def _cut(values: Sequence[object], type_: pa.DataType, skip: int, parts: int) -> pa.ChunkedArray:
    """The values as a chunked array whose chunks are slices (offsets other than 0)."""
    padded = pa.array([None] * skip + list(values), type_).slice(skip)
    step = max(1, len(values) // parts)
    return pa.chunked_array([padded.slice(i, step) for i in range(0, len(values), step)] or [padded], type_)


@given(st.lists(st.one_of(st.none(), st.booleans())), st.integers(0, 9), st.integers(1, 3))
def test_true_is_fill_null_false(values: list[bool | None], skip: int, parts: int) -> None:
    mask = _cut(values, pa.bool_(), skip, parts)
    assert stitch._true(mask).to_pylist() == pc.fill_null(mask, False).to_pylist()


@given(
    st.lists(st.tuples(st.one_of(st.none(), _INT64), st.one_of(st.none(), st.booleans()))),
    st.integers(0, 9),
    st.booleans(),
)
def test_zero_filled_is_fill_null_zero_under_the_condition(
    rows: list[tuple[int | None, bool | None]], skip: int, conditioned: bool
) -> None:
    values = _cut([v for v, _ in rows], pa.int64(), skip, 2)
    where = pc.fill_null(pa.chunked_array([pa.array([w for _, w in rows], pa.bool_())]), False)
    if conditioned:
        want = pc.if_else(where, pc.fill_null(values, 0), pa.scalar(0, pa.int64()))
        got = stitch._zero_filled(values, where)
    else:
        want, got = pc.fill_null(values, 0), stitch._zero_filled(values)
    assert got.to_pylist() == want.to_pylist()
    assert got.null_count == 0


@given(st.lists(st.one_of(st.none(), _COSTS)), st.integers(0, 9), st.integers(1, 3))
def test_cost_units_are_the_cost_times_ten_to_the_twelve(values: list[Decimal | None], skip: int, parts: int) -> None:
    cost = _cut(values, COST_TYPE, skip, parts)
    want = pc.fill_null(pc.cast(pc.multiply(cost, stitch._COST_SCALE), pa.int64()), 0)
    assert stitch._cost_units(cost).to_pylist() == want.to_pylist()
    other = cost.cast(pa.decimal128(20, 12))  # another decimal type: scaled as before
    assert stitch._cost_units(other).to_pylist() == want.to_pylist()


@given(st.lists(st.one_of(st.none(), st.lists(st.sampled_from("abc"), max_size=3))), st.integers(0, 5))
def test_none_if_empty_nulls_exactly_the_empty_lists(lists: list[list[str] | None], skip: int) -> None:
    typed = _cut(lists, pa.list_(pa.string()), skip, 2)
    want = [v or None for v in lists]
    assert stitch._none_if_empty(typed).to_pylist() == want
    null_free = pc.fill_null(typed, pa.scalar([], pa.list_(pa.string())))  # the group-bys' lists
    assert stitch._none_if_empty(null_free).to_pylist() == want


@given(st.lists(st.tuples(st.integers(0, 5), st.booleans()), min_size=1), st.booleans())
def test_run_picks_find_each_runs_first_or_last_selected_row(rows: list[tuple[int, bool]], last: bool) -> None:
    rows.sort(key=lambda r: r[0])
    keys = pa.array([f"t{k}" for k, _ in rows])
    mask = pa.array([m for _, m in rows])
    starts = run_starts(keys)
    assert starts is not None
    selected = [i for i, (_, m) in enumerate(rows) if m]  # the selected rows, by position among them
    want = []
    for a, b in zip(starts.to_pylist(), starts.to_pylist()[1:], strict=False):
        inside = [n for n, i in enumerate(selected) if a <= i < b]
        want.append((inside[-1] if last else inside[0]) if inside else None)
    assert stitch._run_picks(mask, starts, last=last).to_pylist() == want
