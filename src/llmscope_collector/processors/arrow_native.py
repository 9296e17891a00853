"""Arrow arrays of decoded column lists, built in C: the optional extension `_arrow_rows.c`.

The decode workers turn each partition's column lists into Arrow tables (`decode.to_part`: the spans, the
content items, the preview candidates). pyarrow's
conversion of Python lists checks and dispatches per value and per call; for the plain columns (strings,
int64, bool, float64, lists of strings, the content refs) the extension writes the buffers in one pass
and hands them over through the Arrow C Data Interface, without a copy. It answers None where it does
not decide (a value of another Python type than the column's, an int outside int64, a string UTF-8
cannot encode...): the caller then converts with pyarrow, which decides (tests/collector/
test_arrow_native.py: equal tables wherever it answers). Without a C compiler at install time
(setup.py), `RowArrays.arrays` always answers None and the decode runs as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pyarrow as pa

from llmscope_collector.storage.schema import CONTENT_REF_TYPE

# The extension's type code of each Arrow type it builds.
_KINDS: dict[pa.DataType, str] = {
    pa.string(): "s",
    pa.int64(): "l",
    pa.int32(): "i",
    pa.bool_(): "b",
    pa.float64(): "d",
    pa.list_(pa.string()): "S",
    pa.list_(CONTENT_REF_TYPE): "R",
}

Build = Callable[[list[list[Any]], str], tuple[Any, int] | None]


def _load() -> tuple[Build | None, bool]:
    if not hasattr(pa.RecordBatch, "_import_from_c"):  # (pyarrow's, private: a pyarrow without it gets pyarrow's path)
        return None, False
    try:
        from llmscope_collector.processors._arrow_rows import columns  # type: ignore[import-not-found]
    except ImportError:
        return None, False
    return columns, True


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
