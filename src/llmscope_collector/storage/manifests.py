"""Cluster mode's commit records: which objects of the bucket exist for readers, and what each holds.

Declared in `proto/cluster/v1/manifest.proto` (generated into `_proto/cluster/v1`). Every flush of a
collector ends with a `FlushManifest` naming the objects it stored (rows, bytes, SHA-256), written
create-only after them and before the WAL cursor moves; every compaction ends with a
`CompactionManifest` naming its outputs and the inputs they replace. Readers (the query mirror, the
compactor, a collector's crash recovery) read these records instead of parsing object names:

- an object is **shown** when a manifest names it and no compaction manifest replaces it, so a
  flush's spans, trace deltas and content appear together, and a compaction's outputs replace its
  inputs at once (even before the inputs are deleted);
- an object no manifest names is the leftover of a flush or compaction a crash interrupted: never
  shown; the replayed flush stores its spans again (under its own manifest), and compaction deletes
  the leftover once its collector's cursor is past it;
- a bucket written before manifests is adopted once (`LegacyAdoption`, `adopt_legacy`);
- a session deletion is a `SessionTombstone` (the request, which flushes honour from then on) and
  then a `DeletionManifest` of the same id naming each rewritten object and the one it replaces
  (storage.bucket_deletion): like a compaction, seen whole or not at all.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import time
from collections.abc import Iterable
from typing import TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from llmscope_collector._proto.cluster.v1.manifest_pb2 import (
    CompactionManifest,
    DeletionManifest,
    FlushManifest,
    LegacyAdoption,
    LegacyObject,
    RemovedContent,
    Rewrite,
    SessionTombstone,
    StoredObject,
)
from llmscope_collector.storage.layout import (
    QUERY_DATASETS,
    part_suffix,
    partition_of_key,
    valid_collector_id,
    wal_range_of,
)
from llmscope_collector.storage.objects import ObjectStore

log = logging.getLogger(__name__)

M = TypeVar("M", FlushManifest, CompactionManifest, LegacyAdoption, SessionTombstone, DeletionManifest)

MANIFESTS_PREFIX = "manifests/"
FLUSH_PREFIX = f"{MANIFESTS_PREFIX}flush/"
COMPACTION_PREFIX = f"{MANIFESTS_PREFIX}compaction/"
LEGACY_KEY = f"{MANIFESTS_PREFIX}legacy.pb"
TOMBSTONE_PREFIX = f"{MANIFESTS_PREFIX}tombstones/"
DELETION_PREFIX = f"{MANIFESTS_PREFIX}deletion/"

__all__ = [
    "CompactionManifest",
    "DeletionManifest",
    "FlushManifest",
    "LegacyAdoption",
    "ManifestIndex",
    "Origin",
    "RemovedContent",
    "Rewrite",
    "SessionTombstone",
    "StoredObject",
    "describe",
    "flush_key",
]


def flush_key(collector_id: str, wal_start: int, wal_end: int) -> str:
    """Where the manifest of one flush goes: a function of (collector, WAL range) only, like its objects."""
    return f"{FLUSH_PREFIX}{collector_id}/{wal_start:016x}-{wal_end:016x}.pb"


def compaction_key(digest: str) -> str:
    return f"{COMPACTION_PREFIX}{digest}.pb"


def tombstone_key(deletion_id: str) -> str:
    return f"{TOMBSTONE_PREFIX}{deletion_id}.pb"


def deletion_key(deletion_id: str) -> str:
    return f"{DELETION_PREFIX}{deletion_id}.pb"


def deletion_id_of(key: str) -> str:
    """The deletion id of a tombstone's or a deletion manifest's key."""
    return key.rsplit("/", 1)[-1].removesuffix(".pb")


def describe(key: str, data: bytes, rows: int) -> StoredObject:
    """The manifest entry of an object stored at `key` with these bytes."""
    parsed = partition_of_key(key)
    if parsed is None:
        raise ValueError(f"not a partitioned object key: {key!r}")
    dataset, project, date, _name = parsed
    return StoredObject(
        key=key,
        dataset=dataset,
        project=project,
        date=date,
        rows=rows,
        bytes=len(data),
        sha256=hashlib.sha256(data).digest(),
    )


def describe_stored(objects: ObjectStore, key: str) -> StoredObject:
    """The entry of an object already in the bucket (a replayed flush's PUT was refused): read back."""
    data = objects.get(key)
    return describe(key, data, pq.read_metadata(pa.BufferReader(data)).num_rows)


@dataclasses.dataclass(frozen=True)
class Origin:
    """Which collector wrote a flush object, and the end of the WAL range it holds: compaction may
    remove the object once that collector's committed position is past `wal_end`."""

    collector_id: str
    wal_end: int


@dataclasses.dataclass
class _Snapshot:
    shown: dict[str, StoredObject]
    origins: dict[str, Origin]
    replaced: set[str]


class ManifestIndex:
    """Every manifest of the bucket, read incrementally (each one is fetched once: they never change).

    `refresh()` lists `manifests/` and fetches what is new; `shown()` is then the objects readers
    see, by key. Thread-safe (the mirror's sync and the compactor share one index)."""

    def __init__(self, objects: ObjectStore) -> None:
        self._objects = objects
        self._lock = threading.Lock()
        self._flushes: dict[str, FlushManifest] = {}
        self._compactions: dict[str, CompactionManifest] = {}
        self._tombstones: dict[str, SessionTombstone] = {}  # by deletion id
        self._deletions: dict[str, DeletionManifest] = {}  # by deletion id
        self._legacy: LegacyAdoption | None = None
        self._snapshot = _Snapshot({}, {}, set())
        self.fetched = 0

    # -- reading ----------------------------------------------------------------------------------

    def refresh(self) -> None:
        """List the manifests and read the new ones; forget those that were removed."""
        with self._lock:
            listed = {info.key for info in self._objects.list(MANIFESTS_PREFIX)}
            for key in [k for k in self._flushes if k not in listed]:
                del self._flushes[key]
            for key in [k for k in self._compactions if k not in listed]:
                del self._compactions[key]
            for records, key_of in ((self._tombstones, tombstone_key), (self._deletions, deletion_key)):
                for deletion_id in [d for d in records if key_of(d) not in listed]:
                    del records[deletion_id]
            for key in sorted(listed):
                if key in self._flushes or key in self._compactions or self._known_deletion_record(key):
                    continue
                data = self._fetch(key) if key.startswith(MANIFESTS_PREFIX) else None
                if data is None:
                    continue
                if key.startswith(FLUSH_PREFIX):
                    self._flushes[key] = _parsed(FlushManifest(), data)
                elif key.startswith(COMPACTION_PREFIX):
                    self._compactions[key] = _parsed(CompactionManifest(), data)
                elif key.startswith(TOMBSTONE_PREFIX):
                    self._tombstones[deletion_id_of(key)] = _parsed(SessionTombstone(), data)
                elif key.startswith(DELETION_PREFIX):
                    self._deletions[deletion_id_of(key)] = _parsed(DeletionManifest(), data)
                elif key == LEGACY_KEY:
                    self._legacy = _parsed(LegacyAdoption(), data)
            self._snapshot = self._build()

    def _known_deletion_record(self, key: str) -> bool:
        if key.startswith(TOMBSTONE_PREFIX):
            return deletion_id_of(key) in self._tombstones
        return key.startswith(DELETION_PREFIX) and deletion_id_of(key) in self._deletions

    def refresh_tombstones(self) -> list[SessionTombstone]:
        """Read the tombstones stored since the last read (one LIST of their prefix only: the check a
        collector makes after each flush); returns the new ones."""
        new: list[SessionTombstone] = []
        for info in self._objects.list(TOMBSTONE_PREFIX):
            deletion_id = deletion_id_of(info.key)
            with self._lock:
                if deletion_id in self._tombstones:
                    continue
            try:
                tombstone = _parsed(SessionTombstone(), self._objects.get(info.key))
            except FileNotFoundError:
                continue
            with self._lock:
                self._tombstones[deletion_id] = tombstone
            new.append(tombstone)
        return new

    def _fetch(self, key: str) -> bytes | None:
        if key == LEGACY_KEY and self._legacy is not None:
            return None  # written once, never changed
        try:
            data = self._objects.get(key)
        except FileNotFoundError:
            return None  # removed between the listing and the read (compaction's clean-up)
        self.fetched += 1
        return data

    def _build(self) -> _Snapshot:
        named: dict[str, StoredObject] = {}
        origins: dict[str, Origin] = {}
        if self._legacy is not None:
            for legacy in self._legacy.objects:
                named[legacy.object.key] = legacy.object
                if legacy.collector_id:
                    origins[legacy.object.key] = Origin(legacy.collector_id, legacy.wal_end)
        for manifest in self._flushes.values():
            for stored in manifest.objects:
                named[stored.key] = stored
                origins[stored.key] = Origin(manifest.collector_id, manifest.wal_end)
        replaced: set[str] = set()
        for compaction in self._compactions.values():
            replaced.update(compaction.replaces)
            for stored in compaction.objects:
                named[stored.key] = stored
        for deletion in self._deletions.values():
            for rewrite in deletion.rewrites:
                replaced.add(rewrite.replaces)
                if rewrite.HasField("object"):
                    named[rewrite.object.key] = rewrite.object
        shown = {key: stored for key, stored in named.items() if key not in replaced}
        return _Snapshot(shown, origins, replaced)

    def shown(self) -> dict[str, StoredObject]:
        """The objects readers see, by key (as of the last `refresh`)."""
        with self._lock:
            return dict(self._snapshot.shown)

    def origin(self, key: str) -> Origin | None:
        """The collector and WAL end of a flush object (None for compaction outputs and others)."""
        with self._lock:
            return self._snapshot.origins.get(key)

    def named(self, key: str) -> bool:
        """Whether any manifest names `key` (as an object, or as replaced by a compaction)."""
        with self._lock:
            snapshot = self._snapshot
            return key in snapshot.shown or key in snapshot.replaced or key in snapshot.origins

    def replaced_by(self, key: str) -> set[str] | None:
        """The keys the compaction that output `key` replaced; None when no compaction made `key`."""
        with self._lock:
            for manifest in self._compactions.values():
                if any(stored.key == key for stored in manifest.objects):
                    return set(manifest.replaces)
            for deletion in self._deletions.values():
                for rewrite in deletion.rewrites:
                    if rewrite.HasField("object") and rewrite.object.key == key:
                        return {rewrite.replaces}
        return None

    def tombstones(self) -> dict[str, SessionTombstone]:
        """Every session deletion requested, by deletion id."""
        with self._lock:
            return dict(self._tombstones)

    def deletions(self) -> dict[str, DeletionManifest]:
        """Every session deletion executed (committed), by deletion id."""
        with self._lock:
            return dict(self._deletions)

    def pending_deletions(self) -> dict[str, SessionTombstone]:
        """Tombstones not executed yet (no deletion manifest of their id), oldest first."""
        with self._lock:
            return {d: t for d, t in sorted(self._tombstones.items()) if d not in self._deletions}

    def compactions(self) -> dict[str, CompactionManifest]:
        with self._lock:
            return dict(self._compactions)

    def flushes(self) -> dict[str, FlushManifest]:
        with self._lock:
            return dict(self._flushes)

    # -- writing ----------------------------------------------------------------------------------

    def put_flush(self, manifest: FlushManifest) -> bool:
        """Store a flush's commit record (create-only); False when it was stored before (a replay)."""
        manifest.created_unix_ns = time.time_ns()
        key = flush_key(manifest.collector_id, manifest.wal_start, manifest.wal_end)
        return self._objects.put_new(key, manifest.SerializeToString())

    def put_compaction(self, digest: str, manifest: CompactionManifest) -> bool:
        manifest.created_unix_ns = time.time_ns()
        return self._objects.put_new(compaction_key(digest), manifest.SerializeToString())

    def put_tombstone(self, deletion_id: str, tombstone: SessionTombstone) -> bool:
        if not self._objects.put_new(tombstone_key(deletion_id), tombstone.SerializeToString()):
            return False
        with self._lock:
            self._tombstones[deletion_id] = tombstone
        return True

    def remember_deletion(self, deletion_id: str, manifest: DeletionManifest) -> None:
        """A deletion manifest this node just stored: shown at once, without waiting for a refresh."""
        with self._lock:
            self._deletions[deletion_id] = manifest
            self._snapshot = self._build()

    def read_deletion(self, deletion_id: str) -> DeletionManifest | None:
        """The deletion manifest of `deletion_id` as stored now (one GET), or None while not committed."""
        try:
            return _parsed(DeletionManifest(), self._objects.get(deletion_key(deletion_id)))
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        """Remove a manifest that names nothing live any more (compaction's clean-up)."""
        self._objects.delete(key)
        with self._lock:
            self._flushes.pop(key, None)
            self._compactions.pop(key, None)
            self._snapshot = self._build()

    # -- a collector's own records, for its crash recovery ----------------------------------------

    def own_flushes(self, collector_id: str, after_lsn: int) -> tuple[list[FlushManifest], int]:
        """This collector's flush manifests whose WAL range ends after `after_lsn` (read), and the
        highest range end of all of them: one listing of its own prefix at start, where a manifest's
        key is its range (`flush_key`), so only the few beyond the cursor are fetched."""
        found, max_end = [], 0
        prefix = f"{FLUSH_PREFIX}{collector_id}/"
        for info in self._objects.list(prefix):
            start, _, end = info.key.removeprefix(prefix).removesuffix(".pb").partition("-")
            try:
                wal_end = int(end, 16)
                int(start, 16)
            except ValueError:
                continue  # not a manifest key of ours
            max_end = max(max_end, wal_end)
            if wal_end <= after_lsn:
                continue
            try:
                found.append(_parsed(FlushManifest(), self._objects.get(info.key)))
            except FileNotFoundError:
                continue
        return found, max_end

    def own_legacy(self, collector_id: str) -> list[LegacyObject]:
        with self._lock:
            legacy = self._legacy
        return [o for o in legacy.objects if o.collector_id == collector_id] if legacy is not None else []

    # -- buckets written before manifests ---------------------------------------------------------

    def adopt_legacy(self) -> int:
        """Once per bucket: record every data object no manifest names yet (a bucket written by a
        version without manifests; none in a new bucket) so readers keep showing them. Returns how
        many this call adopted (0 when the bucket was adopted before, by this node or another)."""
        self.refresh()
        with self._lock:
            if self._legacy is not None:
                return 0
        adoption = LegacyAdoption(created_unix_ns=time.time_ns())
        for dataset in sorted(QUERY_DATASETS):
            adoption.objects.extend(self._legacy_objects(dataset))
        if not self._objects.put_new(LEGACY_KEY, adoption.SerializeToString()):
            self.refresh()  # another node adopted first: its record is the one
            return 0
        with self._lock:
            self._legacy = adoption
            self._snapshot = self._build()
        if adoption.objects:
            log.warning("adopted %d objects written before manifests (manifests/legacy.pb)", len(adoption.objects))
        return len(adoption.objects)

    def _legacy_objects(self, dataset: str) -> Iterable[LegacyObject]:
        for info in self._objects.list(dataset + "/"):
            parsed = partition_of_key(info.key)
            if parsed is None or not info.key.endswith(".parquet") or self.named(info.key):
                continue
            stored = StoredObject(key=info.key, dataset=parsed[0], project=parsed[1], date=parsed[2], bytes=info.size)
            legacy = LegacyObject(object=stored)
            wal_range, writer = wal_range_of(parsed[3]), part_suffix(parsed[3])
            if wal_range is not None and writer is not None and valid_collector_id(writer):
                legacy.collector_id = writer
                legacy.wal_start, legacy.wal_end = wal_range
            yield legacy


def _parsed(message: M, data: bytes) -> M:
    message.ParseFromString(data)
    return message
