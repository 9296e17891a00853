"""`IngestStatus`: how far durable ingest is behind and what it had to repair, for `/health`."""

from __future__ import annotations

import msgspec


class IngestStatus(msgspec.Struct, kw_only=True):
    """Counters since this process started, plus the current WAL lag.

    `wal_lag_*` is what has been acknowledged (fsynced to the WAL) but is not yet in Parquet.
    """

    accepting: bool = False
    wal_lag_bytes: int = 0
    wal_lag_records: int = 0
    wal_segments: int = 0
    wal_fsyncs: int = 0
    wal_last_fsync_ms: float = 0.0
    wal_records_appended: int = 0
    wal_failed: str | None = None
    disk_low: bool = False
    spans_buffered: int = 0
    spans_written: int = 0
    files_written: int = 0
    duplicates_dropped: int = 0
    replay_done: bool = True
    replayed_records: int = 0
    replayed_spans: int = 0
    replay_skipped_spans: int = 0
    corrupt_bytes_truncated: int = 0
    corrupt_bytes_skipped: int = 0
    quarantined_records: int = 0
    flush_failures: int = 0
    compacted_files: int = 0
    compaction_duplicates_removed: int = 0
    retention_partitions_deleted: int = 0

    @property
    def healthy(self) -> bool:
        return self.wal_failed is None and not self.disk_low


class IngestNotSettled(Exception):
    """A deletion cannot start now: what was accepted could not all be brought into storage first
    (`Collector.settle`); the API answers 503 and the caller retries."""
