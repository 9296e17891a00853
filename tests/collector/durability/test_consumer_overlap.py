"""The WAL consumer keeps several reads decoding while it buffers earlier ones: records still reach
the sink in WAL order, each flush covers exactly the records buffered before it, and the cursor
never passes a record that is still being decoded."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from llmscope_collector.wal.consumer import ConsumerOptions, WalConsumer
from llmscope_collector.wal.cursor import CommitCursor
from llmscope_collector.wal.log import WalOptions, WriteAheadLog
from llmscope_collector.wal.segment import WalRecord


class _Batch:
    def __init__(self, sink: _GatedSink, records: Sequence[WalRecord]) -> None:
        self.sink, self.records = sink, list(records)

    def ready(self) -> bool:
        return self.sink.open.is_set()

    def consume(self) -> list[int | BaseException]:
        self.sink.open.wait(30)
        self.sink.consumed.extend(r.lsn for r in self.records)
        self.sink.buffered += len(self.records)
        return [1] * len(self.records)


class _GatedSink:
    """Batches are 'decoding' until `open` is set, like a worker pool that has not answered yet."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.submitted: list[int] = []
        self.reads = 0
        self.consumed: list[int] = []
        self.flushes: list[tuple[int, int, list[int]]] = []
        self.buffered = 0

    def submit(self, records: Sequence[WalRecord]) -> _Batch:
        self.submitted.extend(r.lsn for r in records)
        self.reads += 1
        return _Batch(self, records)

    def flush(self, wal_start: int, wal_end: int) -> int:
        written, self.buffered = self.buffered, 0
        self.flushes.append((wal_start, wal_end, list(self.consumed)))
        return written

    @property
    def buffered_rows(self) -> int:
        return self.buffered


def test_reads_decode_ahead_but_are_buffered_flushed_and_committed_in_order(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, WalOptions(fsync=False))
    cursor = CommitCursor(tmp_path)
    sink = _GatedSink()
    options = ConsumerOptions(flush_rows=1_000_000, flush_interval_s=0.05, max_read_bytes=200, reads_in_flight=3)
    consumer = WalConsumer(wal, cursor, sink, options)
    try:
        lsns = [wal.append("p", bytes([n]) * 150) for n in range(12)]
        consumer.start()
        deadline = threading.Event()
        while sink.reads < 3 and not deadline.wait(0.01):
            pass
        deadline.wait(0.3)  # several flush intervals pass while the batches are still decoding
        assert sink.consumed == [] and cursor.lsn == 0  # nothing committed past an undecoded record
        assert sink.reads == 3 and sink.submitted == lsns[: len(sink.submitted)] != lsns  # reads_in_flight ahead
        sink.open.set()
        assert consumer.flush(timeout=30)
        assert sink.consumed == lsns  # WAL order
        covered = [lsn for start, end, _ in sink.flushes for lsn in lsns if start <= lsn < end]
        assert covered == lsns  # every record in exactly one flush range, ranges in order
        before: list[int] = []
        for start, end, consumed in sink.flushes:  # each range is exactly what was buffered since the last flush
            assert consumed[len(before) :] == [lsn for lsn in lsns if start <= lsn < end]
            before = consumed
        assert cursor.lsn == wal.durable_lsn
    finally:
        sink.open.set()
        consumer.stop()
        wal.close()
