"""Where the writer thread's files go: the data dir (the embedded default) or an object store bucket.

Both keep the same partition layout (`<dataset>/project=<p>/date=<d>/<name>`, storage.layout); they
differ in how a write is made durable and exactly-once:

- `LocalTables`: temp file, fsync, rename, directory fsync (durable_io); names carry a random suffix.
- `BucketTables`: one create-only PUT (`If-None-Match: *`) per file; a flush file's name ends with
  the collector id instead, so its key is a function of (collector, partition, WAL range) alone and a
  replay of a flush whose object exists is refused by the store and counted, not duplicated. The
  flush ends with its manifest (storage.manifests), the commit record readers go by.

Replay after a crash uses the same WAL coverage either way (storage.wal_ranges): on a data dir the
ranges of this writer's own flush files newer than the cursor, in a bucket those of its manifests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from llmscope_collector.durable_io import fsync_dir, write_durably
from llmscope_collector.file_modes import make_private_dir
from llmscope_collector.storage.layout import (
    SPANS_DIR,
    flush_encoding_of,
    parquet_files,
    part_name,
    partition_dir,
    partition_key,
)
from llmscope_collector.storage.manifests import (
    FlushManifest,
    ManifestIndex,
    StoredObject,
    describe,
    describe_stored,
)
from llmscope_collector.storage.objects import ObjectStore, parquet_bytes, read_parquet
from llmscope_collector.storage.schema import SCHEMA_VERSION
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

    def commit_flush(self, wal_start: int, wal_end: int) -> None:
        """The flush of `[wal_start, wal_end)` wrote every file: make it one unit for readers (in a
        bucket, its manifest); called before the WAL cursor moves past `wal_end`."""
        ...


class LocalTables:
    """Files under the data dir (the embedded default, unchanged)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def part_name(self, wal_start: int, wal_end: int) -> str:
        return part_name(wal_start, wal_end)

    def write(self, dataset: str, project: str, date: str, name: str, table: pa.Table, *, row_group_size: int) -> bool:
        directory = partition_dir(self.data_dir, project, date, dataset)
        ensure_dir(directory)
        write_durably(table, directory / name, row_group_size=row_group_size, encoding=flush_encoding_of(dataset))
        return True

    def names(self, dataset: str, project: str, date: str) -> list[str]:
        return [p.name for p in parquet_files(partition_dir(self.data_dir, project, date, dataset))]

    def read(self, dataset: str, project: str, date: str, name: str, schema: pa.Schema | None = None) -> pa.Table:
        return pq.read_table(partition_dir(self.data_dir, project, date, dataset) / name, schema=schema)

    def commit_flush(self, wal_start: int, wal_end: int) -> None:
        """Nothing to do: each file was renamed into place durably (readers see files one by one)."""


class BucketTables:
    """Objects in a bucket, written by one collector (its id ends every flush file's key)."""

    def __init__(self, objects: ObjectStore, collector_id: str, manifests: ManifestIndex | None = None) -> None:
        self.objects = objects
        self.collector_id = collector_id
        self.manifests = manifests or ManifestIndex(objects)
        self._flushed: list[StoredObject] = []  # this flush's objects, for its manifest
        # Called with a committed flush's objects before the WAL cursor moves (session deletion's check).
        self.after_commit: Callable[[list[StoredObject]], None] | None = None
        self.objects_written = 0
        self.bytes_written = 0
        self.replays_refused = 0
        self.manifests_written = 0

    def part_name(self, wal_start: int, wal_end: int) -> str:
        return part_name(wal_start, wal_end, self.collector_id)

    def write(self, dataset: str, project: str, date: str, name: str, table: pa.Table, *, row_group_size: int) -> bool:
        data = parquet_bytes(table, row_group_size=row_group_size, encoding=flush_encoding_of(dataset))
        key = f"{partition_key(project, date, dataset)}/{name}"
        if not self.objects.put_new(key, data):
            self.replays_refused += 1
            log.info("object %s already stored (a replayed flush); left as it is", key)
            self._flushed.append(describe_stored(self.objects, key))  # the manifest names what is stored
            return False
        self._flushed.append(describe(key, data, table.num_rows))
        self.objects_written += 1
        self.bytes_written += len(data)
        return True

    def commit_flush(self, wal_start: int, wal_end: int) -> None:
        """Write the flush's manifest (create-only): from now on readers show its objects, together.

        A crash before this leaves objects no manifest names: never shown, and the replay stores the
        spans again under the manifest of its own flush. A manifest already stored for this range (a
        replay of a committed flush whose cursor commit was lost) is kept as it is."""
        if not self._flushed:
            return
        manifest = FlushManifest(
            collector_id=self.collector_id,
            wal_start=wal_start,
            wal_end=wal_end,
            schema_version=SCHEMA_VERSION,
            objects=self._flushed,
        )
        if self.manifests.put_flush(manifest):
            self.manifests_written += 1
        else:
            log.info("the manifest of WAL range [%d, %d) was stored before (a replay)", wal_start, wal_end)
        flushed, self._flushed = self._flushed, []
        if self.after_commit is not None:
            self.after_commit(flushed)

    def names(self, dataset: str, project: str, date: str) -> list[str]:
        prefix = partition_key(project, date, dataset) + "/"
        return sorted(info.key.removeprefix(prefix) for info in self.objects.list(prefix))

    def read(self, dataset: str, project: str, date: str, name: str, schema: pa.Schema | None = None) -> pa.Table:
        return read_parquet(self.objects.get(f"{partition_key(project, date, dataset)}/{name}"), schema)

    def coverage(self, committed_lsn: int) -> WalCoverage:
        """What replay must not store again, from this collector's own commit records: the WAL
        ranges of its flush manifests that end after `committed_lsn` (stored in full, every
        partition), the ranges of its flush objects adopted from before manifests (per partition, as
        their keys said), and the highest range end (the WAL never reuses an LSN below it)."""
        coverage = WalCoverage()
        beyond, coverage.max_end = self.manifests.own_flushes(self.collector_id, committed_lsn)
        coverage.everywhere.extend((manifest.wal_start, manifest.wal_end) for manifest in beyond)
        for legacy in self.manifests.own_legacy(self.collector_id):
            if legacy.object.dataset != SPANS_DIR:
                continue
            coverage.max_end = max(coverage.max_end, legacy.wal_end)
            if legacy.wal_end > committed_lsn:
                key = (legacy.object.project, legacy.object.date)
                coverage.ranges.setdefault(key, []).append((legacy.wal_start, legacy.wal_end))
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
