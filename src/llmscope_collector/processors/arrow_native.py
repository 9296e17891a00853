"""Arrow arrays of decoded column lists, built in C: the optional extension `_arrow_rows.c`.

The decode workers turn each partition's column lists into Arrow tables (`decode.to_part`: the spans, the
content items, the preview candidates). pyarrow's
conversion of Python lists checks and dispatches per value and per call; for every span column (strings,
int64, bool, float64, lists of strings, the content refs, the cost decimals (Decimals, or ints in units of the
scale: `schema.cost_decimal`), the metadata map) the
extension writes the buffers in one pass and hands them over through the Arrow C Data Interface, without
a copy. It answers None where it does not decide (a value of another Python type than the column's, an
int outside int64, a string UTF-8 cannot encode, a Decimal pyarrow would refuse...): the caller then
converts with pyarrow, which decides (tests/collector/test_arrow_native.py: equal tables wherever it
answers). Without a C compiler at install time
(setup.py), `RowArrays.arrays` always answers None and the decode runs as before.

The flush thread's trace deltas use its per-run kernels, where the span file's rows come in runs of trace
ids: `run_distinct` (`run_sets`: the distinct values of a column per run, where Acero's hash "distinct" cost
more than the rest of their group-by), `run_total` (sums, minimums, maximums, "any" per run) and `run_best`
(the previews' pick per run: `previews.trace_previews`); without the extension, Acero's paths as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import chain
from typing import Any

import pyarrow as pa

from llmscope_collector.storage.schema import CONTENT_REF_TYPE, COST_TYPE

# The extension's type code of each Arrow type it builds.
_KINDS: dict[pa.DataType, str] = {
    pa.string(): "s",
    pa.int64(): "l",
    pa.int32(): "i",
    pa.bool_(): "b",
    pa.float64(): "d",
    pa.list_(pa.string()): "S",
    pa.list_(CONTENT_REF_TYPE): "R",
    COST_TYPE: "D",
    pa.map_(pa.string(), pa.string()): "M",
}

Build = Callable[[list[list[Any]], str], tuple[Any, int] | None]


def _extension() -> Any | None:
    """The `_arrow_rows` extension, or None where it was not built (setup.py: optional)."""
    try:
        from llmscope_collector.processors import _arrow_rows  # type: ignore[attr-defined]
    except ImportError:
        return None
    return _arrow_rows


_EXTENSION = _extension()
# A cost column's ints count units of `COST_TYPE`'s scale: built here only where the extension says the same
# scale (a stale build says none).
if _EXTENSION is not None and getattr(_EXTENSION, "DECIMAL_SCALE", None) != COST_TYPE.scale:
    del _KINDS[COST_TYPE]


def _load() -> tuple[Build | None, bool]:
    if not hasattr(pa.RecordBatch, "_import_from_c"):  # (pyarrow's, private: a pyarrow without it gets pyarrow's path)
        return None, False
    if _EXTENSION is None:
        return None, False
    build: Build = _EXTENSION.columns
    return build, True


_build, AVAILABLE = _load()


class RowArrays:
    """The columns of `schema` the extension builds (`positions`, in schema order) and how to import them."""

    def __init__(self, schema: pa.Schema) -> None:
        fields = [(i, f) for i, f in enumerate(schema) if f.type in _KINDS] if AVAILABLE else []
        self.positions: tuple[int, ...] = tuple(i for i, _ in fields)
        self._names = [f.name for _, f in fields]
        self._kinds = "".join(_KINDS[f.type] for _, f in fields)
        self._schema = pa.schema([f for _, f in fields], metadata=schema.metadata)
        self._whole = bool(fields) and len(fields) == len(schema)  # every column: `table` can answer

    def arrays(self, cols: Mapping[str, list[Any]]) -> Sequence[pa.Array] | None:
        """The arrays of `positions`' columns of `cols` (equal-length lists), or None: convert with pyarrow."""
        batch = self._batch([cols[name] for name in self._names])
        return None if batch is None else batch.columns

    def table(self, columns: Sequence[list[Any]]) -> pa.Table | None:
        """The table of the schema's columns (equal-length lists, in schema order) when the extension builds
        every one, or None: convert with pyarrow. One import and no per-column wrapper: for the small
        tables a part has beside its spans (content items, preview candidates), pyarrow's conversion
        costs more before its first value than the extension's whole table."""
        if not self._whole:
            return None
        batch = self._batch(list(columns))
        return None if batch is None else pa.Table.from_batches([batch])

    def _batch(self, columns: list[list[Any]]) -> pa.RecordBatch | None:
        if _build is None or not self._names:
            return None
        built = _build(columns, self._kinds)
        if built is None:
            return None
        owner, address = built  # the capsule releases the arrays unless pyarrow took them (moved: no copy)
        batch = pa.RecordBatch._import_from_c(address, self._schema)
        del owner
        return batch


RunDistinct = Callable[[Any, Any, int, Any, int], tuple[bytes, bytes] | None]


_run_distinct: RunDistinct | None = None if _EXTENSION is None else _EXTENSION.run_distinct
_run_best: Callable[..., tuple[bytes, bytes] | None] | None = getattr(_EXTENSION, "run_best", None)
_run_total: Callable[..., tuple[bytes, bytes] | None] | None = getattr(_EXTENSION, "run_total", None)
_transpose: Callable[[list[tuple[Any, ...]], int], list[list[Any]] | None] | None = getattr(
    _EXTENSION, "transpose", None
)

_unique_pairs: Callable[[list[list[tuple[Any, Any]]]], tuple[list[Any], list[Any]] | None] | None = getattr(
    _EXTENSION, "unique_pairs", None
)


def unique_pairs(per_span: list[list[tuple[Any, Any]]]) -> tuple[list[Any], list[Any]]:
    """The keys and values of `dict(chain.from_iterable(per_span))`, as lists: in C where the extension is
    built and `per_span` is lists of 2-tuples (the decode's content items: its chain and dict took ~1.6k
    instructions a bench span, the C ~1.2k, hotpaths.py --callgrind)."""
    if _unique_pairs is not None:
        found = _unique_pairs(per_span)
        if found is not None:
            return found
    items = dict(chain.from_iterable(per_span))
    return list(items), list(items.values())


def transpose(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """The columns of `rows` (tuples of `width` items): `[list(c) for c in zip(*rows, strict=True)]`, with
    `width` empty lists for no rows. In C where the extension is built (and every row a tuple of `width`):
    the decode's transpose took ~1.7k instructions a bench span in zip and list, the C ~0.5k (hotpaths.py
    --callgrind)."""
    if _transpose is not None:
        columns = _transpose(rows, width)
        if columns is not None:
            return columns
    if not rows:
        return [[] for _ in range(width)]
    columns = [list(c) for c in zip(*rows, strict=True)]
    if len(columns) != width:
        raise ValueError(f"rows of {len(columns)} items, not {width}")
    return columns


def run_starts(keys: pa.Array) -> pa.Array | None:
    """The first row of each run of equal `keys` (no nulls), then their count, as int64; None when the runs
    are not in ascending order of key (a key's rows then need not be one run) or without the extension."""
    if _run_distinct is None or keys.null_count:
        return None
    import pyarrow.compute as pc  # here: the decode workers import this module and never need it (~13 MB each)

    n = len(keys)
    if n < 2:
        return pa.array([0, 1] if n else [0], pa.int64())
    later, earlier = keys.slice(1), keys.slice(0, n - 1)
    if pc.any(pc.less(later, earlier)).as_py():
        return None
    changes = pc.add(pc.indices_nonzero(pc.not_equal(later, earlier)), pa.scalar(1, pa.uint64()))
    return pa.concat_arrays([pa.array([0], pa.int64()), changes.cast(pa.int64()), pa.array([n], pa.int64())])


def run_sets(values: pa.Array, starts: pa.Array) -> pa.ListArray | None:
    """Per run of rows (`run_starts`), the distinct non-null `values` in the order of their first row: what
    Acero's hash "distinct" gives each group when the groups are the runs, without hashing the values per
    (group, value) pair (~0.27 of the trace deltas' ~0.4 us a span of group-by, docs/collector.md). None:
    the caller aggregates with Acero."""
    if _run_distinct is None:
        return None
    import pyarrow.compute as pc  # (as in `run_starts`)

    encoded = pc.dictionary_encode(values)
    codes = encoded.indices
    validity = _validity(codes)
    bounds = _run_bounds(starts)
    built = None
    if codes.type == pa.int32() and len(codes) == starts[-1].as_py():
        built = _run_distinct(bounds, codes.buffers()[1], codes.offset, validity, len(encoded.dictionary))
    if built is None:
        return None
    offsets, picked = built
    items = encoded.dictionary.take(pa.Array.from_buffers(pa.int32(), len(picked) // 4, [None, pa.py_buffer(picked)]))
    list_offsets = pa.Array.from_buffers(pa.int32(), len(offsets) // 4, [None, pa.py_buffer(offsets)])
    return pa.ListArray.from_arrays(list_offsets, items)


def run_best(values: pa.Array, selected: pa.Array, starts: pa.Array, *, descending: bool) -> pa.Array | None:
    """Per run of rows (`run_starts`), the row (an int64 index) of the run's rows where `selected` is valid
    with the least (`descending`: greatest) int64 `values`, a null value after every valid one, ties to the
    first row; null where the run has none. What a stable sort by `values` (nulls last) and Acero's hash
    "first" per group give when the groups are the runs (`previews.trace_previews`), without the sort or
    the hashing (~0.25 of its ~0.33 us a span of the flush thread). None without the extension."""
    if _run_best is None or values.type != pa.int64() or len(values) != len(selected):
        return None
    bounds = _run_bounds(starts)
    validity = _validity(values)
    chosen = _validity(selected)
    built = _run_best(bounds, values.buffers()[1], values.offset, validity, chosen, selected.offset, descending)
    if built is None:
        return None
    valid, rows = built
    runs = len(rows) // 8
    return pa.Array.from_buffers(pa.int64(), runs, [pa.py_buffer(valid), pa.py_buffer(rows)])


def run_total(values: pa.Array, starts: pa.Array, aggregate: str) -> pa.Array | None:
    """Per run of rows (`run_starts`), Acero's hash `aggregate` ("sum", "min", "max" of int64, "sum" of a
    decimal128 (as decimal128(38, its scale)), "any" of booleans; null where a run has no valid value) of
    `values`, when the groups are the runs (`stitch._by_runs`): one pass, no hashing of the runs' keys (~0.15
    us a span of the flush thread in Acero). None for another type or without the extension."""
    if _run_total is None:
        return None
    if values.type == pa.int64() and aggregate in ("sum", "min", "max"):
        op, out_type = aggregate, pa.int64()
    elif pa.types.is_decimal128(values.type) and aggregate == "sum":
        op, out_type = "sum128", pa.decimal128(38, values.type.scale)
    elif values.type == pa.bool_() and aggregate == "any":
        op, out_type = "any", pa.uint8()
    else:
        return None
    bounds = _run_bounds(starts)
    validity = _validity(values)
    built = _run_total(bounds, op, values.buffers()[1], values.offset, validity)
    if built is None:
        return None
    valid, totals = built
    totalled = pa.Array.from_buffers(out_type, len(starts) - 1, [pa.py_buffer(valid), pa.py_buffer(totals)])
    return totalled.cast(pa.bool_()) if op == "any" else totalled


def _run_bounds(starts: pa.Array) -> pa.Buffer:
    """The int64 data of `starts` (`run_starts`' row indices) as the kernels read it: from its offset on."""
    return starts.buffers()[1][starts.offset * 8 : (starts.offset + len(starts)) * 8]


def _validity(values: pa.Array) -> pa.Buffer | None:
    """`values`' validity bitmap, or None where it has no nulls (the kernels then take every row as valid)."""
    return values.buffers()[0] if values.null_count else None
