"""The kinds and sizes of one trace's content refs, read from its span files with pyarrow: for files
written before the derived `content_sizes` column (schema version < 4) until compaction rewrites them.

The waterfall shows each span's content refs as (kind, bytes) only. DuckDB reads a list of structs
whole: every child of `content_refs` for every row of the row group, the 64-character hashes too
(~40k per 16k-row group), which was a third of the waterfall's scan. pyarrow reads the two leaves
it needs, in batches, and stops at the batch holding the trace's last row (a row group is sorted by
trace id). Measured on a day's file at 10M spans (21 row groups of 16k rows), same process, load ~16:
DuckDB with the refs 19.7 ms CPU per trace, DuckDB without them + this 16.5.

Rows come from `sql.TRACE_SPANS_LOCATED` with their `filename`, `file_row_number` and `content_bytes`;
`content_bytes` is null exactly when a span has no refs (the decoder writes both or neither).
"""

from __future__ import annotations

import bisect
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

_LEAVES = ["content_refs.list.element.kind", "content_refs.list.element.bytes"]
_BATCH_ROWS = 1024
_FOOTERS = 16  # a day's span file at 10M spans: a footer of ~160 kB on disk


class _Footer:
    """A span file's parsed footer and the first row number of each of its row groups."""

    def __init__(self, meta: pq.FileMetaData) -> None:
        self.meta = meta
        self.starts = [0]
        for i in range(meta.num_row_groups):
            self.starts.append(self.starts[-1] + meta.row_group(i).num_rows)
        self.has_refs = "content_refs" in meta.schema.to_arrow_schema().names


class ContentKinds:
    """Fills `content` ([{kind, bytes}] or None) into one trace's waterfall rows; keeps the last files'
    footers (key: path, size and modification time; files are replaced, never rewritten in place)."""

    def __init__(self) -> None:
        self._footers: OrderedDict[tuple[str, int, int], _Footer] = OrderedDict()
        self._lock = threading.Lock()

    def fill(self, rows: list[dict[str, Any]]) -> None:
        """Set each row's `content` and drop the columns that located it."""
        wanted: dict[str, list[int]] = {}
        for row in rows:
            if row["content_bytes"] is not None:
                wanted.setdefault(row["filename"], []).append(row["file_row_number"])
        found: dict[tuple[str, int], list[dict[str, Any]] | None] = {}
        for path, numbers in wanted.items():
            found.update(((path, n), refs) for n, refs in self._read(path, numbers))
        for row in rows:
            row["content"] = found.get((row.pop("filename"), row.pop("file_row_number")))
            del row["content_bytes"]

    def _read(self, path: str, numbers: list[int]) -> Iterator[tuple[int, list[dict[str, Any]] | None]]:
        footer = self._footer(path)
        if not footer.has_refs:
            return
        file = pq.ParquetFile(path, metadata=footer.meta)
        by_group: dict[int, list[int]] = {}
        for n in numbers:
            by_group.setdefault(bisect.bisect_right(footer.starts, n) - 1, []).append(n)
        for group, in_group in by_group.items():
            first, low, high = footer.starts[group], min(in_group), max(in_group)
            refs = _leading_rows(file, group, high - first + 1).slice(low - first, high - low + 1).to_pylist()
            for n in in_group:
                yield n, refs[n - low]

    def _footer(self, path: str) -> _Footer:
        stat = os.stat(path)
        key = (path, stat.st_size, stat.st_mtime_ns)
        with self._lock:
            footer = self._footers.get(key)
            if footer is not None:
                self._footers.move_to_end(key)
                return footer
        footer = _Footer(pq.read_metadata(path))
        with self._lock:
            self._footers[key] = footer
            while len(self._footers) > _FOOTERS:
                self._footers.popitem(last=False)
        return footer


def _leading_rows(file: pq.ParquetFile, group: int, count: int) -> pa.Array:
    """The refs (kind and bytes) of at least the first `count` rows of row group `group`: batches are
    decoded up to the one holding row `count - 1`, no further."""
    batches: list[pa.RecordBatch] = []
    read = 0
    for batch in file.iter_batches(batch_size=_BATCH_ROWS, row_groups=[group], columns=_LEAVES, use_threads=False):
        batches.append(batch)
        read += batch.num_rows
        if read >= count:
            break
    return pa.Table.from_batches(batches).column("content_refs").combine_chunks()
