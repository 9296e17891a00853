"""Compaction in cluster mode: the holder of the `compaction` lease merges small span objects.

The planning and merging are the data dir's (storage.compaction: groups of small files up to the
target size, duplicate spans removed within the group and against the partition's other files),
run over the query mirror, which already holds a copy of every object. What differs:

- **Which objects may be merged.** A collector's crash recovery lists its own
  `part-<walstart>-<walend>-<id>` objects to know which WAL records are stored, so an object may be
  merged away only once its collector's committed WAL position is past `walend`. Each collector
  publishes that position as `control/cursors/<id>.json` (`CursorBoard`); objects of a collector
  that never published one are left alone.
- **The swap.** The merged object's key is derived from its inputs' names
  (`compact-<digest>-<n>.parquet`) and written create-only, with the inputs' names in its Parquet
  metadata (`llmscope.compacted_from`, as on a data dir); then the inputs are deleted. Two nodes
  merging the same inputs (a lease lapsing mid-run) write the same key once. A crash between the
  two steps leaves both; every run first finishes such swaps (deletes inputs named by a merged
  object), and until then queries may count those spans twice, as on a data dir between a rename
  and an unlink.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq

from llmscope_collector.control.document import CONTROL_PREFIX
from llmscope_collector.storage.compaction import (
    COMPACTED_FROM_KEY,
    CompactionOptions,
    CompactionStats,
    Compactor,
    _file_info,
    _FileInfo,
)
from llmscope_collector.storage.layout import (
    COMPACTED_PREFIX,
    Partition,
    iter_partitions,
    parquet_files,
    part_suffix,
    partition_key,
    wal_range_of,
)
from llmscope_collector.storage.objects import ObjectStore, parquet_bytes

log = logging.getLogger(__name__)

_CURSORS = f"{CONTROL_PREFIX}cursors/"


class _Cursor(msgspec.Struct):
    lsn: int


class CursorBoard:
    """Each collector's committed WAL position, published in the bucket for the compactor."""

    def __init__(self, objects: ObjectStore) -> None:
        self._objects = objects
        self._published: int | None = None

    def publish(self, collector_id: str, lsn: int) -> None:
        """Write this collector's position when it moved (a plain PUT: one writer per object)."""
        if lsn != self._published:
            self._objects.put(f"{_CURSORS}{collector_id}.json", msgspec.json.encode(_Cursor(lsn)))
            self._published = lsn

    def read(self) -> dict[str, int]:
        positions: dict[str, int] = {}
        for info in self._objects.list(_CURSORS):
            collector_id = info.key.removeprefix(_CURSORS).removesuffix(".json")
            positions[collector_id] = msgspec.json.decode(self._objects.get(info.key), type=_Cursor).lsn
        return positions


class BucketCompactor(Compactor):
    """`run_once` merges over the mirror at `mirror_root` and swaps objects in the bucket, while
    `may_run()` (the lease) holds."""

    def __init__(
        self,
        objects: ObjectStore,
        mirror_root: Path,
        options: CompactionOptions,
        *,
        may_run: Callable[[], bool],
        refresh_mirror: Callable[[], object],
    ) -> None:
        super().__init__(mirror_root, options, committed_lsn=lambda: 0)
        self._objects = objects
        self._may_run = may_run
        self._refresh_mirror = refresh_mirror
        self._cursors = CursorBoard(objects)
        self._positions: dict[str, int] = {}
        self._finished: set[Path] = set()  # merged objects whose inputs are known to be gone
        self.runs = 0

    def run_once(self, stop: threading.Event | None = None) -> CompactionStats:
        if not self._may_run():
            return CompactionStats()
        self.runs += 1
        self._refresh_mirror()
        self._positions = self._cursors.read()
        if self._finish_swaps():
            self._refresh_mirror()
        stats = super().run_once(stop)
        if stats.files_in:
            self._refresh_mirror()  # this node's queries see the merged objects at once
        return stats

    def _eligible(self, partition: Path) -> list[_FileInfo]:
        infos = []
        for path in parquet_files(partition):
            wal_range, collector_id = wal_range_of(path.name), part_suffix(path.name)
            if wal_range is not None and wal_range[1] > self._positions.get(collector_id or "", -1):
                continue  # its collector's recovery may still need to list it as it is
            info = _file_info(path)
            if info is not None:
                infos.append(info)
        return infos

    def _swap(self, partition: Partition, inputs: list[Path], merged: pa.Table, *, backup: bool) -> None:
        if not self._may_run():
            raise RuntimeError("the compaction lease lapsed; the next holder merges these objects")
        prefix = partition_key(partition.project, partition.date, partition.dataset)
        names = sorted(p.name for p in inputs)
        digest = hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]
        assert json.loads((merged.schema.metadata or {})[COMPACTED_FROM_KEY]) == names  # set by _merge
        step = self._opts.target_rows
        for number, offset in enumerate(range(0, merged.num_rows, step)):
            data = parquet_bytes(merged.slice(offset, step), row_group_size=self._opts.row_group_size)
            self._objects.put_new(f"{prefix}/{COMPACTED_PREFIX}{digest}-{number}.parquet", data)
        for name in names:
            self._objects.delete(f"{prefix}/{name}")

    def _finish_swaps(self) -> int:
        """Delete the inputs a merged object names that are still there (a swap a crash interrupted);
        returns how many."""
        deleted = 0
        for partition in iter_partitions(self._data_dir):
            present = {p.name for p in parquet_files(partition.path)}
            for path in parquet_files(partition.path):
                if not path.name.startswith(COMPACTED_PREFIX) or path in self._finished:
                    continue
                left = [n for n in _inputs_of(path) if n in present]
                prefix = partition_key(partition.project, partition.date, partition.dataset)
                for name in left:
                    log.info("finishing an interrupted compaction: deleting %s/%s", prefix, name)
                    self._objects.delete(f"{prefix}/{name}")
                    deleted += 1
                self._finished.add(path)
        return deleted


def _inputs_of(path: Path) -> list[str]:
    try:
        raw = (pq.read_metadata(path).metadata or {}).get(COMPACTED_FROM_KEY)
    except (OSError, ValueError):
        return []
    return list(json.loads(raw)) if raw else []
