"""Exactly-once storage: client retries, replay after a crash at every step of a flush, a lost
cursor and a retry after restart all leave each (trace_id, span_id) stored once."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from llmscope_collector.pipeline import Collector, DecodeIntoParquet
from llmscope_collector.processors.decode_pool import DecodePool
from llmscope_collector.settings import Settings
from llmscope_collector.storage.dedupe import RecentSpanIds
from llmscope_collector.storage.layout import wal_dir
from llmscope_collector.storage.parquet_writer import ParquetSpanWriter
from llmscope_collector.wal.cursor import CURSOR_FILE, CommitCursor
from llmscope_collector.wal.log import WalOptions, WriteAheadLog
from llmscope_collector.wal.segment import WalRecord
from tests import otlp_factory as f
from tests.collector.durability.helpers import DAY_NS, payload, stored_counts, stored_span_ids


def _started(settings: Settings) -> Collector:
    collector = Collector(settings)
    collector.start()
    return collector


def _ids(n: int) -> list[bytes]:
    return [f.new_span_id() for _ in range(n)]


def test_a_retried_request_is_stored_once(settings: Settings) -> None:
    collector = _started(settings)
    try:
        ids = _ids(20)
        body = payload(ids)
        for _ in range(3):
            assert collector.exporter.export(body).accepted == 20
        collector.exporter.export(payload(ids[:10] + _ids(5)))  # overlapping retry with new spans
        collector.flush()
        assert stored_counts(settings.data_dir) == (25, 25)
        assert collector.ingest_status().duplicates_dropped == 50
    finally:
        collector.stop()


def test_the_same_span_ids_in_two_projects_are_two_spans(settings: Settings) -> None:
    """Keys include the project: one tenant cannot suppress another's spans by reusing ids."""
    collector = _started(settings)
    try:
        body = payload(_ids(4), trace_id=f.new_trace_id())
        collector.exporter.export(body, "alpha")
        collector.exporter.export(body, "beta")
        collector.flush()
        assert stored_counts(settings.data_dir)[0] == 8
    finally:
        collector.stop()


def _append_raw(settings: Settings, bodies: list[tuple[str, bytes]]) -> None:
    """What a collector killed right after its WAL fsyncs leaves behind: records, nothing consumed."""
    wal = WriteAheadLog(wal_dir(settings.data_dir), WalOptions())
    for project, body in bodies:
        wal.append(project, body)
    wal.stop_appends()  # no close(): a killed process does not tidy up


def test_records_acked_but_never_flushed_are_replayed_at_start(settings: Settings) -> None:
    bodies = [("default", payload(_ids(10))) for _ in range(7)]
    _append_raw(settings, bodies)
    collector = _started(settings)
    try:
        collector.flush()
        status = collector.ingest_status()
        assert stored_counts(settings.data_dir) == (70, 70)
        assert (status.replayed_records, status.replayed_spans, status.replay_done) == (7, 70, True)
        assert status.wal_lag_bytes == 0
    finally:
        collector.stop()


def _flush_without_commit(settings: Settings, only_dates: set[str] | None = None) -> None:
    """Consume the WAL and write Parquet files, then 'crash' before the cursor commit.

    With `only_dates`, only those partitions' files are written: a crash in the middle of a flush.
    """
    directory = wal_dir(settings.data_dir)
    wal = WriteAheadLog(directory, WalOptions(), committed_lsn=CommitCursor(directory).lsn)
    writer = ParquetSpanWriter(settings.data_dir, RecentSpanIds(1000))
    sink = DecodeIntoParquet(writer, DecodePool(0))
    records, end = wal.read(0, max_bytes=1 << 30)
    sink.consume(records)
    if only_dates is not None:
        writer._buffer = {k: v for k, v in writer._buffer.items() if k[1] in only_dates}
    writer.flush(0, end)
    wal.stop_appends()


def test_crash_between_file_rename_and_cursor_commit_writes_nothing_twice(settings: Settings) -> None:
    _append_raw(settings, [("default", payload(_ids(10))) for _ in range(5)])
    _flush_without_commit(settings)
    assert stored_counts(settings.data_dir) == (50, 50)
    collector = _started(settings)
    try:
        collector.flush()
        assert stored_counts(settings.data_dir) == (50, 50)
        assert collector.ingest_status().replay_skipped_spans == 50
    finally:
        collector.stop()


def test_crash_in_the_middle_of_a_flush_writes_the_missing_partition_only(settings: Settings) -> None:
    old = payload(_ids(6), start_ns=1_700_000_000 * 10**9)
    new = payload(_ids(4), start_ns=1_700_000_000 * 10**9 + 3 * DAY_NS)
    _append_raw(settings, [("default", old), ("default", new)])
    _flush_without_commit(settings, only_dates={"2023-11-14"})
    assert stored_counts(settings.data_dir) == (6, 6)
    collector = _started(settings)
    try:
        collector.flush()
        assert stored_counts(settings.data_dir) == (10, 10)
    finally:
        collector.stop()


def test_a_lost_cursor_replays_everything_and_still_stores_each_span_once(settings: Settings) -> None:
    _append_raw(settings, [("default", payload(_ids(8))) for _ in range(3)])
    _flush_without_commit(settings)
    CommitCursor(wal_dir(settings.data_dir)).commit(1)
    (wal_dir(settings.data_dir) / CURSOR_FILE).write_bytes(b"garbage")
    collector = _started(settings)
    try:
        collector.flush()
        assert stored_counts(settings.data_dir) == (24, 24)
    finally:
        collector.stop()


def test_a_retry_after_a_restart_is_recognized_from_the_stored_files(settings: Settings) -> None:
    body = payload(_ids(12))
    collector = _started(settings)
    collector.exporter.export(body)
    collector.stop()
    again = _started(dataclasses.replace(settings))
    try:
        again.exporter.export(body)
        again.flush()
        assert stored_counts(settings.data_dir) == (12, 12)
        assert again.ingest_status().duplicates_dropped == 12
    finally:
        again.stop()


def test_partially_invalid_requests_store_only_the_valid_spans(settings: Settings) -> None:
    collector = _started(settings)
    try:
        trace = f.new_trace_id()
        spans = [f.span(trace, f.new_span_id(), "ok", 1, 2), f.span(trace, b"\x00" * 8, "zero id", 1, 2)]
        result = collector.exporter.export(f.request(spans).SerializeToString())
        assert (result.accepted, result.rejected) == (1, 1)
        assert "span_id 8 bytes" in result.message
        collector.flush()
        assert stored_counts(settings.data_dir) == (1, 1)
    finally:
        collector.stop()


@examples(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    capacity=st.integers(min_value=0, max_value=12),
    requests=st.lists(st.lists(st.integers(min_value=1, max_value=15), min_size=1, max_size=6), min_size=1, max_size=8),
)
def test_a_flush_stores_each_span_once_whatever_the_window_capacity(
    tmp_path_factory: pytest.TempPathFactory, capacity: int, requests: list[list[int]]
) -> None:
    """Retries inside one flush are dropped exactly, also when the flush holds more spans than the window
    (which then may have forgotten some of them): the first copy of each span is the one stored."""
    data_dir = tmp_path_factory.mktemp("window")
    writer = ParquetSpanWriter(data_dir, RecentSpanIds(capacity))
    sink = DecodeIntoParquet(writer, DecodePool(0))
    for lsn, ids in enumerate(requests):
        sink.consume([WalRecord(lsn, lsn + 1, "default", payload([n.to_bytes(8, "big") for n in ids]))])
    written = writer.flush(0, len(requests))
    distinct = {n for ids in requests for n in ids}
    assert written == len(distinct) == writer.rows_written
    assert writer.duplicates_dropped == sum(map(len, requests)) - len(distinct)
    assert sorted(stored_span_ids(data_dir)) == sorted(n.to_bytes(8, "big").hex() for n in distinct)
