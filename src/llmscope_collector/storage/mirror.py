"""A local, read-only mirror of the bucket's query datasets: how DuckDB reads object storage here.

DuckDB reads S3 through its `httpfs` extension, which cannot be installed in this project's
environments (it is downloaded at run time, and the `duckdb-ext-httpfs` wheel lags DuckDB). Every
object is immutable (a new key per flush; removals only by lifecycle rules and compaction), so a
replica lists the bucket, fetches the objects it does not have into `<data_dir>/bucket/<key>` (the same layout as a
data dir) and drops the files whose objects are gone; the query layer then runs unchanged over that
directory and every replica that has synced returns what a single node would.

The cost is a full listing per sync (one LIST request per 1,000 objects) and a local copy of the
datasets; docs/scale.md gives the figures and why the next step is ClickHouse reading the bucket.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from llmscope_collector.file_modes import PRIVATE_FILE, make_private_dir
from llmscope_collector.storage.layout import QUERY_DATASETS, iter_partitions, parquet_files, partition_of_key
from llmscope_collector.storage.objects import ObjectStore

log = logging.getLogger(__name__)

MIRROR_DIR = "bucket"
_FETCH_WORKERS = 4


@dataclasses.dataclass
class SyncReport:
    objects: int = 0  # query-dataset objects listed in the bucket
    fetched: int = 0
    fetched_bytes: int = 0
    removed: int = 0


class BucketMirror:
    """Keeps `root` equal to the bucket's query datasets (thread-safe; one sync at a time)."""

    def __init__(self, objects: ObjectStore, root: Path) -> None:
        self._objects = objects
        self.root = root
        self._lock = threading.Lock()
        self.syncs = 0
        self.last = SyncReport()

    def sync(self) -> SyncReport:
        """Fetch new objects and drop local files whose objects are gone; returns what changed."""
        with self._lock:
            report = self._sync()
            self.syncs += 1
            self.last = report
            return report

    def _sync(self) -> SyncReport:
        report = SyncReport()
        wanted: dict[Path, tuple[str, int]] = {}
        for dataset in sorted(QUERY_DATASETS):
            for info in self._objects.list(dataset + "/"):
                if partition_of_key(info.key) is not None and info.key.endswith(".parquet"):
                    wanted[self.root / info.key] = (info.key, info.size)
        report.objects = len(wanted)
        missing = [(path, key) for path, (key, size) in wanted.items() if not _has(path, size)]
        if missing:
            with ThreadPoolExecutor(min(_FETCH_WORKERS, len(missing)), thread_name_prefix="llmscope-mirror") as pool:
                for size in pool.map(lambda item: self._fetch(*item), missing):
                    report.fetched += 1
                    report.fetched_bytes += size
        for dataset in QUERY_DATASETS:
            for partition in iter_partitions(self.root, dataset):
                for path in parquet_files(partition.path):
                    if path not in wanted:
                        path.unlink(missing_ok=True)
                        report.removed += 1
        return report

    def _fetch(self, path: Path, key: str) -> int:
        """Write the object to a hidden temp name, then rename: a query never globs a partial file."""
        data = self._objects.get(key)
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
