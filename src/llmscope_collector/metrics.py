"""A server's Prometheus metrics, served on `/metrics` with prometheus-client.

Each server has its own `CollectorRegistry` (never the library's global one), so two servers in one
process (tests, embeddings) report their own counts. Each stage declares its metrics on the
registry it is handed (`receiver/stats.py`, `api/http_metrics.py`, the marked-span counter here);
figures another part already keeps (WAL lag, spans written, replay...) are read from it at scrape
time by `IngestStatusCollector` instead of being counted twice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Info
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from llmscope_collector.ingest_status import IngestStatus


class Metrics:
    """One server's registry plus the counters that belong to no single stage."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.spans_marked = Counter(
            "llmscope_ingest_spans_marked",
            "Spans stored with a limit or anomaly mark (llmscope.* attributes), by reason.",
            ("reason",),
            registry=self.registry,
        )
        self.decoder = Info(
            "llmscope_ingest_decoder",
            "The OTLP wire decoder this server runs: native (the C extension) or python (upb).",
            registry=self.registry,
        )

    def count_marks(self, marked: Mapping[str, int]) -> None:
        """Add the marks a decode (in a worker process or inline) counted for one batch."""
        for reason, count in marked.items():
            self.spans_marked.labels(reason).inc(count)

    def add_collector(self, collector: Collector) -> None:
        """Publish values read at scrape time."""
        self.registry.register(collector)

    def value(self, name: str, **labels: str) -> float:
        """A sample's current value (0 when it was never set), e.g. `llmscope_ingest_requests_total`."""
        return self.registry.get_sample_value(name, labels) or 0.0

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """(body, content type) in the format the scraper asked for: Prometheus text or OpenMetrics."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type


@dataclasses.dataclass(frozen=True)
class _Figure:
    """How one `IngestStatus` field is published."""

    name: str
    kind: str  # "counter" (since start) or "gauge" (now)
    help: str
    scale: float = 1.0


_FIGURES: dict[str, _Figure] = {
    "accepting": _Figure(
        "llmscope_ingest_accepting", "gauge", "1 while new data is accepted (WAL healthy, disk not low)."
    ),
    "wal_lag_bytes": _Figure("llmscope_wal_lag_bytes", "gauge", "Acknowledged (in the WAL) but not yet in Parquet."),
    "wal_lag_records": _Figure("llmscope_wal_lag_records", "gauge", "WAL records not yet in Parquet."),
    "wal_segments": _Figure("llmscope_wal_segments", "gauge", "WAL segment files on disk."),
    "wal_fsyncs": _Figure("llmscope_wal_fsyncs", "counter", "WAL syncs (one per group commit)."),
    "wal_last_fsync_ms": _Figure("llmscope_wal_last_fsync_seconds", "gauge", "Duration of the last WAL sync.", 1e-3),
    "wal_records_appended": _Figure("llmscope_wal_records_appended", "counter", "Export requests logged."),
    "wal_failed": _Figure("llmscope_wal_failed", "gauge", "1 after a WAL write/sync error (refusing until restart)."),
    "disk_low": _Figure("llmscope_disk_low", "gauge", "1 while the data disk is under min_free_disk_bytes."),
    "spans_buffered": _Figure("llmscope_storage_spans_buffered", "gauge", "Decoded spans waiting for a flush."),
    "spans_written": _Figure("llmscope_storage_spans_written", "counter", "Spans written to Parquet."),
    "files_written": _Figure("llmscope_storage_files_written", "counter", "Parquet files written by flushes."),
    "duplicates_dropped": _Figure("llmscope_storage_duplicates_dropped", "counter", "Resent spans stored once."),
    "replay_done": _Figure("llmscope_wal_replay_done", "gauge", "1 once the WAL replay at start has finished."),
    "replayed_records": _Figure("llmscope_wal_replayed_records", "counter", "WAL records replayed at start."),
    "replayed_spans": _Figure("llmscope_wal_replayed_spans", "counter", "Spans replayed at start."),
    "replay_skipped_spans": _Figure(
        "llmscope_wal_replay_skipped_spans", "counter", "Replayed spans already in Parquet (skipped)."
    ),
    "corrupt_bytes_truncated": _Figure(
        "llmscope_wal_corrupt_bytes_truncated", "counter", "Torn WAL tail bytes cut off at start."
    ),
    "corrupt_bytes_skipped": _Figure("llmscope_wal_corrupt_bytes_skipped", "counter", "Damaged WAL bytes skipped."),
    "quarantined_records": _Figure(
        "llmscope_wal_quarantined_records", "counter", "WAL records that could not be decoded (set aside)."
    ),
    "flush_failures": _Figure("llmscope_storage_flush_failures", "counter", "Parquet flushes that failed (retried)."),
    "compacted_files": _Figure("llmscope_storage_compacted_files", "counter", "Parquet files merged by compaction."),
    "compaction_duplicates_removed": _Figure(
        "llmscope_storage_compaction_duplicates_removed", "counter", "Duplicate spans removed by compaction."
    ),
    "retention_partitions_deleted": _Figure(
        "llmscope_storage_retention_partitions_deleted", "counter", "Date partitions deleted by retention."
    ),
}
if set(_FIGURES) != set(IngestStatus.__struct_fields__):  # /health and /metrics report the same figures
    raise RuntimeError(f"IngestStatus fields without a metric: {set(IngestStatus.__struct_fields__) ^ set(_FIGURES)}")


class IngestStatusCollector(Collector):
    """The durable-ingest figures of `/health` (`IngestStatus`), read when Prometheus scrapes."""

    def __init__(self, status: Callable[[], IngestStatus]) -> None:
        self._status = status

    def collect(self) -> Iterator[Metric]:
        status = self._status()
        for field, figure in _FIGURES.items():
            raw = getattr(status, field)
            value = float(raw is not None) if field == "wal_failed" else float(raw) * figure.scale
            family: Metric
            if figure.kind == "counter":
                family = CounterMetricFamily(figure.name, figure.help, value=value)
            else:
                family = GaugeMetricFamily(figure.name, figure.help, value=value)
            yield family

    def describe(self) -> Iterator[Metric]:
        """Names only (no scrape at registration: the collector may not be started yet)."""
        for figure in _FIGURES.values():
            kind = CounterMetricFamily if figure.kind == "counter" else GaugeMetricFamily
            yield kind(figure.name, figure.help)
