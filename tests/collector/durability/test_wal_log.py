"""The write-ahead log on a real directory: group commit, ordered reads across segments, segment
release, backpressure, failure after an I/O error, reopen, and the commit cursor."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from llmscope_collector.wal import segment as seg
from llmscope_collector.wal.cursor import CURSOR_FILE, CommitCursor
from llmscope_collector.wal.errors import WalFailed, WalFull
from llmscope_collector.wal.log import WalOptions, WriteAheadLog
from llmscope_collector.wal.segment import WalRecord


def _read_all(wal: WriteAheadLog, start: int = 0) -> list[WalRecord]:
    records: list[WalRecord] = []
    pos = start
    while True:
        got, nxt = wal.read(pos)
        if not got and nxt == pos:
            return records
        records += got
        pos = nxt


def test_concurrent_appends_share_fsyncs_and_read_back_in_lsn_order(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, WalOptions(fsync=True))
    lsns: list[int] = []
    lock = threading.Lock()

    def writer(n: int) -> None:
        for i in range(40):
            lsn = wal.append("p", f"{n}-{i}".encode() * 50)
            with lock:
                lsns.append(lsn)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        stats = wal.stats()
        assert stats.records_appended == 640
        assert 0 < stats.fsyncs < 640  # group commit: several appends per fsync
        records = _read_all(wal)
        assert [r.lsn for r in records] == sorted(lsns)
        assert {r.payload for r in records} == {f"{n}-{i}".encode() * 50 for n in range(16) for i in range(40)}
    finally:
        wal.close()


def test_segments_rotate_by_size_and_are_deleted_once_committed(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, WalOptions(fsync=False, segment_bytes=4096))
    try:
        for i in range(100):
            wal.append("p", bytes([i]) * 300)
        assert len(seg.list_segments(tmp_path)) > 5
        records = _read_all(wal)
        assert [r.payload[0] for r in records] == list(range(100))
        middle = records[60]
        wal.release(middle.lsn, 60)
        remaining = seg.list_segments(tmp_path)
        assert remaining[0][0] <= middle.lsn  # the segment holding record 60 is kept
        assert [r.payload[0] for r in _read_all(wal, middle.lsn)] == list(range(60, 100))
        assert wal.stats().lag_records == 40
    finally:
        wal.close()


def test_lag_over_the_limit_is_refused_with_a_retryable_error_until_released(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, WalOptions(fsync=False, max_lag_bytes=10_000, max_lag_wait_s=0.05))
    try:
        wal.append("p", b"x" * 6000)
        with pytest.raises(WalFull, match="behind"):
            wal.append("p", b"y" * 6000)
        wal.release(wal.durable_lsn, 1)
        wal.append("p", b"y" * 6000)
    finally:
        wal.close()


def test_an_append_over_the_lag_limit_waits_for_the_writer_instead_of_refusing(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, WalOptions(fsync=False, max_lag_bytes=10_000, max_lag_wait_s=30.0))
    try:
        first = wal.append("p", b"x" * 6000)
        appended: list[int] = []
        waiter = threading.Thread(target=lambda: appended.append(wal.append("p", b"y" * 6000)))
        waiter.start()
        waiter.join(0.3)
        assert waiter.is_alive() and not appended  # queued, not refused
        wal.release(wal.durable_lsn, 1)  # the writer caught up: the waiting append goes in
        waiter.join(10)
        assert appended and appended[0] > first
    finally:
        wal.close()


def test_low_disk_space_refuses_appends(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, WalOptions(fsync=False, min_free_disk_bytes=1 << 62))
    try:
        deadline = time.monotonic() + 10
        while not wal.stats().disk_low and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(WalFull, match="free"):
            wal.append("p", b"x")
    finally:
        wal.close()


def test_an_io_error_fails_the_log_for_good_and_acks_nothing(tmp_path: Path) -> None:
    """After a failed write/fsync the page cache state is unknown: refuse everything until restart."""
    wal = WriteAheadLog(tmp_path, WalOptions(fsync=True))
    wal.append("p", b"before")
    os.close(wal._fd)  # the next writev fails with EBADF, like a dying disk would with EIO
    wal._fd = os.open(os.devnull, os.O_RDONLY)
    with pytest.raises(WalFailed, match="failed"):
        wal.append("p", b"lost")
    with pytest.raises(WalFailed, match="restart"):
        wal.append("p", b"later")
    assert wal.stats().failed
    wal.close()
    reopened = WriteAheadLog(tmp_path, WalOptions(fsync=True))
    try:
        assert [r.payload for r in _read_all(reopened)] == [b"before"]
    finally:
        reopened.close()


def test_reopen_continues_after_the_last_record_and_replays_from_the_cursor(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, WalOptions(fsync=True))
    first = wal.append("p", b"one")
    second = wal.append("q", b"two")
    wal.close()
    reopened = WriteAheadLog(tmp_path, WalOptions(fsync=True), committed_lsn=second)
    try:
        assert reopened.start_lsn > second > first
        assert [(r.project, r.payload) for r in _read_all(reopened, second)] == [("q", b"two")]
        assert reopened.stats().lag_records == 1
        third = reopened.append("p", b"three")
        assert third == reopened.start_lsn
    finally:
        reopened.close()


def test_floor_lsn_keeps_positions_moving_forward_when_the_wal_is_lost(tmp_path: Path) -> None:
    """LSNs stored in Parquet file names must never be reused by a new WAL."""
    wal = WriteAheadLog(tmp_path / "wal", WalOptions(fsync=False), floor_lsn=123_456)
    try:
        assert wal.append("p", b"x") == 123_456
    finally:
        wal.close()


def test_close_with_everything_committed_leaves_no_segment(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, WalOptions(fsync=False))
    wal.append("p", b"x")
    wal.release(wal.durable_lsn, 1)
    wal.close()
    assert seg.list_segments(tmp_path) == []


def test_cursor_survives_reload_and_a_damaged_cursor_reads_as_zero(tmp_path: Path) -> None:
    cursor = CommitCursor(tmp_path)
    assert cursor.lsn == 0
    cursor.commit(4242)
    cursor.commit(100)  # never backwards
    assert CommitCursor(tmp_path).lsn == 4242
    raw = bytearray((tmp_path / CURSOR_FILE).read_bytes())
    raw[-1] ^= 0xFF
    (tmp_path / CURSOR_FILE).write_bytes(bytes(raw))
    assert CommitCursor(tmp_path).lsn == 0
    (tmp_path / CURSOR_FILE).write_bytes(b"short")
    assert CommitCursor(tmp_path).lsn == 0
