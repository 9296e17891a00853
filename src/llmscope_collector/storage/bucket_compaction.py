"""Compaction in cluster mode: the holder of the `compaction` lease merges small objects of every dataset.

The planning and merging are the data dir's (storage.compaction: groups of small files up to the
target size, duplicates removed within the group and against the partition's other files by each
dataset's `MergeRule`), run over the query mirror, which already holds a copy of every shown
object. Which objects exist and where each came from is read from the manifests
(storage.manifests), never from object names. What differs from a data dir:

- **Which objects may be merged.** A collector's crash recovery reads its own flush manifests, so
  an object may be merged away only once its collector's committed WAL position is past the
  manifest's `wal_end`. Each collector publishes that position as `control/cursors/<id>.json`
  (`CursorBoard`); objects of a collector that never published one are left alone.
- **The swap.** The merged objects' keys are derived from their inputs' names
  (`compact-<digest>-<n>.parquet`) and written create-only; then a `CompactionManifest` naming the
  outputs and the inputs they replace (`manifests/compaction/<digest>.pb`, create-only) commits
  the swap: from then on readers show the outputs and not the inputs; then the inputs are deleted.
  Two nodes merging the same inputs (a lease lapsing mid-run) write the same keys once. A crash
  before the manifest leaves outputs no manifest names (never shown; the next run of the same
  inputs finds them stored); a crash after it leaves inputs nobody shows, deleted by the next run.
- **Duplicates across collectors.** A span stored by two collectors (a retry re-routed to another
  collector) is kept once; the trace summary delta of the copy left out is cancelled by a
  correction delta (`traces/.../compact-<digest>-fix.parquet`, its sums negated) committed by the
  same manifest, so trace and session totals count the span once too.
- **Clean-up.** Manifests that name nothing present any more (every object merged away or expired
  by lifecycle rules, and for a flush its collector past it) are deleted, and so are flush objects
  no manifest names whose WAL range the same collector's manifests cover (leftovers of a flush a
  crash interrupted, whose records the replay committed).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import msgspec
import pyarrow as pa

from llmscope_collector.control.document import CONTROL_PREFIX
from llmscope_collector.durable_io import DEFAULT_ENCODING, Encoding
from llmscope_collector.storage.compaction import (
    COMPACTED_FROM_KEY,
    CompactionOptions,
    CompactionStats,
    Compactor,
    RemovalDeltas,
    _file_info,
    _FileInfo,
)
from llmscope_collector.storage.layout import (
    COMPACTED_PREFIX,
    DATASETS,
    SPANS_DIR,
    TRACES_DIR,
    Partition,
    encoding_of,
    parquet_files,
    part_suffix,
    partition_key,
    partition_of_key,
    wal_range_of,
)
from llmscope_collector.storage.manifests import (
    CompactionManifest,
    FlushManifest,
    ManifestIndex,
    StoredObject,
    describe,
    describe_stored,
)
from llmscope_collector.storage.merge import MergedGroup
from llmscope_collector.storage.mirror import BucketMirror
from llmscope_collector.storage.objects import ObjectStore, parquet_bytes_of
from llmscope_collector.storage.schema import SCHEMA_VERSION

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

    def published(self, collector_id: str) -> int:
        """The position `collector_id` last published (0 if none)."""
        try:
            return msgspec.json.decode(self._objects.get(f"{_CURSORS}{collector_id}.json"), type=_Cursor).lsn
        except FileNotFoundError:
            return 0

    def read(self) -> dict[str, int]:
        positions: dict[str, int] = {}
        for info in self._objects.list(_CURSORS):
            collector_id = info.key.removeprefix(_CURSORS).removesuffix(".json")
            positions[collector_id] = msgspec.json.decode(self._objects.get(info.key), type=_Cursor).lsn
        return positions


class BucketCompactor(Compactor):
    """`run_once` merges over `mirror` and swaps objects in the bucket while `may_run()` (the lease) holds."""

    def __init__(
        self,
        objects: ObjectStore,
        mirror: BucketMirror,
        options: CompactionOptions,
        *,
        may_run: Callable[[], bool],
        removal_deltas: RemovalDeltas | None = None,
        node: str = "",
    ) -> None:
        super().__init__(
            mirror.root, options, committed_lsn=lambda: 0, datasets=DATASETS, removal_deltas=removal_deltas
        )
        self._objects = objects
        self._mirror = mirror
        self._manifests: ManifestIndex = mirror.manifests
        self._may_run = may_run
        self._node = node
        self._cursors = CursorBoard(objects)
        self._positions: dict[str, int] = {}
        self._finished: set[str] = set()  # compaction manifests whose inputs are known to be gone
        self.runs = 0
        self.manifests_deleted = 0
        self.leftovers_deleted = 0

    def run_once(self, stop: threading.Event | None = None) -> CompactionStats:
        if not self._may_run():
            return CompactionStats()
        self.runs += 1
        # Positions first, then the mirror (manifests, then the listing): an object listed but named
        # by no manifest read before it can then only be a leftover if its collector is past it.
        self._positions = self._cursors.read()
        self._mirror.sync()
        if self._finish_swaps():
            self._mirror.sync()
        stats = super().run_once(stop)
        if stats.files_in:
            self._mirror.sync()  # this node's queries see the merged objects at once
        if self._may_run():
            try:
                with self._mirror.held():  # the manifests and the listing of one sync, together
                    self._clean_up()
            except Exception:
                stats.errors += 1
                log.exception("compaction clean-up failed; retried at the next run")
        return stats

    def _eligible(self, partition: Path) -> list[_FileInfo]:
        infos = []
        for path in parquet_files(partition):
            origin = self._manifests.origin(path.relative_to(self._data_dir).as_posix())
            if origin is not None and origin.wal_end > self._positions.get(origin.collector_id, -1):
                continue  # its collector's recovery may still read its manifest
            info = _file_info(path)
            if info is not None:
                infos.append(info)
        return infos

    def _swap(
        self, partition: Partition, inputs: list[Path], merged: MergedGroup, *, backup: bool, removed: pa.Table
    ) -> None:
        if not self._may_run():
            raise RuntimeError("the compaction lease lapsed; the next holder merges these objects")
        prefix = partition_key(partition.project, partition.date, partition.dataset)
        names = sorted(p.name for p in inputs)
        digest = hashlib.sha256("\n".join([prefix, *names]).encode()).hexdigest()[:16]
        assert json.loads((merged.schema.metadata or {})[COMPACTED_FROM_KEY]) == names  # set by _merge
        outputs = []
        for number, row_groups in enumerate(merged.files()):
            key = f"{prefix}/{COMPACTED_PREFIX}{digest}-{number}.parquet"
            outputs.append(self._put(key, row_groups, merged.schema, encoding_of(partition.dataset)))
        if removed.num_rows and partition.dataset in _COUNTED and self._removal_deltas is not None:
            deltas = partition_key(partition.project, partition.date, TRACES_DIR)
            fix = self._removal_deltas(removed)
            outputs.append(self._put(f"{deltas}/{COMPACTED_PREFIX}{digest}-fix.parquet", [fix], fix.schema))
        manifest = CompactionManifest(
            replaces=[f"{prefix}/{name}" for name in names],
            objects=outputs,
            schema_version=SCHEMA_VERSION,
            node=self._node,
        )
        self._manifests.put_compaction(digest, manifest)  # the commit point: outputs shown, inputs not
        for name in names:
            self._objects.delete(f"{prefix}/{name}")

    def _put(
        self, key: str, parts: Iterable[pa.Table], schema: pa.Schema, encoding: Encoding = DEFAULT_ENCODING
    ) -> StoredObject:
        """Store the object of `parts` create-only (it is encoded part by part; only its bytes are held whole)."""
        rows = 0

        def counted() -> Iterator[pa.Table]:
            nonlocal rows
            for part in parts:
                rows += part.num_rows
                yield part

        data = parquet_bytes_of(counted(), schema, row_group_size=self._opts.row_group_size, encoding=encoding)
        if self._objects.put_new(key, data):
            return describe(key, data, rows)
        return describe_stored(self._objects, key)  # an interrupted run of the same inputs stored it

    def _finish_swaps(self) -> int:
        """Delete the inputs a committed compaction replaced that may still be there (a swap a crash
        interrupted, or another node's); returns how many deletions were sent."""
        deleted = 0
        for key, manifest in self._manifests.compactions().items():
            if key in self._finished:
                continue
            present = [k for k in manifest.replaces if k in self._mirror.listed]
            for replaced in present:
                log.info("finishing an interrupted compaction: deleting %s", replaced)
                self._objects.delete(replaced)
                deleted += 1
            self._finished.add(key)
        return deleted

    def _clean_up(self) -> None:
        """Delete manifests that name nothing present, and flush leftovers whose records were committed."""
        listed = self._mirror.listed
        committed = _committed_ranges(self._manifests.flushes().values())  # before any is deleted
        for key, flush in self._manifests.flushes().items():
            gone = not any(o.key in listed for o in flush.objects)
            if gone and flush.wal_end <= self._positions.get(flush.collector_id, -1):
                self._manifests.delete(key)
                self.manifests_deleted += 1
        for key, compaction in self._manifests.compactions().items():
            names = [*(o.key for o in compaction.objects), *compaction.replaces]
            if not any(name in listed for name in names):
                self._manifests.delete(key)
                self._finished.discard(key)
                self.manifests_deleted += 1
        for key in sorted(listed):
            if self._manifests.named(key) or not _is_leftover(key, committed):
                continue
            log.info("deleting %s: a flush no manifest names, whose records a later flush committed", key)
            self._objects.delete(key)
            self.leftovers_deleted += 1


def _committed_ranges(flushes: Iterable[FlushManifest]) -> dict[str, list[tuple[int, int]]]:
    """Each collector's committed WAL ranges, sorted, adjacent ones joined."""
    by_collector: dict[str, list[tuple[int, int]]] = {}
    for flush in flushes:
        by_collector.setdefault(flush.collector_id, []).append((flush.wal_start, flush.wal_end))
    joined: dict[str, list[tuple[int, int]]] = {}
    for collector_id, ranges in by_collector.items():
        merged: list[tuple[int, int]] = []
        for start, end in sorted(ranges):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        joined[collector_id] = merged
    return joined


def _is_leftover(key: str, committed: dict[str, list[tuple[int, int]]]) -> bool:
    """A flush object no manifest names whose WAL range its collector's manifests cover: the leftover
    of a flush a crash interrupted, whose records the replay committed. (Its name is read only here,
    for an object no record describes; an object of a collector that writes no manifests, such as an
    older version's, is never covered, so never deleted.)"""
    parsed = partition_of_key(key)
    if parsed is None:
        return False
    wal_range, collector_id = wal_range_of(parsed[3]), part_suffix(parsed[3])
    if wal_range is None or collector_id is None:
        return False
    return any(start <= wal_range[0] and wal_range[1] <= end for start, end in committed.get(collector_id, ()))


_COUNTED = frozenset({SPANS_DIR})
"""Datasets whose duplicate rows were counted in the trace summary deltas (and need a correction)."""
