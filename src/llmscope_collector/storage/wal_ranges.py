"""Which WAL ranges are already stored in Parquet, per partition.

Each flush file records the WAL range `[start, end)` it holds (in its name and its key-value
metadata). After a crash between a file's rename and the cursor commit, replay consults this map
and skips the spans of a partition whose range already covers the record, so replay is exactly-once
even when the cursor is behind (or lost).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pyarrow.parquet as pq

from llmscope_collector.storage.batch import PartitionKey
from llmscope_collector.storage.layout import iter_partitions, parquet_files, wal_range_of

log = logging.getLogger(__name__)

META_WAL_START = b"llmscope.wal.start"
META_WAL_END = b"llmscope.wal.end"


@dataclasses.dataclass
class WalCoverage:
    """Stored WAL ranges newer than the cursor, by partition; empty once replay has passed them."""

    ranges: dict[PartitionKey, list[tuple[int, int]]] = dataclasses.field(default_factory=dict)
    max_end: int = 0
    everywhere: list[tuple[int, int]] = dataclasses.field(default_factory=list)
    """Ranges stored in full, every partition (a bucket's flush manifests: a flush commits whole)."""

    def contains(self, key: PartitionKey, lsn: int) -> bool:
        if any(start <= lsn < end for start, end in self.everywhere):
            return True
        return any(start <= lsn < end for start, end in self.ranges.get(key, ()))

    def __bool__(self) -> bool:
        return bool(self.ranges) or bool(self.everywhere)


def scan(data_dir: Path, committed_lsn: int) -> WalCoverage:
    """Ranges of flush files that end after `committed_lsn`, and the highest range end of any file."""
    coverage = WalCoverage()
    for partition in iter_partitions(data_dir):
        for path in parquet_files(partition.path):
            named = wal_range_of(path.name)
            if named is None:
                continue
            coverage.max_end = max(coverage.max_end, named[1])
            if named[1] > committed_lsn:
                stored = _metadata_range(path) or named
                key = (partition.project, partition.date)
                coverage.ranges.setdefault(key, []).append(stored)
    return coverage


def _metadata_range(path: Path) -> tuple[int, int] | None:
    """The range from the file's own metadata (authoritative), or None when it cannot be read."""
    try:
        meta = pq.read_metadata(path).metadata or {}
        return int(meta[META_WAL_START]), int(meta[META_WAL_END])
    except (OSError, KeyError, ValueError) as exc:
        log.warning("cannot read WAL range metadata of %s (%s); using its file name", path, exc)
        return None
