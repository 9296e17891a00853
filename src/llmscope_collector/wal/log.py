"""The write-ahead log: durable append with group commit, ordered reads, release of consumed segments.

`append()` returns only after the record is on disk (fdatasync), which is what makes an OTLP "OK"
a promise. Appenders only queue their record under a lock; one flusher thread writes everything
queued with a single `writev` and syncs once, so N concurrent exports cost one fsync, not N.
After an fsync error the log refuses all further appends (the page cache state is unknown after a
failed fsync, so retrying it could ack data that is not on disk); a restart recovers from disk.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from llmscope_collector.file_modes import make_private_dir
from llmscope_collector.wal import segment as seg
from llmscope_collector.wal.errors import WalClosed, WalCorrupt, WalFailed, WalFull
from llmscope_collector.wal.segment import WalRecord

log = logging.getLogger(__name__)

_IOV_MAX = 512
_sync: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)


@dataclasses.dataclass
class _Segment:
    base: int
    path: Path
    end: int | None = None  # None while it is the active (appended) segment


@dataclasses.dataclass(frozen=True)
class WalOptions:
    segment_bytes: int = 64 * 1024 * 1024
    fsync: bool = True
    max_lag_bytes: int = 512 * 1024 * 1024
    # Over the lag limit an append first waits this long for the writer to catch up: a client that
    # is refused resends its whole request, so under sustained overload refusing at once spends the
    # collector's CPU on receiving requests it throws away; waiting queues them instead.
    max_lag_wait_s: float = 1.0
    min_free_disk_bytes: int = 256 * 1024 * 1024
    sync_timeout_s: float = 30.0


@dataclasses.dataclass(frozen=True)
class WalStats:
    durable_lsn: int
    committed_lsn: int
    lag_bytes: int
    lag_records: int
    records_appended: int
    fsyncs: int
    last_fsync_ms: float
    corrupt_bytes_truncated: int
    corrupt_bytes_skipped: int
    segments: int
    failed: str | None
    disk_low: bool


class WriteAheadLog:
    """Segmented, checksummed, group-committed log of accepted export requests."""

    def __init__(self, wal_dir: Path, options: WalOptions, *, committed_lsn: int = 0, floor_lsn: int = 0) -> None:
        self._dir = wal_dir
        self._opts = options
        # One lock, two conditions: appenders, seals and readers wait on `_cond` (what the flusher made durable,
        # what the consumer released, a failure, closing); the flusher waits on `_work` (records queued, a seal
        # asked, closing). An append wakes the flusher alone: with one condition its `notify_all` woke every
        # appender waiting for its sync too, to find it not done and wait again (py-spy --gil of the collector
        # under the ingest bench: `append`'s notify_all was ~4.6% of the main process's GIL samples).
        lock = threading.RLock()
        self._cond = threading.Condition(lock)
        self._work = threading.Condition(lock)
        self._pending: list[bytes] = []
        self._pending_records = 0
        self._failed: str | None = None
        self._closing = False
        self._wakeups = 0  # bumped by wake_readers(): a waiting reader returns early when it changes
        self._disk_low = False
        self._disk_checked = 0.0
        self.fsyncs = 0
        self.last_fsync_s = 0.0
        self.corrupt_bytes_truncated = 0
        self.corrupt_bytes_skipped = 0
        self.records_appended = 0
        self._records_committed = 0
        self._seals_wanted = 0  # seal_active() requests; the flusher thread serves them in order
        self._seals_done = 0
        make_private_dir(wal_dir)
        self._segments, end, backlog = self._recover(committed_lsn)
        self._committed = committed_lsn
        self._backlog_records = backlog
        start = max(end, floor_lsn, committed_lsn)
        self._fd = seg.create_segment(wal_dir, start)
        self._segments.append(_Segment(start, wal_dir / seg.segment_name(start)))
        self._active_size = 0
        self._write_lsn = self._durable = start
        self.start_lsn = start
        self._release_below(committed_lsn)
        self._thread = threading.Thread(target=self._flush_loop, name="llmscope-wal-flush", daemon=True)
        self._thread.start()

    # -- recovery ------------------------------------------------------------------------------

    def _recover(self, committed: int) -> tuple[list[_Segment], int, int]:
        """Seal existing segments, truncating a torn tail; returns (segments, end LSN, records after cursor)."""
        found = seg.list_segments(self._dir)
        segments: list[_Segment] = []
        end = 0
        backlog = 0
        for i, (base, path) in enumerate(found):
            if i == len(found) - 1:
                valid_end, count = seg.scan_valid_end(path, base)
                removed = seg.truncate_segment(path, base, valid_end)
                if removed:
                    self.corrupt_bytes_truncated += removed
                    log.warning("WAL: truncated a torn tail of %d bytes from %s (crash mid-write)", removed, path.name)
                if valid_end == base:
                    path.unlink()
                    end = max(end, base)
                    continue
                backlog += count if base >= committed else _count_from(path, base, committed, valid_end)
            else:
                valid_end = base + max(0, path.stat().st_size - seg.HEADER_SIZE)
                if valid_end > committed:
                    backlog += _count_from(path, base, max(base, committed), valid_end)
            segments.append(_Segment(base, path, valid_end))
            end = max(end, valid_end)
        return segments, end, backlog

    # -- append (many threads) -----------------------------------------------------------------

    def append(self, project: str, payload: bytes) -> int:
        """Durably log one request; returns its LSN.

        Raises a `WalUnavailable` (`WalFull`, `WalClosed`, `WalFailed`) when the caller should retry later."""
        parts = seg.encode_record(project, payload)
        size = seg.record_size(parts)
        with self._cond:
            self._wait_for_room(size)
            lsn = self._write_lsn
            self._write_lsn += size
            self._pending.extend(parts)
            self._pending_records += 1
            self._work.notify()
            deadline = time.monotonic() + self._opts.sync_timeout_s
            while self._durable < lsn + size:
                if self._failed is not None:
                    raise WalFailed(f"write-ahead log failed ({self._failed}); the collector needs a restart")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WalFailed("write-ahead log sync timed out; retry later")
                self._cond.wait(remaining)
        return lsn

    def _wait_for_room(self, size: int) -> None:
        """Raise `WalFull` (or `WalClosed`/`WalFailed`) unless the log accepts `size` bytes; waits up to
        `max_lag_wait_s` for lag room."""
        deadline = time.monotonic() + self._opts.max_lag_wait_s
        while True:
            try:
                self._check_accepting(size)
                return
            except WalFull:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._over_lag(size):
                    raise
                self._cond.wait(remaining)

    def _over_lag(self, size: int) -> bool:
        lag = self._write_lsn - self._committed
        return self._failed is None and not self._closing and lag > 0 and lag + size > self._opts.max_lag_bytes

    def _check_accepting(self, size: int) -> None:
        if self._failed is not None:
            raise WalFailed(f"write-ahead log failed ({self._failed}); the collector needs a restart")
        if self._closing:
            raise WalClosed("collector is shutting down")
        lag = self._write_lsn - self._committed
        if lag > 0 and lag + size > self._opts.max_lag_bytes:
            raise WalFull(f"ingest is {lag} bytes behind (limit {self._opts.max_lag_bytes}); retry later")
        if self._disk_low:
            raise WalFull(f"less than {self._opts.min_free_disk_bytes} bytes free on the data disk; retry later")

    # -- flusher (one thread) ------------------------------------------------------------------

    def _flush_loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing and self._seals_done == self._seals_wanted:
                    self._check_disk()
                    self._work.wait(1.0)
                seals = self._seals_wanted
                if not self._pending and self._seals_done == seals:
                    return
                parts, self._pending = self._pending, []
                records, self._pending_records = self._pending_records, 0
                target = self._write_lsn
                self._check_disk()
            try:
                if parts:
                    self._write_and_sync(parts)
                if self._active_size >= self._opts.segment_bytes or (seals != self._seals_done and self._active_size):
                    self._rotate(target)
            except OSError as exc:
                self._fail(exc)
                return
            with self._cond:
                self._durable = target
                self.records_appended += records
                self._seals_done = seals
                self._cond.notify_all()

    def seal_active(self, timeout: float = 30.0) -> int:
        """End the active segment at the current end of the log (a new one takes the appends), so
        that once consumed every record logged so far can be deleted: after a session is deleted no
        copy of it may stay in a segment that would otherwise live until 64 MiB more traffic.
        Returns the LSN where the sealed part ends."""
        with self._cond:
            self._seals_wanted += 1
            ticket = self._seals_wanted
            self._work.notify()
            deadline = time.monotonic() + timeout
            while self._seals_done < ticket:
                if self._failed is not None:
                    raise WalFailed(f"write-ahead log failed ({self._failed}); the collector needs a restart")
                if not self._thread.is_alive():
                    raise WalClosed("the write-ahead log is closed")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WalFailed("write-ahead log seal timed out; retry later")
                self._cond.wait(remaining)
            return self._durable

    def _write_and_sync(self, parts: list[bytes]) -> None:
        for i in range(0, len(parts), _IOV_MAX):
            chunk = parts[i : i + _IOV_MAX]
            want = sum(len(p) for p in chunk)
            done = os.writev(self._fd, chunk)
            if done < want:
                self._write_rest(chunk, done)
            self._active_size += want
        if self._opts.fsync:
            started = time.perf_counter()
            _sync(self._fd)
            self.last_fsync_s = time.perf_counter() - started
            self.fsyncs += 1

    def _write_rest(self, chunk: list[bytes], done: int) -> None:
        rest = memoryview(b"".join(chunk))[done:]
        while rest:
            n = os.write(self._fd, rest)
            rest = rest[n:]

    def _rotate(self, base: int) -> None:
        """Seal the active segment at `base` and start a new one there."""
        fd = seg.create_segment(self._dir, base)
        old = self._fd
        with self._cond:
            self._segments[-1].end = base
            self._segments.append(_Segment(base, self._dir / seg.segment_name(base)))
            self._fd = fd
            self._active_size = 0
        os.close(old)

    def _fail(self, exc: OSError) -> None:
        log.critical("WAL write/fsync failed: %s; refusing new data until restart (acked data is safe)", exc)
        with self._cond:
            self._failed = f"{exc.strerror or exc}"
            self._cond.notify_all()

    def _check_disk(self) -> None:
        now = time.monotonic()
        if now - self._disk_checked < 1.0:
            return
        self._disk_checked = now
        try:
            free = shutil.disk_usage(self._dir).free
        except OSError:
            return
        low = free < self._opts.min_free_disk_bytes
        if low != self._disk_low:
            log.warning("data disk has %d bytes free: %s new data", free, "refusing" if low else "accepting again")
        self._disk_low = low

    # -- read + release (the consumer) ---------------------------------------------------------

    def read(self, lsn: int, *, max_bytes: int = 8 * 1024 * 1024, timeout: float = 0.0) -> tuple[list[WalRecord], int]:
        """Durable records from `lsn` on (waiting up to `timeout` for some), and the position after them."""
        located = self._wait_for_data(lsn, timeout)
        if located is None:
            return [], lsn
        segment, start, limit = located
        if start >= limit:  # only a gap before an empty segment lies ahead: skip it
            return [], start
        records: list[WalRecord] = []
        size = 0
        try:
            for record in seg.iter_records(segment.path, segment.base, start, limit):
                records.append(record)
                size += record.end - record.lsn
                if size >= max_bytes:
                    break
        except WalCorrupt as exc:
            if records:
                return records, records[-1].end
            with self._cond:
                self.corrupt_bytes_skipped += limit - start
            log.error("WAL: %s in %s; skipping %d bytes to LSN %d", exc, segment.path.name, limit - start, limit)
            return [], limit
        return records, (records[-1].end if records else start)

    def _wait_for_data(self, lsn: int, timeout: float) -> tuple[_Segment, int, int] | None:
        deadline = time.monotonic() + timeout
        with self._cond:
            wakeups = self._wakeups
            while True:
                located = self._locate(lsn)
                if located is not None:
                    return located
                remaining = deadline - time.monotonic()
                if remaining <= 0 or wakeups != self._wakeups or (self._closing and not self._pending):
                    return None
                self._cond.wait(remaining)

    def _locate(self, lsn: int) -> tuple[_Segment, int, int] | None:
        """The segment holding `lsn` with the readable range in it, skipping gaps between segments."""
        for segment in self._segments:
            limit = self._durable if segment.end is None else segment.end
            if lsn < limit:
                return segment, max(lsn, segment.base), limit
        return None

    def wake_readers(self) -> None:
        """Cut a reader's wait short (the consumer is asked to flush or stop), even with no new data."""
        with self._cond:
            self._wakeups += 1
            self._cond.notify_all()

    def release(self, lsn: int, records: int) -> None:
        """Everything before `lsn` is in Parquet: delete the segments that hold nothing newer."""
        with self._cond:
            self._committed = max(self._committed, lsn)
            self._records_committed += records
            self._cond.notify_all()
        self._release_below(lsn)

    def _release_below(self, lsn: int) -> None:
        with self._cond:
            done = [s for s in self._segments if s.end is not None and s.end <= lsn]
            self._segments = [s for s in self._segments if s not in done]
        for segment in done:
            try:
                segment.path.unlink()
            except FileNotFoundError:
                pass

    # -- status + shutdown ---------------------------------------------------------------------

    @property
    def durable_lsn(self) -> int:
        with self._cond:
            return self._durable

    def stats(self) -> WalStats:
        with self._cond:
            lag_records = self._backlog_records + self.records_appended - self._records_committed
            return WalStats(
                durable_lsn=self._durable,
                committed_lsn=self._committed,
                lag_bytes=max(0, self._durable - self._committed),
                lag_records=max(0, lag_records),
                records_appended=self.records_appended,
                fsyncs=self.fsyncs,
                last_fsync_ms=round(self.last_fsync_s * 1000, 3),
                corrupt_bytes_truncated=self.corrupt_bytes_truncated,
                corrupt_bytes_skipped=self.corrupt_bytes_skipped,
                segments=len(self._segments),
                failed=self._failed,
                disk_low=self._disk_low,
            )

    def stop_appends(self) -> None:
        """Refuse new appends, finish syncing the queued ones and stop the flusher."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            self._work.notify()
        self._thread.join()

    def close(self) -> None:
        """Stop appends and close the active segment; an empty, fully consumed log leaves only the cursor."""
        self.stop_appends()
        os.close(self._fd)
        with self._cond:
            everything_committed = self._committed >= self._durable
            active = self._segments[-1] if self._segments else None
        if active is not None and everything_committed:
            active.path.unlink(missing_ok=True)


def _count_from(path: Path, base: int, start: int, end: int) -> int:
    """Records in `[start, end)` of a segment (headers only), for the lag figure."""
    return seg.count_records(path, base, start, end)
