"""Cluster mode's storage (`--storage s3://bucket/prefix`): what a collector writes and what it queries.

A collector in cluster mode owns only its WAL volume: flush files go to the bucket as objects whose
keys end with the collector id (storage.tables.BucketTables), and queries read a local mirror of
the bucket (storage.mirror). The collector id is tied to the WAL, since WAL positions are what make
keys unique: when none is configured it is generated once and kept next to the WAL.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from llmscope_collector.durable_io import replace_durably
from llmscope_collector.settings import Settings
from llmscope_collector.storage.bucket_compaction import CursorBoard
from llmscope_collector.storage.layout import valid_collector_id
from llmscope_collector.storage.manifests import ManifestIndex
from llmscope_collector.storage.mirror import MIRROR_DIR, BucketMirror
from llmscope_collector.storage.objects import ObjectStore, StorageUrl
from llmscope_collector.storage.tables import BucketTables

COLLECTOR_ID_FILE = "collector-id"


class ClusterStorage:
    """The bucket's tables as this collector writes them, and the mirror its queries read."""

    def __init__(self, settings: Settings, objects: ObjectStore | None = None) -> None:
        self.objects = objects or ObjectStore(StorageUrl.parse(settings.storage))
        self.manifests = ManifestIndex(self.objects)  # the commit records: shared by writer, mirror, compactor
        self.tables = BucketTables(self.objects, settings.collector_id, self.manifests)
        self.mirror = BucketMirror(self.objects, query_dir(settings), self.manifests)
        self.cursors = CursorBoard(self.objects)  # this collector's committed WAL position, for compaction

    def open(self, wal_directory: Path) -> None:
        """Settle the collector id (configured, or the one kept in the WAL dir) before the first write,
        and adopt a bucket written before manifests (once per bucket: docs/scale.md)."""
        if not self.tables.collector_id:
            self.tables.collector_id = persistent_collector_id(wal_directory)
        self.manifests.adopt_legacy()


def query_dir(settings: Settings) -> Path:
    """Where the query layer reads datasets: the data dir, or in cluster mode the bucket's mirror in it."""
    return settings.data_dir / MIRROR_DIR if settings.storage else settings.data_dir


def persistent_collector_id(wal_directory: Path) -> str:
    """The id kept in `<wal dir>/collector-id`, created (random, durable) on first use."""
    path = wal_directory / COLLECTOR_ID_FILE
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    if valid_collector_id(existing):
        return existing
    created = secrets.token_hex(6)
    replace_durably(created.encode() + b"\n", path)
    return created
