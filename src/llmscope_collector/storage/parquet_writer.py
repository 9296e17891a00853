"""Buffers decoded spans and writes them as immutable Parquet files, one per partition per flush.

Files are written to a temporary name and renamed into place, so a reader (DuckDB) never sees a
half-written file. Flushes happen when the buffer reaches `flush_rows`, every `flush_interval_s`
from a background thread, and on `close()`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from llmscope_collector.processors.decode import Columns, DecodedBatch, PartitionKey
from llmscope_collector.storage.layout import new_part_path
from llmscope_collector.storage.schema import COLUMN_NAMES, SPAN_SCHEMA

log = logging.getLogger(__name__)


class ParquetSpanWriter:
    """Thread-safe span sink that owns the Parquet files under the data dir."""

    def __init__(self, data_dir: Path, *, flush_rows: int = 50_000, flush_interval_s: float = 1.0) -> None:
        self._data_dir = data_dir
        self._flush_rows = flush_rows
        self._flush_interval_s = flush_interval_s
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._buffer: dict[PartitionKey, Columns] = {}
        self._buffered_rows = 0
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self.rows_written = 0
        self.files_written = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="llmscope-parquet-flush", daemon=True)
        self._thread.start()

    def append(self, batch: DecodedBatch) -> None:
        """Take ownership of a decoded batch; may flush synchronously when the buffer is full."""
        with self._lock:
            for key, cols in batch.partitions.items():
                target = self._buffer.get(key)
                if target is None:
                    self._buffer[key] = cols
                else:
                    for name in COLUMN_NAMES:
                        target[name].extend(cols[name])
            self._buffered_rows += batch.accepted
            full = self._buffered_rows >= self._flush_rows
        if full:
            self.flush()

    def flush(self) -> int:
        """Write everything buffered so far; returns the number of rows written."""
        with self._flush_lock:
            with self._lock:
                pending, self._buffer = self._buffer, {}
                self._buffered_rows = 0
            written = 0
            for (project, date), cols in pending.items():
                try:
                    written += self._write_partition(project, date, cols)
                except BaseException:
                    self._requeue((project, date), cols)
                    raise
            return written

    def _requeue(self, key: PartitionKey, cols: Columns) -> None:
        """Put a batch that failed to write back in the buffer so a later flush retries it."""
        with self._lock:
            target = self._buffer.setdefault(key, {name: [] for name in COLUMN_NAMES})
            for name in COLUMN_NAMES:
                target[name][:0] = cols[name]
            self._buffered_rows += len(cols["span_id"])

    def _write_partition(self, project: str, date: str, cols: Columns) -> int:
        table = pa.Table.from_pydict(cols, schema=SPAN_SCHEMA)
        table = table.sort_by([("trace_id", "ascending"), ("start_ns", "ascending")])
        path = new_part_path(self._data_dir, project, date, _first_start(cols))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        pq.write_table(table, tmp, compression="zstd", row_group_size=64_000)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        self.rows_written += table.num_rows
        self.files_written += 1
        return int(table.num_rows)

    def _run(self) -> None:
        while not self._closed.wait(self._flush_interval_s):
            try:
                self.flush()
            except Exception:
                log.exception("periodic Parquet flush failed; data stays buffered for the next try")

    def close(self) -> None:
        """Stop the flush thread and write what is left."""
        self._closed.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()

    @property
    def buffered_rows(self) -> int:
        return self._buffered_rows


def _first_start(cols: Columns) -> int:
    starts: list[Any] = cols["start_ns"]
    return min(starts) if starts else time.time_ns()
