"""The WAL consumer: one thread that moves records, in order, from the log into the sink (Parquet).

It reads only durable records, hands each to the sink, and every `flush_rows` spans or
`flush_interval_s` asks the sink to make them durable as one WAL range; only then does the cursor
advance and the consumed segments get deleted. On start it simply begins at the cursor, which is
the replay. A record the sink cannot process (a bug, not bad client input: that was refused before
the ack) is copied to `wal/quarantine/` and skipped, so one bad record never blocks the rest.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from llmscope_collector.wal.cursor import CommitCursor
from llmscope_collector.wal.log import WriteAheadLog
from llmscope_collector.wal.segment import WalRecord

log = logging.getLogger(__name__)

QUARANTINE_DIR = "quarantine"


class RecordSink(Protocol):
    """Where consumed records go: buffers them, then makes a WAL range durable in one `flush`."""

    def consume(self, records: Sequence[WalRecord]) -> list[int | BaseException]:
        """Buffer records in order; per record the spans it contributed, or why it could not be processed."""
        ...

    def flush(self, wal_start: int, wal_end: int) -> int: ...

    @property
    def buffered_rows(self) -> int: ...


@dataclasses.dataclass(frozen=True)
class ConsumerOptions:
    flush_rows: int = 50_000
    flush_interval_s: float = 1.0
    max_read_bytes: int = 8 * 1024 * 1024
    stop_timeout_s: float = 60.0


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
        pos = start = self._cursor.lsn
        records_since = 0
        last_flush = time.monotonic()
        while True:
            timeout = self._wait_time(last_flush)
            records, next_pos = self._wal.read(pos, max_bytes=self._opts.max_read_bytes, timeout=timeout)
            if records:
                self._consume(records)
            caught_up = not records and next_pos == pos
            pos = next_pos
            records_since += len(records)
            if caught_up and not self.stats.replay_done and pos >= self._replay_end:
                self._replay_finished()
            if self._flush_due(last_flush, caught_up):
                if pos > start and not self._flush(start, pos, records_since):
                    return
                start, records_since, last_flush = pos, 0, time.monotonic()
                self._notify_committed()
            if caught_up and self._stopping_now():
                return

    def _wait_time(self, last_flush: float) -> float:
        with self._cond:
            if self._flush_wanted or self._stopping:
                return 0.0
        return max(0.0, last_flush + self._opts.flush_interval_s - time.monotonic())

    def _flush_due(self, last_flush: float, caught_up: bool) -> bool:
        if self._sink.buffered_rows >= self._opts.flush_rows:
            return True
        if time.monotonic() - last_flush >= self._opts.flush_interval_s:
            return True
        with self._cond:
            return caught_up and (self._flush_wanted > 0 or self._stopping)

    def _stopping_now(self) -> bool:
        with self._cond:
            return self._stopping

    def _consume(self, records: list[WalRecord]) -> None:
        for record, outcome in zip(records, self._sink.consume(records), strict=True):
            if isinstance(outcome, BaseException):
                log.error("WAL record at LSN %d could not be processed (%r); quarantined", record.lsn, outcome)
                self._quarantine(record)
                continue
            self.stats.records_consumed += 1
            self.stats.spans_consumed += outcome
            if record.lsn < self._replay_end:
                self.stats.replayed_records += 1
                self.stats.replayed_spans += outcome

    def _flush(self, start: int, end: int, records: int) -> bool:
        """Make `[start, end)` durable and commit it, retrying on errors; False when abandoned at stop."""
        delay = 0.2
        while True:
            try:
                self._sink.flush(start, end)
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
            directory.mkdir(exist_ok=True)
            (directory / f"{record.lsn:020d}-{record.project}.otlp").write_bytes(record.payload)
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
