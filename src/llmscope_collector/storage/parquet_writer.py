"""Buffers decoded spans and writes them as immutable Parquet files, one per partition per flush.

Only the WAL consumer thread calls this class, in WAL order. Each flush covers one WAL range
`[wal_start, wal_end)`; every file it writes carries that range in its name and metadata, and is
written to a temporary name, fsynced, renamed into place and its directory fsynced, so when
`flush` returns the rows are durable and the consumer may advance the WAL cursor past them.
Duplicates (same project, trace_id, span_id) are dropped on the way in against a window of
recently seen ids; spans a previous process already stored for that WAL range are skipped.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Protocol

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq

from llmscope_collector.durable_io import fsync_dir
from llmscope_collector.processors.decode import Columns, DecodedBatch, PartitionKey
from llmscope_collector.storage.dedupe import RecentSpanIds, span_key
from llmscope_collector.storage.layout import new_part_path
from llmscope_collector.storage.schema import SPAN_SCHEMA
from llmscope_collector.storage.wal_ranges import META_WAL_END, META_WAL_START, WalCoverage

log = logging.getLogger(__name__)

QUARANTINE_DIR = "quarantine"
_json = msgspec.json.Encoder(enc_hook=repr)  # whatever a row holds, it is written as something readable


class FlushHook(Protocol):
    """Runs inside each flush, on the writer's thread (implemented by `processors.stitch.Stitcher`).

    `before_write` may fill columns of the rows in place (cost, duplicate marks) and stores what must
    be durable before the span file (captured content); `after_write` follows a durable span file;
    `after_flush` ends the flush; `repair` gets, at start, the stored WAL ranges replay will skip.
    """

    def before_write(self, key: PartitionKey, cols: Columns) -> None: ...

    def after_write(self, key: PartitionKey, cols: Columns, wal_start: int, wal_end: int) -> None: ...

    def after_flush(self, wal_start: int, wal_end: int) -> None: ...

    def repair(self, ranges: dict[PartitionKey, list[tuple[int, int]]]) -> int: ...


class ParquetSpanWriter:
    """Span sink that owns the flush files under the data dir (single-threaded: the WAL consumer)."""

    def __init__(
        self, data_dir: Path, recent: RecentSpanIds, *, row_group_size: int = 64_000, hook: FlushHook | None = None
    ) -> None:
        self._data_dir = data_dir
        self._hook = hook
        self._recent = recent
        self._row_group_size = row_group_size
        self._coverage = WalCoverage()
        self._buffer: dict[PartitionKey, Columns] = {}
        self._buffered_keys: set[str] = set()  # exact dedupe within a flush, whatever the window size
        self._buffered_rows = 0
        self.rows_written = 0
        self.files_written = 0
        self.duplicates_dropped = 0
        self.replay_skipped = 0
        self.rows_quarantined = 0

    def skip_stored(self, coverage: WalCoverage) -> None:
        """Spans of these (partition, WAL range) pairs are already in files: replay must not write them again."""
        self._coverage = coverage
        if self._hook is not None:
            self._hook.repair(coverage.ranges)

    @property
    def buffered_rows(self) -> int:
        return self._buffered_rows

    def add(self, batch: DecodedBatch, lsn: int) -> int:
        """Buffer the spans of the WAL record at `lsn` that are not stored yet; returns how many."""
        added = 0
        for key, cols in batch.partitions.items():
            if self._coverage and self._coverage.contains(key, lsn):
                self._remember(key[0], cols)
                self.replay_skipped += len(cols["span_id"])
                continue
            added += self._buffer_new(key, cols)
        return added

    def _remember(self, project: str, cols: Columns) -> None:
        for trace_id, span_id in zip(cols["trace_id"], cols["span_id"], strict=True):
            self._recent.add(span_key(project, trace_id, span_id))

    def _buffer_new(self, key: PartitionKey, cols: Columns) -> int:
        project = key[0]
        keep = []
        for i, (trace_id, span_id) in enumerate(zip(cols["trace_id"], cols["span_id"], strict=True)):
            skey = span_key(project, trace_id, span_id)
            if self._recent.add(skey) and skey not in self._buffered_keys:
                self._buffered_keys.add(skey)
                keep.append(i)
        total = len(cols["span_id"])
        self.duplicates_dropped += total - len(keep)
        if not keep:
            return 0
        if len(keep) < total:
            cols = {name: [values[i] for i in keep] for name, values in cols.items()}
        target = self._buffer.get(key)
        if target is None:
            self._buffer[key] = cols
        else:
            for name, values in cols.items():
                target.setdefault(name, []).extend(values)
        self._buffered_rows += len(keep)
        return len(keep)

    def flush(self, wal_start: int, wal_end: int) -> int:
        """Durably write every buffered partition as a file holding WAL range `[wal_start, wal_end)`.

        On an error the partitions not yet written stay buffered; the caller retries with the same range.
        """
        written = 0
        for key in list(self._buffer):
            cols = self._buffer[key]
            written += self._write_partition(key, cols, wal_start, wal_end)
            del self._buffer[key]
            self._buffered_rows -= len(cols["span_id"])
        self._buffered_keys.clear()
        if self._hook is not None:
            self._hook.after_flush(wal_start, wal_end)
        return written

    def _write_partition(self, key: PartitionKey, cols: Columns, wal_start: int, wal_end: int) -> int:
        project, date = key
        if self._hook is not None:
            self._hook.before_write(key, cols)
        try:
            table = pa.Table.from_pydict(cols, schema=SPAN_SCHEMA)
        except (pa.ArrowException, OverflowError, TypeError, ValueError) as exc:
            # A row Arrow cannot store would fail this flush forever and hold up the whole WAL behind
            # it: set such rows aside (kept as JSON, counted, logged) and write the others.
            cols = self._set_aside(cols, wal_start, wal_end, exc)
            if not cols["span_id"]:
                return 0
            table = pa.Table.from_pydict(cols, schema=SPAN_SCHEMA)
        table = table.sort_by([("trace_id", "ascending"), ("start_ns", "ascending")])
        metadata: dict[bytes | str, bytes | str] = dict(SPAN_SCHEMA.metadata or {})
        metadata.update({META_WAL_START: str(wal_start), META_WAL_END: str(wal_end)})
        table = table.replace_schema_metadata(metadata)
        path = new_part_path(self._data_dir, project, date, wal_start, wal_end)
        _ensure_dir(path.parent)
        write_durably(table, path, row_group_size=self._row_group_size)
        if self._hook is not None:
            self._hook.after_write(key, cols, wal_start, wal_end)
        self.rows_written += table.num_rows
        self.files_written += 1
        return int(table.num_rows)


    def _set_aside(self, cols: Columns, wal_start: int, wal_end: int, exc: BaseException) -> Columns:
        """Keep the rows Arrow accepts; append the others to `quarantine/spans-<walstart>-<walend>.jsonl`."""
        names = list(cols)
        bad = [i for i in range(len(cols["span_id"])) if not _storable({n: [cols[n][i]] for n in SPAN_SCHEMA.names})]
        if bad:
            directory = self._data_dir / QUARANTINE_DIR
            _ensure_dir(directory)
            lines = [_json.encode({n: cols[n][i] for n in SPAN_SCHEMA.names}) for i in bad]
            with open(directory / f"spans-{wal_start:016x}-{wal_end:016x}.jsonl", "ab") as fh:
                fh.write(b"\n".join(lines) + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
            self.rows_quarantined += len(bad)
            log.error("%d span(s) could not be stored (%s); kept in %s", len(bad), exc, directory)
        skip = set(bad)
        return {n: [v for i, v in enumerate(cols[n]) if i not in skip] for n in names}


def _storable(row: Columns) -> bool:
    try:
        pa.Table.from_pydict(row, schema=SPAN_SCHEMA)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        return False
    return True


def write_durably(table: pa.Table, path: Path, *, row_group_size: int) -> None:
    """Write to `<path>.tmp`, fsync, rename into place, fsync the directory: all or nothing, and durable."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        pq.write_table(table, tmp, compression="zstd", row_group_size=row_group_size)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def _ensure_dir(path: Path) -> None:
    """Create a partition directory so that its entry survives a crash (each new level's parent fsynced)."""
    if path.is_dir():
        return
    missing: list[Path] = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    path.mkdir(parents=True, exist_ok=True)
    for created in reversed(missing):
        fsync_dir(created.parent)


def remove_stale_temp_files(partitions: list[Path]) -> int:
    """Delete `*.tmp` leftovers of writes a crash interrupted (never visible to readers)."""
    removed = 0
    for directory in partitions:
        for entry in os.scandir(directory):
            if entry.name.endswith(".tmp"):
                Path(entry.path).unlink(missing_ok=True)
                removed += 1
    return removed
