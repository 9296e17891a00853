"""The WAL consumer keeps several reads decoding while it buffers earlier ones: records still reach
the sink in WAL order, each flush covers exactly the records buffered before it, and the cursor
never passes a record that is still being decoded."""

from __future__ import annotations

import pickle
import threading
import time
from collections.abc import Sequence
from multiprocessing.reduction import ForkingPickler
from pathlib import Path

from llmscope_collector.pipeline import DecodeIntoParquet
from llmscope_collector.processors.decode import decode_bytes
from llmscope_collector.processors.decode_pool import DecodePool
from llmscope_collector.storage.batch import DecodedList
from llmscope_collector.storage.dedupe import RecentSpanIds
from llmscope_collector.storage.parquet_writer import ParquetSpanWriter
from llmscope_collector.wal.consumer import ConsumerOptions, WalConsumer
from llmscope_collector.wal.cursor import CommitCursor
from llmscope_collector.wal.log import WalOptions, WriteAheadLog
from llmscope_collector.wal.segment import WalRecord
from tests.collector.durability.helpers import payload, stored_counts


class _Batch:
    def __init__(self, sink: _GatedSink, records: Sequence[WalRecord]) -> None:
        self.sink, self.records = sink, list(records)

    def ready(self) -> bool:
        return self.sink.open.is_set()

    def consume(self) -> list[int | BaseException]:
        self.sink.open.wait(30)
        self.sink.consumed.extend(r.lsn for r in self.records)
        self.sink.buffered += len(self.records)
        self.sink.buffered_size += sum(len(r.payload) for r in self.records)
        return [1] * len(self.records)


class _Sealed:
    def __init__(self, sink: _GatedSink, rows: int, consumed: list[int]) -> None:
        self.sink, self.rows, self.consumed = sink, rows, consumed

    def write(self, wal_start: int, wal_end: int) -> int:
        self.sink.flushes.append((wal_start, wal_end, self.consumed))
        return self.rows


class _GatedSink:
    """Batches are 'decoding' until `open` is set, like a worker pool that has not answered yet."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.submitted: list[int] = []
        self.reads = 0
        self.consumed: list[int] = []
        self.flushes: list[tuple[int, int, list[int]]] = []
        self.buffered = 0
        self.buffered_size = 0

    def submit(self, records: Sequence[WalRecord]) -> _Batch:
        self.submitted.extend(r.lsn for r in records)
        self.reads += 1
        return _Batch(self, records)

    def seal(self) -> _Sealed:
        sealed = _Sealed(self, self.buffered, list(self.consumed))
        self.buffered, self.buffered_size = 0, 0
        return sealed

    @property
    def buffered_rows(self) -> int:
        return self.buffered

    @property
    def buffered_bytes(self) -> int:
        return self.buffered_size


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


def test_a_flush_starts_when_the_buffered_bytes_reach_flush_bytes(tmp_path: Path) -> None:
    """Rows and time would not flush yet (a million rows, a minute): the buffered bytes do, so what a
    flush holds in memory is bounded whatever the size of each span."""
    wal = WriteAheadLog(tmp_path, WalOptions(fsync=False))
    cursor = CommitCursor(tmp_path)
    sink = _GatedSink()
    sink.open.set()
    options = ConsumerOptions(flush_rows=1_000_000, flush_interval_s=60.0, flush_bytes=1_000, max_read_bytes=400)
    consumer = WalConsumer(wal, cursor, sink, options)
    try:
        lsns = [wal.append("p", bytes([n]) * 300) for n in range(10)]
        consumer.start()
        deadline = time.monotonic() + 30
        while (len(sink.consumed) < len(lsns) or not sink.flushes) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sink.flushes, "no flush although the buffered bytes passed flush_bytes"
        for _start, _end, consumed in sink.flushes:
            assert len(consumed) >= 4  # 4 records of 300 bytes pass 1,000: not before
        assert cursor.lsn >= sink.flushes[0][1] > lsns[0]
    finally:
        consumer.stop()
        wal.close()


def test_the_writer_counts_the_arrow_bytes_it_buffers_until_the_flush(tmp_path: Path) -> None:
    """What `flush_bytes` is compared with: the spans and content buffered (duplicates not), 0 after a flush."""
    writer = ParquetSpanWriter(tmp_path, RecentSpanIds(1000))
    sink = DecodeIntoParquet(writer, DecodePool(0))
    record = WalRecord(0, 1, "default", payload([(n + 1).to_bytes(8, "big") for n in range(5)]))
    assert sink.consume([record]) == [5]
    held = sum(t.get_total_buffer_size() for b in writer._buffer.values() for t in (*b.spans, *b.content))
    assert writer.buffered_bytes == held > 0
    assert sink.consume([record]) == [0]  # a retry: dropped, nothing more held
    assert writer.buffered_bytes == held
    writer.flush(0, 2)
    assert writer.buffered_bytes == 0


def test_the_writer_counts_a_worker_s_tables_by_the_bytes_they_came_in(tmp_path: Path) -> None:
    """Sent back by a decode worker (packed, as the pool does), a part's tables' bytes are known
    (`DecodedPart.held_bytes`: at least the buffers they reference); the filtered copy of a part whose
    spans are partly retried is measured as before."""
    writer = ParquetSpanWriter(tmp_path, RecentSpanIds(1000))
    now = time.time_ns()
    first = payload([(n + 1).to_bytes(8, "big") for n in range(5)], start_ns=now)
    again = payload([(n + 1).to_bytes(8, "big") for n in range(3, 8)], start_ns=now)  # 2 retried, 3 new
    decoded = [decode_bytes(first, "default"), decode_bytes(again, "default")]
    shipped = pickle.loads(ForkingPickler.dumps(DecodedList(decoded)))
    parts = [part for batch in shipped for part in batch.partitions.values()]
    assert writer.add(shipped[0], 0) == 5
    held = sum(parts[0].held_bytes(t) or 0 for t in (parts[0].spans, parts[0].content))
    assert writer.buffered_bytes == held >= parts[0].spans.get_total_buffer_size() > 0
    assert writer.add(shipped[1], 1) == 3
    [buffer] = writer._buffer.values()
    kept = buffer.spans[-1]
    assert kept.num_rows == 3 and parts[1].held_bytes(kept) is None
    assert writer.buffered_bytes == held + kept.get_total_buffer_size() + (parts[1].held_bytes(parts[1].content) or 0)


def test_a_stop_arriving_while_the_loop_decides_not_to_flush_still_flushes(tmp_path: Path) -> None:
    """The consumer has consumed everything and decided no flush is due (an hour's interval) when `stop`
    lands, just before the loop checks for it: what it buffered is flushed and committed before it ends,
    not left to replay at the next start."""
    wal = WriteAheadLog(tmp_path, WalOptions(fsync=False))
    cursor = CommitCursor(tmp_path)
    sink = _GatedSink()
    sink.open.set()
    consumer = WalConsumer(wal, cursor, sink, ConsumerOptions(flush_rows=1_000_000, flush_interval_s=3600.0))
    lsns = [wal.append("p", bytes([n]) * 100) for n in range(5)]
    decide = consumer._flush_due

    def stop_lands_after_the_decision(last_flush: float, caught_up: bool, stopping: bool) -> bool:
        due = decide(last_flush, caught_up, stopping)
        if caught_up and len(sink.consumed) == len(lsns) and not due:
            with consumer._cond:
                consumer._stopping = True
        return due

    consumer._flush_due = stop_lands_after_the_decision  # type: ignore[method-assign]
    try:
        consumer.start()
        deadline = time.monotonic() + 30
        while consumer._thread.is_alive() and time.monotonic() < deadline:
            wal.wake_readers()  # as a flush() or stop() does: the read waiting for records returns empty
            consumer._thread.join(0.01)
        assert not consumer._thread.is_alive()
        assert [lsn for start, end, _ in sink.flushes for lsn in lsns if start <= lsn < end] == lsns
        assert cursor.lsn == wal.durable_lsn
    finally:
        consumer.stop()
        wal.close()


class _SlowWriteSink(_GatedSink):
    """Flushes are written only when `written` is set: a write that takes long (the cores are busy)."""

    def __init__(self) -> None:
        super().__init__()
        self.write_open = threading.Event()
        self.writing = threading.Event()

    def seal(self) -> _Sealed:
        sealed = super().seal()
        outer = self

        class _Held(_Sealed):
            def write(self, wal_start: int, wal_end: int) -> int:
                outer.writing.set()
                outer.write_open.wait(30)
                return super().write(wal_start, wal_end)

        return _Held(self, sealed.rows, sealed.consumed)


def test_reads_go_on_decoding_and_buffering_while_a_flush_writes(tmp_path: Path) -> None:
    """A flush is written on the flush thread: meanwhile the consumer reads, decodes and buffers the next
    records, the cursor stays at the flush's start until the write returns, and the next flush waits for
    it (one at a time, ranges in order)."""
    wal = WriteAheadLog(tmp_path, WalOptions(fsync=False))
    cursor = CommitCursor(tmp_path)
    sink = _SlowWriteSink()
    sink.open.set()
    options = ConsumerOptions(flush_rows=3, flush_interval_s=60.0, max_read_bytes=200, reads_in_flight=2)
    consumer = WalConsumer(wal, cursor, sink, options)
    try:
        first = [wal.append("p", bytes([n]) * 150) for n in range(3)]
        consumer.start()
        assert sink.writing.wait(30)  # the first flush (3 records) is being written
        later = [wal.append("p", bytes([n]) * 150) for n in range(3, 5)]  # fewer than flush_rows
        deadline = time.monotonic() + 30
        while len(sink.consumed) < len(first) + len(later) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sink.consumed == first + later  # buffered while the first flush is still writing
        assert cursor.lsn == 0 and sink.flushes == []  # nothing committed before the write returns
        sink.write_open.set()
        assert consumer.flush(timeout=30)
        lsns = first + later
        assert [lsn for start, end, _ in sink.flushes for lsn in lsns if start <= lsn < end] == lsns
        assert sink.flushes[0][2] == first  # the first flush holds exactly what was sealed for it
        assert cursor.lsn == wal.durable_lsn
    finally:
        sink.open.set()
        sink.write_open.set()
        consumer.stop()
        wal.close()


def test_the_writer_buffers_apart_while_a_sealed_flush_is_written(tmp_path: Path) -> None:
    """`seal` takes what is buffered; spans added after it go to the next flush, and a failed `flush`
    buffers its unwritten spans again before the newer ones."""
    writer = ParquetSpanWriter(tmp_path, RecentSpanIds(1000))
    sink = DecodeIntoParquet(writer, DecodePool(0))
    ids = [(n + 1).to_bytes(8, "big") for n in range(6)]
    assert sink.consume([WalRecord(0, 1, "default", payload(ids[:3]))]) == [3]
    sealed = writer.seal()
    assert writer.buffered_rows == 0 and writer.buffered_bytes == 0 and sealed.rows == 3
    assert sink.consume([WalRecord(1, 2, "default", payload(ids[3:]))]) == [3]
    assert sink.consume([WalRecord(2, 3, "default", payload(ids[:3]))]) == [0]  # the sealed ones stay known
    assert writer.write(sealed, 0, 1) == 3 and not sealed.buffers
    assert writer.buffered_rows == 3
    assert stored_counts(tmp_path) == (3, 3)

    def failing(*args: object, **kwargs: object) -> bool:
        raise OSError("disk full")

    write = writer._tables.write
    writer._tables.write = failing  # type: ignore[method-assign]
    try:
        writer.flush(1, 2)
    except OSError:
        pass
    else:
        raise AssertionError("the write did not fail")
    writer._tables.write = write  # type: ignore[method-assign]
    assert writer.buffered_rows == 3  # buffered again, not lost
    assert writer.flush(1, 3) == 3
    assert stored_counts(tmp_path) == (6, 6)
