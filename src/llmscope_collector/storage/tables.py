"""Where the writer thread's files go: the data dir (the embedded default) or an object store bucket.

Both keep the same partition layout (`<dataset>/project=<p>/date=<d>/<name>`, storage.layout); they
differ in how a write is made durable and exactly-once:

- `LocalTables`: temp file, fsync, rename, directory fsync (durable_io); names carry a random suffix.
- `BucketTables`: one create-only PUT (`If-None-Match: *`) per file; a flush file's name ends with
  the collector id instead, so its key is a function of (collector, partition, WAL range) alone and a
  replay of a flush whose object exists is refused by the store and counted, not duplicated.

Replay after a crash uses the same WAL coverage either way (storage.wal_ranges): the ranges of this
writer's own flush files newer than the cursor are skipped per partition.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from llmscope_collector.durable_io import fsync_dir, write_durably
from llmscope_collector.file_modes import make_private_dir
from llmscope_collector.storage.layout import (
    SPANS_DIR,
    parquet_files,
    part_name,
    part_suffix,
    partition_dir,
    partition_key,
    partition_of_key,
    wal_range_of,
)
from llmscope_collector.storage.objects import ObjectStore, parquet_bytes, read_parquet
from llmscope_collector.storage.wal_ranges import WalCoverage

log = logging.getLogger(__name__)


class TableSink(Protocol):
    """Durable, immutable files of a dataset's partitions (single writer thread)."""

    def part_name(self, wal_start: int, wal_end: int) -> str:
        """The name of a flush file holding WAL range `[wal_start, wal_end)`."""
        ...

    def write(self, dataset: str, project: str, date: str, name: str, table: pa.Table, *, row_group_size: int) -> bool:
        """Store `table` durably as `name`; False when a file of that name was already stored (a replay)."""
        ...

    def names(self, dataset: str, project: str, date: str) -> list[str]:
        """The file names of one partition, sorted."""
        ...

    def read(self, dataset: str, project: str, date: str, name: str, schema: pa.Schema | None = None) -> pa.Table: ...


class LocalTables:
    """Files under the data dir (the embedded default, unchanged)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def part_name(self, wal_start: int, wal_end: int) -> str:
        return part_name(wal_start, wal_end)

    def write(self, dataset: str, project: str, date: str, name: str, table: pa.Table, *, row_group_size: int) -> bool:
        directory = partition_dir(self.data_dir, project, date, dataset)
        ensure_dir(directory)
        write_durably(table, directory / name, row_group_size=row_group_size)
        return True

    def names(self, dataset: str, project: str, date: str) -> list[str]:
        return [p.name for p in parquet_files(partition_dir(self.data_dir, project, date, dataset))]

    def read(self, dataset: str, project: str, date: str, name: str, schema: pa.Schema | None = None) -> pa.Table:
        return pq.read_table(partition_dir(self.data_dir, project, date, dataset) / name, schema=schema)


class BucketTables:
    """Objects in a bucket, written by one collector (its id ends every flush file's key)."""

    def __init__(self, objects: ObjectStore, collector_id: str) -> None:
        self.objects = objects
        self.collector_id = collector_id
        self.objects_written = 0
        self.bytes_written = 0
        self.replays_refused = 0

    def part_name(self, wal_start: int, wal_end: int) -> str:
        return part_name(wal_start, wal_end, self.collector_id)

    def write(self, dataset: str, project: str, date: str, name: str, table: pa.Table, *, row_group_size: int) -> bool:
        data = parquet_bytes(table, row_group_size=row_group_size)
        key = f"{partition_key(project, date, dataset)}/{name}"
        if not self.objects.put_new(key, data):
            self.replays_refused += 1
            log.info("object %s already stored (a replayed flush); left as it is", key)
            return False
        self.objects_written += 1
        self.bytes_written += len(data)
        return True

    def names(self, dataset: str, project: str, date: str) -> list[str]:
        prefix = partition_key(project, date, dataset) + "/"
        return sorted(info.key.removeprefix(prefix) for info in self.objects.list(prefix))

    def read(self, dataset: str, project: str, date: str, name: str, schema: pa.Schema | None = None) -> pa.Table:
        table = read_parquet(self.objects.get(f"{partition_key(project, date, dataset)}/{name}"))
        return table.cast(schema) if schema is not None and not table.schema.equals(schema) else table

    def coverage(self, committed_lsn: int) -> WalCoverage:
        """This collector's flush objects of the spans dataset: the ranges ending after `committed_lsn`
        (replay skips them) and the highest range end (the WAL never reuses an LSN below it)."""
        coverage = WalCoverage()
        for info in self.objects.list(SPANS_DIR + "/"):
            parsed = partition_of_key(info.key)
            if parsed is None or part_suffix(parsed[3]) != self.collector_id:
                continue
            wal_range = wal_range_of(parsed[3])
            assert wal_range is not None  # part_suffix matched the same pattern
            coverage.max_end = max(coverage.max_end, wal_range[1])
            if wal_range[1] > committed_lsn:
                coverage.ranges.setdefault((parsed[1], parsed[2]), []).append(wal_range)
        return coverage


def ensure_dir(path: Path) -> None:
    """Create a partition directory so that its entry survives a crash (each new level's parent fsynced)."""
    if path.is_dir():
        return
    missing: list[Path] = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    make_private_dir(path)
    for created in reversed(missing):
        fsync_dir(created.parent)
