"""A local, read-only mirror of the bucket's query datasets: how DuckDB reads object storage here.

DuckDB reads S3 through its `httpfs` extension, which cannot be installed in this project's
environments (it is downloaded at run time, and the `duckdb-ext-httpfs` wheel lags DuckDB). Every
object is immutable (a new key per flush; removals only by lifecycle rules and compaction), so a
replica reads the manifests (storage.manifests: which objects are committed and not replaced by a
compaction), lists the datasets (which of those still exist), fetches the objects it does not have
into `<data_dir>/bucket/<key>` (the same layout as a data dir), checking each against its manifest's
size and SHA-256, and drops the files no longer shown; the query layer then runs unchanged over that
directory and every replica that has synced returns what a single node would. An object no
manifest names (a flush or compaction a crash interrupted) is never fetched.

The cost is a full listing per sync (one LIST request per 1,000 objects) and a local copy of the
datasets; docs/scale.md gives the figures and why the next step is ClickHouse reading the bucket.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from llmscope_collector.file_modes import PRIVATE_FILE, make_private_dir
from llmscope_collector.storage.layout import QUERY_DATASETS, iter_partitions, parquet_files
from llmscope_collector.storage.manifests import ManifestIndex, StoredObject
from llmscope_collector.storage.objects import ObjectStore

log = logging.getLogger(__name__)

MIRROR_DIR = "bucket"
DELETIONS_DIR = "deletions"
"""Under the mirror's root: a copy of each session deletion's manifest (`<id>.pb`), for the ClickHouse
engine reading the mirror (query.clickhouse.loader), written after the objects it replaced were removed."""
_FETCH_WORKERS = 4


@dataclasses.dataclass
class SyncReport:
    objects: int = 0  # query-dataset objects shown (committed, not replaced, present)
    fetched: int = 0
    fetched_bytes: int = 0
    removed: int = 0
    refused: int = 0  # fetched copies whose size or digest differed from their manifest


class BucketMirror:
    """Keeps `root` equal to the bucket's query datasets (thread-safe; one sync at a time)."""

    def __init__(self, objects: ObjectStore, root: Path, manifests: ManifestIndex | None = None) -> None:
        self._objects = objects
        self.manifests = manifests or ManifestIndex(objects)
        self.root = root
        self._lock = threading.Lock()
        self.syncs = 0
        self.last = SyncReport()
        self.listed: frozenset[str] = frozenset()  # every data object key of the last sync's listing

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """No sync meanwhile: `manifests` and `listed` stay those of one sync (compaction's clean-up)."""
        with self._lock:
            yield

    def sync(self) -> SyncReport:
        """Fetch new objects and drop local files whose objects are gone; returns what changed."""
        with self._lock:
            report = self._sync()
            self.syncs += 1
            self.last = report
            return report

    def _sync(self) -> SyncReport:
        report = SyncReport()
        self.manifests.refresh()
        shown = self.manifests.shown()
        wanted: dict[Path, StoredObject] = {}
        listed: set[str] = set()
        for dataset in sorted(QUERY_DATASETS):
            for info in self._objects.list(dataset + "/"):
                listed.add(info.key)
                stored = shown.get(info.key)
                if stored is not None:
                    wanted[self.root / info.key] = stored
        self.listed = frozenset(listed)
        report.objects = len(wanted)
        missing = [(path, stored) for path, stored in wanted.items() if not _has(path, stored.bytes)]
        if missing:
            with ThreadPoolExecutor(min(_FETCH_WORKERS, len(missing)), thread_name_prefix="llmscope-mirror") as pool:
                for size in pool.map(lambda item: self._fetch(*item), missing):
                    if size is None:
                        report.refused += 1
                        continue
                    report.fetched += 1
                    report.fetched_bytes += size
        for dataset in QUERY_DATASETS:
            for partition in iter_partitions(self.root, dataset):
                for path in parquet_files(partition.path):
                    if path not in wanted:
                        path.unlink(missing_ok=True)
                        report.removed += 1
        self._copy_deletions()
        return report

    def _copy_deletions(self) -> None:
        deletions = self.manifests.deletions()
        if not deletions:
            return
        directory = self.root / DELETIONS_DIR
        make_private_dir(directory)
        for deletion_id, manifest in deletions.items():
            path = directory / f"{deletion_id}.pb"
            if not path.exists():
                tmp = path.with_name(f".{path.name}.tmp")
                tmp.write_bytes(manifest.SerializeToString())
                os.replace(tmp, path)

    def _fetch(self, path: Path, stored: StoredObject) -> int | None:
        """Write the object to a hidden temp name, then rename: a query never globs a partial file.
        None (and nothing written) when its bytes are not the ones its manifest describes."""
        try:
            data = self._objects.get(stored.key)
        except FileNotFoundError:
            return None  # removed since the listing (compaction, lifecycle)
        digest = hashlib.sha256(data).digest()
        if len(data) != stored.bytes or (stored.sha256 and digest != stored.sha256):
            log.error("object %s does not match its manifest (size or SHA-256); not shown", stored.key)
            return None
        make_private_dir(path.parent)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE), "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
        return len(data)


def _has(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
    except FileNotFoundError:
        return False
