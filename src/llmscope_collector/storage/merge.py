"""The merge of one compaction group (storage.compaction), in memory bounded by a row group, not the group.

A group is up to `target_rows` rows (500,000) of one partition. As Arrow, a span row is ~1.1 KB
(its attributes JSON and content references most of it), so a merge that held the group whole
cost it several times over: compacting the ingest bench's data dir (one group of 465k spans)
peaked at 1,444 MB RSS. Here the group goes through three passes, none of which holds it:

1. `plan`: only the rule's key and sort columns are read (~70 B a span): which rows are kept (the
   first copy of each key, found by a stable sort, and none another file of the partition holds)
   and the output position of each kept row (a stable sort of them by the rule's columns: ties keep
   the files' order, as a sort of the concatenated files does).
2. `MergedGroup.spill`: each input is read once, one file and one batch at a time, and each kept row
   is appended, with its position, to the spill file of its output row group (Arrow IPC, lz4, in a
   directory the caller gives: the compactor's own under the data dir, not a tmpfs).
3. `MergedGroup.files`: each row group's spill is read back, put in order and handed to the Parquet
   writer, one column at a time (an input column is freed once its output column is made).

Peak memory: pass 1, the key columns of the group and their sorts (~100 B a span row); pass 2, one
input batch (`_SPILL_BATCH_ROWS`) and one Parquet reader's buffers (~20 MB for spans: a page and
a dictionary per column); pass 3, one output row group plus one column. The disk holds the kept
rows once more, compressed, while the merge runs. docs/memory.md has the measured figures.

The output is the same as merging the group in memory: the same rows in the same order, the same
schema and metadata, split into the same files and row groups (`tests/collector/durability/
test_merge.py` checks it against an in-memory merge on arbitrary groups).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from llmscope_collector.storage.derived import derived_column

_READ_BUFFER = 1 << 16
"""Bytes read at a time from a column chunk (0, pyarrow's default, reads each column chunk whole first)."""
_SPILL_BATCH_ROWS = 16_384
_POSITION = "__llmscope_position"
_SPILL_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4" if pa.Codec.is_available("lz4") else None)


@dataclasses.dataclass(frozen=True)
class MergeRule:
    """How one dataset's files merge: its schema, the columns two copies of one row share (`keys`;
    none: rows are never duplicates, as deltas that add up) and the order of the merged rows."""

    schema: pa.Schema
    keys: tuple[str, ...]
    sort: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class _Input:
    path: Path
    start: int  # the group's row number of its first row (the files' rows numbered in the group's order)
    rows: int


@dataclasses.dataclass
class MergedGroup:
    """A planned merge: which rows of the inputs are written where, with which schema (`plan`).

    Holds the output position of each input row (8 bytes a row); the rows themselves are read by
    `spill` and written by `files`, each of which holds at most a batch or a row group of them."""

    schema: pa.Schema
    inputs: list[_Input]
    position: pa.Array
    """For each row of the group (int64): its position in the output, or -1 if it is left out."""
    num_rows: int
    rows_in: int
    removed: int
    _spilled: tuple[Path, _Buckets] | None = None

    def spill(self, directory: Path, rows_per_file: int, row_group_size: int, *, keep_removed: bool) -> pa.Table:
        """Pass 2: every kept row appended to the spill file (in `directory`) of its output row
        group; returns the rows left out as duplicates if `keep_removed` (for the trace summary
        deltas cancelling them: duplicates are rare, a retry the ingest window missed), else none."""
        buckets = _Buckets(rows_per_file, row_group_size)
        self._spilled = (directory, buckets)
        spill_schema = self.schema.append(pa.field(_POSITION, pa.int64()))
        writers: dict[int, tuple[pa.NativeFile, pa.ipc.RecordBatchFileWriter]] = {}
        removed: list[pa.RecordBatch] = []
        try:
            for source in self.inputs:
                row = source.start
                with pq.ParquetFile(source.path, buffer_size=_READ_BUFFER) as file:
                    for read in file.iter_batches(batch_size=_SPILL_BATCH_ROWS):
                        batch = conform_batch(read, self.schema)
                        positions = self.position.slice(row, batch.num_rows)
                        row += batch.num_rows
                        if keep_removed and self.removed:
                            left_out = batch.filter(pc.equal(positions, -1))
                            if left_out.num_rows:
                                removed.append(left_out)
                        with_positions = pa.RecordBatch.from_arrays([*batch.columns, positions], schema=spill_schema)
                        for bucket, piece in buckets.split(with_positions, positions):
                            if bucket not in writers:
                                sink = pa.OSFile(str(_spill_path(directory, bucket)), "wb")
                                writers[bucket] = sink, pa.ipc.new_file(sink, spill_schema, options=_SPILL_OPTIONS)
                            writers[bucket][1].write_batch(piece)
        finally:
            for sink, writer in writers.values():
                writer.close()  # the footer (not the file)
                sink.close()
        return pa.Table.from_batches(removed, self.schema)

    def files(self) -> Iterator[Iterator[pa.Table]]:
        """Pass 3 (after `spill`): the output files, each as its row groups (tables of at most
        `row_group_size` rows, the first at the file's start), each file consumed before the next."""
        if self._spilled is None:
            raise RuntimeError("MergedGroup.files before MergedGroup.spill")
        directory, buckets = self._spilled
        for number, start in enumerate(range(0, self.num_rows, buckets.file_rows)):
            count = buckets.row_groups(min(buckets.file_rows, self.num_rows - start))
            first = buckets.first_of_file(number)
            yield (self._row_group(_spill_path(directory, first + j)) for j in range(count))

    def _row_group(self, path: Path) -> pa.Table:
        with pa.OSFile(str(path)) as source:
            spilled = pa.ipc.open_file(source).read_all()
        path.unlink()
        order = pc.sort_indices(spilled.column(_POSITION))
        columns: list[pa.ChunkedArray | None] = list(spilled.columns[:-1])
        del spilled  # each column is now held by `columns` alone (lz4: a buffer of its own), freed once taken
        taken = []
        for i, column in enumerate(columns):
            assert column is not None
            columns[i] = None
            taken.append(column.take(order))  # a take over chunks may concatenate them: one column at a time
            del column
        return pa.Table.from_arrays(taken, schema=self.schema)


class _Buckets:
    """Output positions → row groups: file `p // rows_per_file`, then its row group of `row_group_size` rows."""

    def __init__(self, rows_per_file: int, row_group_size: int) -> None:
        self.file_rows = rows_per_file
        self._group_rows = row_group_size
        self._per_file = self.row_groups(rows_per_file)

    def row_groups(self, rows: int) -> int:
        return -(-rows // self._group_rows)

    def first_of_file(self, number: int) -> int:
        return number * self._per_file

    def of(self, positions: pa.Array) -> pa.Array:
        """The row group of each position (-1 for a row left out)."""
        files = pc.divide(positions, self.file_rows)
        within = pc.divide(pc.subtract(positions, pc.multiply(files, self.file_rows)), self._group_rows)
        return pc.if_else(pc.less(positions, 0), -1, pc.add(pc.multiply(files, self._per_file), within))

    def split(self, batch: pa.RecordBatch, positions: pa.Array) -> Iterator[tuple[int, pa.RecordBatch]]:
        """The kept rows of `batch`, by row group (one take of the batch, then slices of it)."""
        buckets = self.of(positions)
        order = pc.sort_indices(buckets)
        grouped = batch.take(order)
        runs = pc.run_end_encode(buckets.take(order))
        start = 0
        for bucket, end in zip(runs.values.to_pylist(), runs.run_ends.to_pylist(), strict=True):
            if bucket >= 0:
                yield bucket, grouped.slice(start, end - start)
            start = end


def _spill_path(directory: Path, bucket: int) -> Path:
    return directory / f"{bucket:09d}.arrow"


def plan(paths: Sequence[Path], rule: MergeRule, others: Sequence[Path]) -> MergedGroup:
    """Pass 1: read the key and sort columns of `paths` (the group, in order) and plan their merge:
    the first row of each key is kept unless one of `others` (the partition's other files) holds it."""
    schemas = [pq.read_schema(path) for path in paths]
    target = target_schema(rule.schema, schemas)
    columns = list(dict.fromkeys((*rule.keys, *rule.sort)))
    key_schema = pa.schema([target.field(name) for name in columns])
    inputs: list[_Input] = []
    tables: list[pa.Table] = []
    for path, schema in zip(paths, schemas, strict=True):
        with pq.ParquetFile(path) as file:  # not pq.read_table: no dataset scan (Acero's own allocator)
            table = conform(file.read(columns=[c for c in columns if c in schema.names]), key_schema)
        inputs.append(_Input(path, sum(i.rows for i in inputs), table.num_rows))
        tables.append(table)
    keys = pa.concat_tables(tables)
    del tables
    kept = first_of_each(keys, rule.keys) if rule.keys else None
    if kept is not None:
        kept = _not_stored_elsewhere(keys, kept, others, rule.keys)
    position, kept_rows = _positions(keys, kept, rule.sort)
    return MergedGroup(target, inputs, position, kept_rows, keys.num_rows, keys.num_rows - kept_rows)


def _positions(table: pa.Table, kept: pa.ChunkedArray | pa.Array | None, sort: Sequence[str]) -> tuple[pa.Array, int]:
    """Each row's position in `table.filter(kept).sort_by(sort)` (ascending, stable), -1 for a row
    left out; and how many are kept."""
    rows = pc.indices_nonzero(kept).cast(pa.int64()) if kept is not None else None
    keys = table.select(list(sort))
    if rows is not None:
        keys = keys.take(rows)
    order = pc.sort_indices(keys, sort_keys=[(column, "ascending") for column in sort])
    del keys
    # order[p] is the p-th output row (among the kept rows); its inverse: the position of each kept row.
    position_of_kept = pc.sort_indices(order).cast(pa.int64())
    if rows is None:
        return position_of_kept, table.num_rows
    if isinstance(kept, pa.ChunkedArray):
        kept = kept.combine_chunks()
    if not len(rows):
        return pa.repeat(pa.scalar(-1, pa.int64()), table.num_rows), 0
    rank = pc.subtract(pc.cumulative_sum(pc.cast(kept, pa.int64())), 1)
    at = pc.take(position_of_kept, pc.max_element_wise(rank, 0))
    return pc.if_else(kept, at, pa.scalar(-1, pa.int64())), len(rows)


def target_schema(current: pa.Schema, schemas: Sequence[pa.Schema]) -> pa.Schema:
    """The dataset's current schema, then any column the files have that it does not (never dropped)."""
    fields = list(current)
    known = set(current.names)
    for schema in schemas:
        for field in schema:
            if field.name not in known:
                fields.append(field)
                known.add(field.name)
    return pa.schema(fields)


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` with exactly `schema`'s columns: missing ones derived from the others (`storage.derived`: a span
    file of an older version) or as nulls, types cast to the current ones."""
    return pa.Table.from_arrays(_conformed(table, schema), schema=schema)


def conform_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(_conformed(batch, schema), schema=schema)


def _conformed(data: pa.Table | pa.RecordBatch, schema: pa.Schema) -> list[pa.Array | pa.ChunkedArray]:
    arrays = []
    for field in schema:
        if field.name in data.schema.names:
            column = data.column(field.name)
            arrays.append(column if column.type == field.type else column.cast(field.type))
        else:
            derived = derived_column(field.name, data)
            arrays.append(pa.nulls(data.num_rows, field.type) if derived is None else derived)
    return arrays


def first_of_each(table: pa.Table, keys: tuple[str, ...]) -> pa.Array:
    """A mask keeping the first row of each distinct `keys` (every row when there are no keys).

    By a stable sort on the keys (the first row of each run of equal keys is the first in the
    table), not a hash group-by: Acero's group-by held ~90 MB for 500k span keys, outside the
    memory pool the collector sets (docs/memory.md)."""
    rows = table.num_rows
    if not keys or rows < 2:
        return pa.array([True] * rows, pa.bool_())
    order = pc.sort_indices(table, sort_keys=[(key, "ascending") for key in keys])
    differs: pa.Array | None = None
    for key in keys:
        column = table.column(key).take(order).combine_chunks()
        step = _distinct(column.slice(1), column.slice(0, rows - 1))
        differs = step if differs is None else pc.or_(differs, step)
    assert differs is not None
    starts = pa.concat_arrays([pa.array([True]), differs])
    return pc.is_in(pa.array(range(rows), pa.int64()), value_set=pc.filter(order, starts).cast(pa.int64()))


def _distinct(left: pa.Array, right: pa.Array) -> pa.Array:
    """`left[i]` and `right[i]` differ, two nulls being equal (as a group-by keys them)."""
    equal = pc.fill_null(pc.equal(left, right), False)
    both_null = pc.and_(pc.is_null(left), pc.is_null(right))
    return pc.invert(pc.or_(equal, both_null))


def _keys(table: pa.Table, keys: tuple[str, ...]) -> pa.ChunkedArray | pa.Array:
    if len(keys) == 1:
        return table.column(keys[0])
    return pc.binary_join_element_wise(*(table.column(k) for k in keys), "\x1f")


def _not_stored_elsewhere(table: pa.Table, keep: pa.Array, others: Sequence[Path], keys: tuple[str, ...]) -> pa.Array:
    """`keep` without the rows another file of the partition already holds (reads only the key columns)."""
    if not keys or not others or not table.num_rows:
        return keep
    first = pc.unique(table.column(keys[0]))
    found: list[pa.Array] = []
    for path in others:
        try:
            ids = pq.read_table(path, columns=list(keys))
        except (OSError, ValueError):
            continue  # removed meanwhile (retention) or not ours to judge
        ids = ids.filter(pc.is_in(ids.column(keys[0]), value_set=first))
        if ids.num_rows:
            found.append(pa.chunked_array([_keys(ids, keys)]).combine_chunks())
    if not found:
        return keep
    stored = pa.concat_arrays(found)
    return pc.and_(keep, pc.invert(pc.is_in(_keys(table, keys), value_set=stored)))
