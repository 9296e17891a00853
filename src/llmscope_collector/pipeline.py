"""The one place the collector's stages are wired: receiver → decode → Parquet writer.

Start order is storage first, receiver last; stop order is the reverse, so no accepted span is
left behind in a buffer when the process exits.
"""

from __future__ import annotations

import logging

from llmscope_collector.receiver._export import TraceExporter
from llmscope_collector.receiver.grpc import OtlpGrpcReceiver
from llmscope_collector.settings import Settings
from llmscope_collector.storage.parquet_writer import ParquetSpanWriter

log = logging.getLogger(__name__)


class Collector:
    """OTLP ingest into the Parquet store under `settings.data_dir`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.writer = ParquetSpanWriter(
            settings.data_dir, flush_rows=settings.flush_rows, flush_interval_s=settings.flush_interval_s
        )
        self.exporter = TraceExporter(self.writer)
        self.grpc = OtlpGrpcReceiver(
            self.exporter,
            host=settings.host,
            port=settings.otlp_grpc_port,
            max_receive_bytes=settings.grpc_max_receive_bytes,
            workers=settings.grpc_workers,
        )
        self._started = False

    @property
    def grpc_port(self) -> int:
        return self.grpc.port

    def start(self) -> None:
        self.writer.start()
        try:
            self.grpc.start()
        except BaseException:
            self.writer.close()
            raise
        self._started = True

    def flush(self) -> int:
        """Make everything accepted so far queryable."""
        return self.writer.flush()

    def stop(self) -> None:
        """Stop accepting, drain in-flight exports, write what is buffered."""
        if not self._started:
            return
        self._started = False
        self.exporter.close()
        self.grpc.stop()
        self.writer.close()
        log.info("collector stopped: %d spans written", self.writer.rows_written)
