"""The number of stored spans, from the span files' footers: what `/health` reports, without a query engine.

A liveness probe calls `/health` every few seconds, on a collector that may only ingest. Counting
through DuckDB (`parquet_file_metadata` over every span file) loaded DuckDB for it: ~50 MB resident
(the library's pages and an instance) in a process that otherwise never queries, and every footer
read again on each probe. Here a file's footer is read the first time the file is seen: a span file is
immutable under its name (written under a temporary name, then renamed; compaction and retention write
new names and delete the old). Each count lists the partition directories (no mtime cache: a file
renamed in within the timestamp granularity of the directory's last change would be missed).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pyarrow.parquet as pq

from llmscope_collector.query.index import parquet_names, subdirs
from llmscope_collector.query.vanished import until_read
from llmscope_collector.storage.layout import SPANS_DIR


class SpanRows:
    """Counts the rows of the span files under `data_dir` (thread-safe; the API serves probes on threads)."""

    def __init__(self, data_dir: Path) -> None:
        self._root = str(data_dir / SPANS_DIR)
        self._rows: dict[str, int] = {}
        self._lock = threading.Lock()

    def total(self) -> int:
        """Spans in the files now. A file compaction or retention deleted between the listing and its
        footer's read is listed again; a file that cannot be read raises (the store is unhealthy)."""
        with self._lock:
            return until_read(self._count)

    def _count(self) -> int:
        files = set(_span_files(self._root))
        for gone in self._rows.keys() - files:
            del self._rows[gone]
        for path in files - self._rows.keys():
            self._rows[path] = pq.read_metadata(path).num_rows
        return sum(self._rows.values())


def _span_files(root: str) -> list[str]:
    """`<root>/project=*/date=*/*.parquet`, as the query engines glob them."""
    return [
        os.path.join(date, name)
        for project in subdirs(root, "project=")
        for date in subdirs(project, "date=")
        for name in parquet_names(date)
    ]
