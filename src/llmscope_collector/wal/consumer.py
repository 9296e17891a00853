"""The WAL consumer: one thread that moves records, in order, from the log into the sink (Parquet).

It reads only durable records and hands each read to the sink, which starts decoding it (in
worker processes); while they decode, the consumer buffers the reads before it, in order, so
decoding and writing overlap. Every `flush_rows` spans, `flush_bytes` buffered or `flush_interval_s` it seals
what the sink buffered as one WAL range and a flush thread makes it durable, while the consumer goes on
decoding and buffering the next range (one flush at a time, in order: at most two ranges are held); only
after a flush does the cursor advance and the consumed segments get deleted. On start it simply begins at
the cursor, which is the replay. A record the sink cannot process (a bug, not bad client input: that was refused before
the ack) is copied to `wal/quarantine/` and skipped, so one bad record never blocks the rest.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

from llmscope_collector.file_modes import PRIVATE_FILE, make_private_dir
from llmscope_collector.wal.cursor import CommitCursor
from llmscope_collector.wal.log import WriteAheadLog
from llmscope_collector.wal.segment import WalRecord

log = logging.getLogger(__name__)

QUARANTINE_DIR = "quarantine"


class SinkBatch(Protocol):
    """One read's records on their way into the sink (being decoded)."""

    def ready(self) -> bool:
        """True when `consume` would not wait."""
        ...

    def consume(self) -> list[int | BaseException]:
        """Buffer the records, in order; per record the spans it contributed, or why it could not be processed."""
        ...


class SealedRecords(Protocol):
    """The records a sink had buffered when the consumer decided to flush (`RecordSink.seal`)."""

    def write(self, wal_start: int, wal_end: int) -> int:
        """Make them durable as WAL range `[wal_start, wal_end)`; on an error, retried with the same range
        (what a failed write did write is not written again). Runs on the consumer's flush thread while
        the sink buffers later records."""
        ...


class RecordSink(Protocol):
    """Where consumed records go: buffers them, then makes a WAL range durable in one flush."""

    def submit(self, records: Sequence[WalRecord]) -> SinkBatch:
        """Start processing records (called in WAL order; their batches are consumed in the same order)."""
        ...

    def seal(self) -> SealedRecords:
        """Everything buffered so far, to be written as one flush; later records buffer apart."""
        ...

    @property
    def buffered_rows(self) -> int: ...

    @property
    def buffered_bytes(self) -> int: ...


@dataclasses.dataclass(frozen=True)
class ConsumerOptions:
    flush_rows: int = 10_000
    flush_bytes: int = 64 * 1024 * 1024  # a memory bound: 10,000 spans with large content are GBs
    flush_interval_s: float = 1.0
    # Reads being decoded while earlier ones are written, each of up to `max_read_bytes` of payload. What
    # they hold is in memory at once: the payloads and, as they come back, the decoded batches (~1.3x the
    # payload). 3 x 4 MiB keeps the decode workers busy (a read goes out as about one task per worker,
    # `decode_pool._chunks`); 3 x 8 MiB held ~20 MB more at the ingest bench's peak for the same throughput,
    # and 2 reads in flight with one worker no less (docs/memory.md).
    max_read_bytes: int = 4 * 1024 * 1024
    stop_timeout_s: float = 60.0
    reads_in_flight: int = 3


@dataclasses.dataclass
class ConsumerStats:
    records_consumed: int = 0
    spans_consumed: int = 0
    replayed_records: int = 0
    replayed_spans: int = 0
    replay_done: bool = False
    flushes: int = 0
    flush_failures: int = 0
    quarantined: int = 0


class WalConsumer:
    """Drives `sink` from `wal`, advancing `cursor` after each durable flush."""

    def __init__(self, wal: WriteAheadLog, cursor: CommitCursor, sink: RecordSink, options: ConsumerOptions) -> None:
        self._wal = wal
        self._cursor = cursor
        self._sink = sink
        self._opts = options
        self._replay_end = wal.start_lsn
        self._cond = threading.Condition()
        self._flush_wanted = 0
        self._stopping = False
        self._abandon = False
        self._thread = threading.Thread(target=self._run, name="llmscope-wal-consumer", daemon=True)
        self.stats = ConsumerStats(replay_done=cursor.lsn >= self._replay_end)

    def start(self) -> None:
        self._thread.start()

    @property
    def committed_lsn(self) -> int:
        return self._cursor.lsn

    # -- the loop -------------------------------------------------------------------------------

    def _run(self) -> None:
        with ThreadPoolExecutor(1, thread_name_prefix="llmscope-parquet-flush") as flusher:
            self._loop(flusher)

    def _loop(self, flusher: ThreadPoolExecutor) -> None:
        """Read, decode ahead and buffer in WAL order; each due flush is sealed here and written on the
        flush thread while the next reads decode (one flush at a time: a flush waits for the one before)."""
        pos = done = start = self._cursor.lsn  # read up to `pos`; handed to the sink up to `done`
        inflight: deque[tuple[list[WalRecord], SinkBatch, int]] = deque()
        flushing: Future[bool] | None = None
        records_since = 0
        last_flush = time.monotonic()
        while True:
            read_nothing = False
            if len(inflight) < self._opts.reads_in_flight:
                timeout = 0.0 if inflight else self._wait_time(last_flush)
                records, next_pos = self._wal.read(pos, max_bytes=self._opts.max_read_bytes, timeout=timeout)
                if records:
                    inflight.append((records, self._sink.submit(records), next_pos))
                    records_since += len(records)
                elif not inflight:
                    done = next_pos  # nothing pending: skipped bytes (if any) count as consumed
                read_nothing = not records and next_pos == pos
                pos = next_pos
            done = self._drain(inflight, done, wait=read_nothing or len(inflight) >= self._opts.reads_in_flight)
            caught_up = read_nothing and not inflight
            if caught_up and not self.stats.replay_done and done >= self._replay_end:
                self._replay_finished()
            # Read once, before the flush decision: a stop arriving between that decision and the exit
            # check would otherwise end the loop with consumed records unflushed (they would replay).
            stopping = caught_up and self._stopping_now()
            if self._flush_due(last_flush, caught_up, stopping):
                if done > start or (caught_up and flushing is not None):
                    # the one before first (also when caught up: a waiting `flush()` then sees its commit)
                    if not _settled(flushing):
                        return
                    flushing = None
                if done > start:
                    consumed = records_since - _records(inflight)
                    flushing = flusher.submit(self._flush, self._sink.seal(), start, done, consumed)
                start, records_since, last_flush = done, _records(inflight), time.monotonic()
            if stopping:
                _settled(flushing)
                return

    def _drain(self, inflight: deque[tuple[list[WalRecord], SinkBatch, int]], done: int, *, wait: bool) -> int:
        """Consume finished reads in order (waiting for the oldest when `wait`); returns the new `done`."""
        while inflight and (wait or inflight[0][1].ready()):
            records, batch, end = inflight.popleft()
            self._consume(records, batch.consume())
            done = end
            wait = False
        return done

    def _wait_time(self, last_flush: float) -> float:
        with self._cond:
            if self._flush_wanted or self._stopping:
                return 0.0
        return max(0.0, last_flush + self._opts.flush_interval_s - time.monotonic())

    def _flush_due(self, last_flush: float, caught_up: bool, stopping: bool) -> bool:
        if stopping or self._sink.buffered_rows >= self._opts.flush_rows:
            return True
        if self._sink.buffered_bytes >= self._opts.flush_bytes:
            return True
        if time.monotonic() - last_flush >= self._opts.flush_interval_s:
            return True
        with self._cond:
            return caught_up and self._flush_wanted > 0

    def _stopping_now(self) -> bool:
        with self._cond:
            return self._stopping

    def _consume(self, records: list[WalRecord], outcomes: list[int | BaseException]) -> None:
        for record, outcome in zip(records, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                log.error("WAL record at LSN %d could not be processed (%r); quarantined", record.lsn, outcome)
                self._quarantine(record)
                continue
            self.stats.records_consumed += 1
            self.stats.spans_consumed += outcome
            if record.lsn < self._replay_end:
                self.stats.replayed_records += 1
                self.stats.replayed_spans += outcome

    def _flush(self, sealed: SealedRecords, start: int, end: int, records: int) -> bool:
        """Make `[start, end)` durable and commit it, retrying on errors; False when abandoned at stop
        (the flush thread's work)."""
        delay = 0.2
        while True:
            try:
                sealed.write(start, end)
                self._cursor.commit(end)
            except Exception:
                self.stats.flush_failures += 1
                log.exception("Parquet flush failed; the data stays in the WAL and the flush is retried")
                if self._wait_abandon(delay):
                    return False
                delay = min(delay * 2, 5.0)
                continue
            self._wal.release(end, records)
            self.stats.flushes += 1
            self._notify_committed()
            return True

    def _wait_abandon(self, delay: float) -> bool:
        with self._cond:
            self._cond.wait_for(lambda: self._abandon, timeout=delay)
            return self._abandon

    def _replay_finished(self) -> None:
        self.stats.replay_done = True
        if self.stats.replayed_records:
            log.info(
                "WAL replay done: %d records, %d spans re-read after the last commit",
                self.stats.replayed_records,
                self.stats.replayed_spans,
            )

    def _notify_committed(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _quarantine(self, record: WalRecord) -> None:
        self.stats.quarantined += 1
        directory = self._quarantine_dir()
        try:
            make_private_dir(directory)
            path = directory / f"{record.lsn:020d}-{record.project}.otlp"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
            with open(fd, "wb") as fh:
                fh.write(record.payload)
        except OSError as exc:
            log.error("cannot quarantine WAL record %d: %s", record.lsn, exc)

    def _quarantine_dir(self) -> Path:
        return self._cursor.directory / QUARANTINE_DIR

    # -- control ---------------------------------------------------------------------------------

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything durable in the WAL now is committed to Parquet; False on timeout."""
        target = self._wal.durable_lsn
        deadline = time.monotonic() + timeout
        with self._cond:
            self._flush_wanted += 1
            try:
                while self._cursor.lsn < target and self._thread.is_alive():
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._wal.wake_readers()
                    self._cond.wait(min(remaining, 0.05))
                return self._cursor.lsn >= target
            finally:
                self._flush_wanted -= 1

    def stop(self) -> None:
        """Consume everything durable, flush, commit, stop (appends must be stopped first)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._wal.wake_readers()
        self._thread.join(self._opts.stop_timeout_s)
        if self._thread.is_alive():
            log.error("WAL consumer did not finish in %.0fs; the rest replays at next start", self._opts.stop_timeout_s)
            with self._cond:
                self._abandon = True
                self._cond.notify_all()
            self._thread.join(5)


def _settled(flushing: Future[bool] | None) -> bool:
    """Wait for a flush in progress; False when it was abandoned at stop (the consumer then ends)."""
    return flushing is None or flushing.result()


def _records(inflight: deque[tuple[list[WalRecord], SinkBatch, int]]) -> int:
    return sum(len(records) for records, _, _ in inflight)
