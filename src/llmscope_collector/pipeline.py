"""The one place the collector's stages are wired: receiver → WAL → decode → Parquet writer.

Start order is storage first (finish interrupted compactions, open the WAL, start replaying),
receivers last; stop order is the reverse: stop accepting, drain in-flight exports (each waits for
its WAL fsync), consume the WAL to its end, flush Parquet, commit the cursor, close the WAL.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from llmscope_collector.alerts.service import AlertService
from llmscope_collector.control.cluster import SharedControl
from llmscope_collector.data_dir_lock import DataDirLock
from llmscope_collector.file_modes import make_private, make_private_dir
from llmscope_collector.ingest_status import IngestNotSettled, IngestStatus
from llmscope_collector.metrics import IngestStatusCollector, Metrics
from llmscope_collector.process_memory import release_free_memory
from llmscope_collector.processors import native as native_decoder
from llmscope_collector.processors.decode import DecodedBatch
from llmscope_collector.processors.decode_pool import DecodePool, PendingDecode
from llmscope_collector.processors.native import UNAVAILABLE, decoder_name
from llmscope_collector.processors.stitch import Stitcher, removal_deltas
from llmscope_collector.receiver._export import TraceExporter
from llmscope_collector.receiver.front import OtlpReceivers
from llmscope_collector.receiver.otlp_json import json_to_protobuf
from llmscope_collector.runtime import Runtime
from llmscope_collector.settings import Settings
from llmscope_collector.storage import compaction, retention
from llmscope_collector.storage.bucket_compaction import BucketCompactor
from llmscope_collector.storage.bucket_deletion import BucketDeletions, FlushCheck, TombstoneFilter
from llmscope_collector.storage.cluster import ClusterStorage, query_dir
from llmscope_collector.storage.dedupe import RecentSpanIds, seed_from_files
from llmscope_collector.storage.layout import iter_partitions, wal_dir
from llmscope_collector.storage.maintenance import MaintenanceScheduler, Task
from llmscope_collector.storage.parquet_writer import ParquetSpanWriter, SealedFlush, remove_stale_temp_files
from llmscope_collector.storage.tables import LocalTables, TableSink
from llmscope_collector.storage.wal_ranges import WalCoverage
from llmscope_collector.storage.wal_ranges import scan as scan_wal_ranges
from llmscope_collector.wal.consumer import ConsumerOptions, WalConsumer
from llmscope_collector.wal.cursor import CommitCursor
from llmscope_collector.wal.errors import WalError
from llmscope_collector.wal.log import WalOptions, WriteAheadLog
from llmscope_collector.wal.segment import WalRecord

if TYPE_CHECKING:
    from llmscope_collector.query.backend import QueryBackend

log = logging.getLogger(__name__)

# At most one heap trim (process_memory.release_free_memory) per this many seconds of flushes: a trim
# that returns ~90 MB costs ~40 ms, and the pages it returns are faulted in again under sustained load.
_TRIM_INTERVAL_S = 10.0


class DecodeIntoParquet:
    """The WAL consumer's sink: raw OTLP bytes → Arrow tables (worker processes) → Parquet writer."""

    def __init__(
        self,
        writer: ParquetSpanWriter,
        pool: DecodePool,
        metrics: Metrics | None = None,
        admit: Callable[[DecodedBatch], DecodedBatch] | None = None,
    ) -> None:
        """`admit`: what of each decoded batch is stored (cluster mode: without deleted sessions' rows)."""
        self._writer = writer
        self._pool = pool
        self._metrics = metrics or Metrics()
        self._admit = admit
        self._trimmed_at = time.monotonic()

    def submit(self, records: Sequence[WalRecord]) -> _Decoding:
        pending = self._pool.submit([(r.project, r.payload) for r in records])
        return _Decoding(self._writer, records, pending, self._metrics, self._admit)

    def consume(self, records: Sequence[WalRecord]) -> list[int | BaseException]:
        """Decode and buffer `records` now (what the consumer does in two steps)."""
        return self.submit(records).consume()

    def seal(self) -> _SealedWrite:
        """What is buffered now, as one flush (written by the consumer's flush thread)."""
        return _SealedWrite(self, self._writer.seal())

    def write(self, sealed: SealedFlush, wal_start: int, wal_end: int) -> int:
        written = self._writer.write(sealed, wal_start, wal_end)
        if time.monotonic() - self._trimmed_at >= _TRIM_INTERVAL_S:
            release_free_memory()  # flushes freed their spans' Arrow tables: give the pages back
            self._trimmed_at = time.monotonic()
        return written

    @property
    def buffered_rows(self) -> int:
        return self._writer.buffered_rows

    @property
    def buffered_bytes(self) -> int:
        return self._writer.buffered_bytes


@dataclasses.dataclass(frozen=True)
class _SealedWrite:
    """A sealed flush of the writer, as the consumer's `SealedRecords`."""

    sink: DecodeIntoParquet
    sealed: SealedFlush

    def write(self, wal_start: int, wal_end: int) -> int:
        return self.sink.write(self.sealed, wal_start, wal_end)


class _Decoding:
    """One WAL read being decoded; `consume` buffers its spans in the writer, in record order."""

    def __init__(
        self,
        writer: ParquetSpanWriter,
        records: Sequence[WalRecord],
        pending: PendingDecode,
        metrics: Metrics,
        admit: Callable[[DecodedBatch], DecodedBatch] | None = None,
    ) -> None:
        self._writer = writer
        self._records = records
        self._pending = pending
        self._metrics = metrics
        self._admit = admit

    def ready(self) -> bool:
        return self._pending.ready()

    def consume(self) -> list[int | BaseException]:
        decoded = self._pending.results()
        return [
            outcome if isinstance(outcome, BaseException) else self._add(outcome, record.lsn)
            for record, outcome in zip(self._records, decoded, strict=True)
        ]

    def _add(self, batch: DecodedBatch, lsn: int) -> int | BaseException:
        try:
            added = self._writer.add(self._admit(batch) if self._admit is not None else batch, lsn)
        except Exception as exc:  # a bug in buffering one batch must not stop the others
            return exc
        self._metrics.count_marks(batch.marked)  # counted where it was decoded (often a worker), added here
        return added


@dataclasses.dataclass
class _Durable:
    """The parts that exist only while the collector runs (they own files under the data dir)."""

    wal: WriteAheadLog
    consumer: WalConsumer
    maintenance: MaintenanceScheduler
    decode_pool: DecodePool


class Collector:
    """OTLP ingest into the Parquet store under `settings.data_dir`, through the write-ahead log."""

    def __init__(self, settings: Settings, engine: QueryBackend | None = None) -> None:
        """`engine`: the query engine the API reads, which the alert rules read too (default: DuckDB over the files)."""
        self.settings = settings
        # This server's limits and metrics, handed to every stage below (nothing is process-wide).
        self.runtime = Runtime.for_settings(settings)
        self.recent = RecentSpanIds(settings.dedupe_window_spans)
        # Cluster mode (`storage = s3://...`): files go to the bucket, queries read its local mirror.
        self.cluster = ClusterStorage(settings) if settings.storage else None
        # ... and projects, keys, alert rules and states are shared through it (control.cluster).
        self.control = SharedControl(self.cluster.objects, settings) if self.cluster else None
        tables: TableSink = self.cluster.tables if self.cluster else LocalTables(settings.data_dir)
        self.stitcher = Stitcher(settings.data_dir, tables=tables)
        self.writer = ParquetSpanWriter(settings.data_dir, self.recent, hook=self.stitcher, tables=tables)
        # The receivers check requests on this process: natively (GIL released) when the decoder is native.
        native_check = decoder_name(settings.decode_native) == "native"
        self.exporter = TraceExporter(check=native_decoder.check_ids if native_check else None)
        prices_file = str(settings.prices_file) if settings.prices_file else None
        # Worker processes for the per-span Python work: WAL decoding, and OTLP/JSON conversion for the receiver.
        self.decode_pool = DecodePool(settings.decode_workers, prices_file, self.runtime.limits, settings.decode_native)
        self._announce_decoder(settings.decode_native)
        self.receivers = OtlpReceivers(  # OTLP/gRPC + OTLP/HTTP, auth, rate limits
            self.exporter,
            self.runtime,
            json_converter=self._json_to_protobuf,
            auth_store=self.control.auth if self.control else None,
        )
        # Rule evaluation over stored spans + notifications (in cluster mode under a lease).
        self.alerts = AlertService.from_settings(
            settings, shared=self.control.alerts if self.control else None, engine=engine
        )
        options = compaction.CompactionOptions(
            target_rows=settings.compaction_target_rows, target_bytes=settings.compaction_target_bytes
        )
        self.compactor: compaction.Compactor
        if self.cluster is not None and self.control is not None:  # the lease holder merges bucket objects
            self.compactor = BucketCompactor(
                self.cluster.objects,
                self.cluster.mirror,
                options,
                may_run=self.control.compaction_lease.held,
                removal_deltas=removal_deltas,  # a duplicate span left out: its summary delta cancelled
                node=self.control.node,
            )
        else:
            self.compactor = compaction.Compactor(
                settings.data_dir, options, committed_lsn=self._committed_lsn, removal_deltas=removal_deltas
            )
        # Cluster mode's session deletion (storage.bucket_deletion): tombstones every flush honours, executed
        # by the compaction lease holder on the maintenance thread (never beside a compaction).
        self.deletions: BucketDeletions | None = None
        self.tombstones: TombstoneFilter | None = None
        self.flush_check: FlushCheck | None = None
        if self.cluster is not None and self.control is not None:
            self.deletions = BucketDeletions(
                self.cluster.objects,
                self.cluster.mirror,
                node=self.control.node,
                may_run=self.control.compaction_lease.held,
            )
            self.tombstones = TombstoneFilter(self.cluster.manifests)
            self.flush_check = FlushCheck(self.deletions, self.cluster.manifests, self.tombstones)
            self.cluster.tables.after_commit = self.flush_check.after_flush
        self._sealed_generation = 0  # tombstones this collector settled its WAL for (`_sync_and_seal`)
        self._content_forgotten: set[str] = set()  # deletions whose removed content the writer forgot
        self.retention = retention.RetentionPolicy.parse(settings.retention_days, settings.retention_project_days)
        self.retention_deleted = 0
        self._lock = DataDirLock(settings.data_dir)
        self._durable: _Durable | None = None
        self._started = False
        self.runtime.metrics.add_collector(IngestStatusCollector(self.ingest_status))  # read at scrape time

    def _announce_decoder(self, native: bool) -> None:
        """Say which OTLP decoder runs, in the log and as `llmscope_ingest_decoder_info` on /metrics."""
        decoder = decoder_name(native)
        self.runtime.metrics.decoder.info({"decoder": decoder})
        if decoder == "native":
            log.info("OTLP decoder: native (C extension)")
        elif native:
            log.warning("OTLP decoder: pure Python, as %s (same results, more CPU per span)", UNAVAILABLE)
        else:
            log.info("OTLP decoder: pure Python (LLMSCOPE_DECODE_NATIVE=false)")

    def _json_to_protobuf(self, body: bytes) -> bytes:
        return self.decode_pool.offload(len(body), json_to_protobuf, body)

    @property
    def grpc_port(self) -> int:
        return self.receivers.grpc_port

    @property
    def http_port(self) -> int:
        return self.receivers.http_port

    def start(self) -> None:
        self._lock.acquire()
        try:
            self._durable = self._open_storage()
            self.exporter.open(self._durable.wal)
            self.receivers.start()
        except BaseException:
            self._close_storage()
            self._lock.release()
            raise
        self._durable.maintenance.start()
        if self.control is not None:
            self.control.start()
        self.alerts.start()
        self._started = True

    def _open_storage(self) -> _Durable:
        data_dir = self.settings.data_dir
        make_private_dir(data_dir)
        make_private(data_dir)  # prompts and answers live here: owner only, whatever made the directory
        compaction.recover(data_dir)
        remove_stale_temp_files([p.path for p in iter_partitions(data_dir, None)])  # every dataset
        directory = wal_dir(data_dir, self.settings.wal_dir)
        make_private_dir(directory)
        cursor = CommitCursor(directory)
        stored = self._stored_ranges(directory, cursor.lsn)
        self.writer.skip_stored(stored)
        self.sync_bucket()  # cluster mode: the window is seeded from what any collector stored, up to now
        seed_from_files(self.recent, query_dir(self.settings))
        wal = WriteAheadLog(directory, self._wal_options(), committed_lsn=cursor.lsn, floor_lsn=stored.max_end)
        s = self.settings
        options = ConsumerOptions(
            flush_rows=s.flush_rows, flush_bytes=s.flush_bytes, flush_interval_s=s.flush_interval_s
        )
        admit = self.tombstones.apply if self.tombstones is not None else None
        consumer = WalConsumer(
            wal, cursor, DecodeIntoParquet(self.writer, self.decode_pool, self.runtime.metrics, admit), options
        )
        consumer.start()
        return _Durable(wal, consumer, MaintenanceScheduler(self._maintenance_tasks()), self.decode_pool)

    def _stored_ranges(self, directory: Path, committed_lsn: int) -> WalCoverage:
        """The WAL ranges already in flush files (on disk, or this collector's objects in the bucket)."""
        if self.cluster is None:
            return scan_wal_ranges(self.settings.data_dir, committed_lsn)
        self.cluster.open(directory)
        coverage = self.cluster.tables.coverage(committed_lsn)
        # The WAL floor also stays above the position this id published (its manifests below it may
        # have been cleaned up by compaction): no key is ever reused, even with the WAL dir lost.
        published = self.cluster.cursors.published(self.cluster.tables.collector_id)
        coverage.max_end = max(coverage.max_end, published)
        if self.flush_check is not None:  # flushes whose tombstone check a crash may have cut off
            beyond, _ = self.cluster.manifests.own_flushes(self.cluster.tables.collector_id, committed_lsn)
            self.flush_check.at_start([stored for manifest in beyond for stored in manifest.objects])
        return coverage

    def _maintenance_tasks(self) -> list[Task]:
        """Compaction and retention on a data dir. In cluster mode: the mirror's refresh, this
        collector's WAL position for the compactor, and compaction while this node holds the lease
        (retention is the bucket's lifecycle rules: docs/scale.md)."""
        s = self.settings
        if self.cluster is not None:
            return [
                Task("bucket-sync", s.bucket_sync_interval_s, lambda _stop: self._sync_and_seal()),
                Task("publish-cursor", s.bucket_sync_interval_s, lambda _stop: self._publish_cursor()),
                Task("compaction", s.compaction_interval_s, self.compactor.run_once),
                *([Task("deletions", s.bucket_sync_interval_s, self.deletions.run_pending)] if self.deletions else []),
            ]
        return [
            Task("compaction", s.compaction_interval_s, self.compactor.run_once),
            Task("retention", s.retention_interval_s, self._apply_retention),
        ]

    def _publish_cursor(self) -> None:
        """Cluster mode: tell the compactor which of this collector's objects recovery no longer needs."""
        if self.cluster is not None and self.cluster.tables.collector_id:
            self.cluster.cursors.publish(self.cluster.tables.collector_id, self._committed_lsn())

    def sync_bucket(self) -> None:
        """Cluster mode: bring the query mirror up to date with the bucket (a no-op on a data dir)."""
        if self.cluster is not None:
            self.cluster.mirror.sync()
            self._forget_deleted_content()

    def _forget_deleted_content(self) -> None:
        """Cluster mode: the content items the sessions deleted since the last sync removed (their deletion
        manifests, executed by the lease holder) are no longer "stored recently" for this collector's
        writer, so a later span sending the same message stores it again (as over a data dir, where the
        deletion runs beside the writer: `query.deletion`). The replica that got the DELETE does it before
        answering (`query.deletion.delete_from_bucket` syncs); the others at their next bucket sync. A
        flush another replica made while the lease holder looked for orphans can still have skipped an
        item the deletion then removed (docs/scale.md)."""
        assert self.cluster is not None
        deletions = self.cluster.manifests.deletions()
        new = [d for deletion_id, d in deletions.items() if deletion_id not in self._content_forgotten]
        if not any(d.removed_content for d in new):
            self._content_forgotten.update(deletions)
            return
        with self.writer.content_removal() as forget:
            for deletion in new:
                for removed in deletion.removed_content:
                    forget(removed.project, removed.date, set(removed.hashes))
        self._content_forgotten.update(deletions)

    def _sync_and_seal(self) -> None:
        """The mirror's refresh; when it brought a new session tombstone, this collector settles its WAL
        (as the replica that got the DELETE did): the records it holds are flushed, the session's rows
        dropped from them, and the segments deleted, so no raw copy of the session waits in this WAL
        for its segment to fill up. Retried at the next sync while ingest cannot catch up."""
        self.sync_bucket()
        if self.tombstones is None:
            return
        self.tombstones.learn()
        generation = self.tombstones.generation()
        if generation == self._sealed_generation:
            return
        try:
            self.settle()
        except IngestNotSettled as exc:
            log.warning("a session was deleted; this collector's WAL is settled at the next sync (%s)", exc)
            return
        self._sealed_generation = generation

    def _wal_options(self) -> WalOptions:
        s = self.settings
        return WalOptions(
            segment_bytes=s.wal_segment_bytes,
            fsync=s.wal_fsync,
            max_lag_bytes=s.wal_max_lag_bytes,
            min_free_disk_bytes=s.min_free_disk_bytes,
        )

    def _committed_lsn(self) -> int:
        return self._durable.consumer.committed_lsn if self._durable else 0

    def _apply_retention(self, _stop: threading.Event) -> retention.CleanupReport:
        return self.cleanup(dry_run=False)

    def cleanup(self, *, dry_run: bool) -> retention.CleanupReport:
        """Apply (or, dry, only measure) the retention policy now; the scheduled run calls this too.
        A real run first settles the WAL, so no expired span outlives its partition there."""
        if not dry_run:
            self.settle()
        report = retention.cleanup(self.settings.data_dir, self.retention, dry_run=dry_run)
        if not dry_run:
            self.retention_deleted += report.partitions
        return report

    def retention_stats(self) -> retention.RetentionStats:
        return retention.stats(self.settings.data_dir, self.retention)

    def flush(self, timeout: float = 30.0) -> int:
        """Make everything acknowledged so far queryable; returns the spans written meanwhile."""
        before = self.writer.rows_written
        if self._durable is not None and not self._durable.consumer.flush(timeout):
            log.warning("flush: the WAL consumer did not catch up within %.0fs", timeout)
        self.sync_bucket()
        return self.writer.rows_written - before

    def settle(self, timeout: float = 30.0) -> None:
        """Before data is deleted: seal the active WAL segment, write everything acknowledged so far
        to Parquet, and delete the WAL segments that held it. The deletion that follows then finds
        every copy in Parquet, and leaves none in the WAL (records are otherwise kept until their
        64 MiB segment fills up). Raises `IngestNotSettled` when that cannot be done now."""
        durable = self._durable
        if durable is None:
            return
        try:
            durable.wal.seal_active(timeout)
        except WalError as exc:
            raise IngestNotSettled(f"the write-ahead log cannot be sealed now: {exc}") from None
        if not durable.consumer.flush(timeout):
            raise IngestNotSettled("ingest is behind: what was accepted is not all in storage yet; retry later")
        durable.wal.release(durable.consumer.committed_lsn, 0)

    def ingest_status(self) -> IngestStatus:
        """WAL lag and durability counters for `/health`."""
        durable = self._durable
        if durable is None:
            return IngestStatus()
        wal = durable.wal.stats()
        consumer = durable.consumer.stats
        return IngestStatus(
            accepting=self._started and wal.failed is None and not wal.disk_low,
            wal_lag_bytes=wal.lag_bytes,
            wal_lag_records=wal.lag_records,
            wal_segments=wal.segments,
            wal_fsyncs=wal.fsyncs,
            wal_last_fsync_ms=wal.last_fsync_ms,
            wal_records_appended=wal.records_appended,
            wal_failed=wal.failed,
            disk_low=wal.disk_low,
            spans_buffered=self.writer.buffered_rows,
            spans_written=self.writer.rows_written,
            files_written=self.writer.files_written,
            duplicates_dropped=self.writer.duplicates_dropped,
            replay_done=consumer.replay_done,
            replayed_records=consumer.replayed_records,
            replayed_spans=consumer.replayed_spans,
            replay_skipped_spans=self.writer.replay_skipped,
            corrupt_bytes_truncated=wal.corrupt_bytes_truncated,
            corrupt_bytes_skipped=wal.corrupt_bytes_skipped,
            quarantined_records=consumer.quarantined,
            flush_failures=consumer.flush_failures,
            compacted_files=self.compactor.totals.files_in,
            compaction_duplicates_removed=self.compactor.totals.duplicates_removed,
            retention_partitions_deleted=self.retention_deleted,
        )

    def stop(self) -> None:
        """Stop accepting, drain in-flight exports, consume the WAL, flush Parquet, commit, close."""
        self.alerts.stop()
        if self.control is not None:
            self.control.stop()
        if not self._started:
            return
        self._started = False
        durable = self._durable
        assert durable is not None
        durable.maintenance.request_stop()
        self.exporter.close()
        self.receivers.stop()
        self._close_storage()
        self._lock.release()
        log.info("collector stopped: %d spans written", self.writer.rows_written)

    def _close_storage(self) -> None:
        durable, self._durable = self._durable, None
        if durable is None:
            return
        durable.maintenance.request_stop()
        durable.wal.stop_appends()
        durable.consumer.stop()
        durable.decode_pool.close()
        durable.wal.close()
        durable.maintenance.stop()
