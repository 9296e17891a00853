"""Cluster mode's storage against the real S3 server: create-only PUTs, exactly-once flushes across
crashes at each step, and queries over the bucket answering like a single node on a data dir."""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

import pytest

from llmscope_collector.pipeline import Collector, DecodeIntoParquet
from llmscope_collector.processors.decode_pool import DecodePool
from llmscope_collector.query.filters import TraceQuery
from llmscope_collector.query.store import TraceStore
from llmscope_collector.settings import Settings
from llmscope_collector.storage.cluster import COLLECTOR_ID_FILE, query_dir
from llmscope_collector.storage.dedupe import RecentSpanIds
from llmscope_collector.storage.layout import wal_dir
from llmscope_collector.storage.mirror import BucketMirror
from llmscope_collector.storage.objects import ObjectStore, StorageUrl
from llmscope_collector.storage.parquet_writer import ParquetSpanWriter
from llmscope_collector.storage.tables import BucketTables
from llmscope_collector.wal.cursor import CommitCursor
from llmscope_collector.wal.log import WalOptions, WriteAheadLog
from tests import otlp_factory as f
from tests.cluster.conftest import S3Server
from tests.collector.durability.helpers import DAY_NS, payload, stored_counts

pytestmark = pytest.mark.cluster


def _ids(n: int) -> list[bytes]:
    return [f.new_span_id() for _ in range(n)]


def test_a_create_only_put_leaves_the_first_object_in_place(bucket: ObjectStore) -> None:
    assert bucket.put_new("spans/project=p/date=2026-01-01/a.parquet", b"first") is True
    assert bucket.put_new("spans/project=p/date=2026-01-01/a.parquet", b"second") is False
    assert bucket.get("spans/project=p/date=2026-01-01/a.parquet") == b"first"
    assert [(o.key, o.size) for o in bucket.list("spans/")] == [("spans/project=p/date=2026-01-01/a.parquet", 5)]


@pytest.fixture
def cluster_settings(settings: Settings, s3_env: S3Server) -> Settings:
    return dataclasses.replace(settings, storage=s3_env.fresh_url(), collector_id="c1")


def _bucket_counts(settings: Settings, tmp_path: Path) -> tuple[int, int]:
    """(rows, distinct spans) of the spans stored in the bucket, read through a fresh mirror."""
    mirror = BucketMirror(ObjectStore(StorageUrl.parse(settings.storage)), tmp_path / "check")
    mirror.sync()
    return stored_counts(mirror.root)


def _started(settings: Settings) -> Collector:
    collector = Collector(settings)
    collector.start()
    return collector


def test_flushes_go_to_the_bucket_under_the_data_dir_layout(cluster_settings: Settings, tmp_path: Path) -> None:
    collector = _started(cluster_settings)
    try:
        for _ in range(3):
            collector.exporter.export(payload(_ids(10)))
        collector.flush()
    finally:
        collector.stop()
    objects = ObjectStore(StorageUrl.parse(cluster_settings.storage))
    keys = [o.key for o in objects.list()]
    spans = [k for k in keys if k.startswith("spans/")]
    assert spans and all(k.endswith("-c1.parquet") and "/project=default/date=" in k for k in spans)
    assert any(k.startswith("traces/") for k in keys)
    assert not (cluster_settings.data_dir / "spans").exists(), "no span file on the collector's own disk"
    assert _bucket_counts(cluster_settings, tmp_path) == (30, 30)


def test_the_collector_id_is_generated_once_and_kept_with_the_wal(cluster_settings: Settings, tmp_path: Path) -> None:
    settings = dataclasses.replace(cluster_settings, collector_id="")
    for _ in range(2):
        collector = _started(settings)
        collector.exporter.export(payload(_ids(3)))
        collector.stop()
    collector_id = (wal_dir(settings.data_dir) / COLLECTOR_ID_FILE).read_text().strip()
    keys = [o.key for o in ObjectStore(StorageUrl.parse(settings.storage)).list("spans/")]
    assert len(keys) == 2 and all(k.endswith(f"-{collector_id}.parquet") for k in keys)


def test_a_retry_after_a_restart_is_recognized_from_the_bucket(cluster_settings: Settings, tmp_path: Path) -> None:
    body = payload(_ids(12))
    collector = _started(cluster_settings)
    collector.exporter.export(body)
    collector.stop()
    again = _started(cluster_settings)
    try:
        again.exporter.export(body)
        again.flush()
        assert again.ingest_status().duplicates_dropped == 12
    finally:
        again.stop()
    assert _bucket_counts(cluster_settings, tmp_path) == (12, 12)


def _append_raw(settings: Settings, bodies: list[bytes]) -> None:
    """What a collector killed right after its WAL fsyncs leaves behind: records, nothing consumed."""
    wal = WriteAheadLog(wal_dir(settings.data_dir), WalOptions())
    for body in bodies:
        wal.append("default", body)
    wal.stop_appends()


def _flush_without_commit(
    settings: Settings, only_dates: set[str] | None = None, *, manifest: bool = True
) -> BucketTables:
    """Write the WAL's spans to the bucket as collector `c1`, then 'crash' before the cursor commit
    (with `only_dates`: after the objects of those dates, before the rest and the manifest)."""
    directory = wal_dir(settings.data_dir)
    wal = WriteAheadLog(directory, WalOptions(), committed_lsn=CommitCursor(directory).lsn)
    tables = BucketTables(ObjectStore(StorageUrl.parse(settings.storage)), "c1")
    writer = ParquetSpanWriter(settings.data_dir, RecentSpanIds(1000), tables=tables)
    sink = DecodeIntoParquet(writer, DecodePool(0))
    records, end = wal.read(0, max_bytes=1 << 30)
    sink.consume(records)
    if only_dates is not None:
        writer._buffer = {k: v for k, v in writer._buffer.items() if k[1] in only_dates}
    if only_dates is not None or not manifest:
        tables.commit_flush = lambda wal_start, wal_end: None  # type: ignore[method-assign]
    writer.flush(0, end)
    wal.stop_appends()
    return tables


def test_a_crash_between_the_put_and_the_cursor_commit_stores_nothing_twice(
    cluster_settings: Settings, tmp_path: Path
) -> None:
    _append_raw(cluster_settings, [payload(_ids(10)) for _ in range(5)])
    _flush_without_commit(cluster_settings)
    assert _bucket_counts(cluster_settings, tmp_path / "before") == (50, 50)
    collector = _started(cluster_settings)
    try:
        collector.flush()
        assert collector.ingest_status().replay_skipped_spans == 50
    finally:
        collector.stop()
    assert _bucket_counts(cluster_settings, tmp_path / "after") == (50, 50)


def test_a_crash_in_the_middle_of_a_flush_shows_nothing_until_the_replay_commits_it_all(
    cluster_settings: Settings, tmp_path: Path
) -> None:
    old = payload(_ids(6), start_ns=1_700_000_000 * 10**9)
    new = payload(_ids(4), start_ns=1_700_000_000 * 10**9 + 3 * DAY_NS)
    _append_raw(cluster_settings, [old, new])
    partial = _flush_without_commit(cluster_settings, only_dates={"2023-11-14"})
    assert partial.objects_written >= 1 and partial.manifests_written == 0
    assert _bucket_counts(cluster_settings, tmp_path / "before") == (0, 0)  # no manifest: nothing shown
    collector = _started(cluster_settings)
    try:
        collector.flush()
    finally:
        collector.stop()
    assert _bucket_counts(cluster_settings, tmp_path / "after") == (10, 10)


def test_replaying_a_flush_whose_objects_exist_is_refused_by_the_store(
    cluster_settings: Settings, tmp_path: Path
) -> None:
    """Two writers with the same id and WAL range (a zombie, or a cursor lost with its coverage): the
    conditional PUT keeps the first object and the second write is a counted no-op."""
    _append_raw(cluster_settings, [payload(_ids(7))])
    first = _flush_without_commit(cluster_settings)
    second = _flush_without_commit(cluster_settings)
    assert (first.objects_written, first.replays_refused) == (1, 0)
    assert (second.objects_written, second.replays_refused) == (0, 1)
    assert _bucket_counts(cluster_settings, tmp_path) == (7, 7)


def test_queries_over_the_bucket_answer_like_a_data_dir(
    settings: Settings, cluster_settings: Settings, tmp_path: Path
) -> None:
    local = dataclasses.replace(settings, data_dir=tmp_path / "local")
    bodies = []
    now = time.time_ns()
    for n in range(6):
        trace = f.new_trace_id()
        root = f.new_span_id()
        spans = [f.span(trace, root, f"root-{n}", now + n, now + 9_000_000 + n)]
        for i in range(4):
            spans.append(f.span(trace, f.new_span_id(), f"child-{i}", now + 2_000 + i, now + 3_000_000, parent=root))
        bodies.append(f.request(spans).SerializeToString())
    answers = []
    for s in (local, cluster_settings):
        collector = _started(s)
        try:
            for body in bodies:
                collector.exporter.export(body)
            collector.flush()
            store = TraceStore(query_dir(s))
            page = store.list_traces("default", TraceQuery(limit=100))
            traces = sorted((t.trace_id, t.span_count, t.name) for t in page.traces)
            detail = store.get_trace(traces[0][0])
            assert detail is not None
            answers.append((traces, [(s.span_id, s.name) for s in detail.spans]))
        finally:
            collector.stop()
    assert answers[0] == answers[1]
    assert len(answers[0][0]) == 6


def test_a_lost_wal_never_reuses_a_published_position(cluster_settings: Settings, tmp_path: Path) -> None:
    """The WAL dir lost with the id pinned, and the flush manifests below the published position
    cleaned up by compaction: the new WAL starts above that position, so no key is written twice."""
    collector = _started(cluster_settings)
    try:
        collector.exporter.export(payload(_ids(5)))
        collector.flush()
        collector._publish_cursor()
        position = collector._committed_lsn()
    finally:
        collector.stop()
    objects = ObjectStore(StorageUrl.parse(cluster_settings.storage))
    for info in list(objects.list("manifests/flush/")):
        objects.delete(info.key)
    shutil.rmtree(wal_dir(cluster_settings.data_dir))
    again = _started(cluster_settings)
    try:
        again.exporter.export(payload(_ids(3)))
        again.flush()
    finally:
        again.stop()
    ends = sorted(int(o.key.rsplit("/", 1)[1].split("-")[2], 16) for o in objects.list("spans/"))
    assert len(ends) == 2 and ends[0] == position and ends[1] > position  # the new records lie above it


def test_a_flush_of_a_version_without_manifests_is_adopted_and_not_replayed(
    cluster_settings: Settings, tmp_path: Path
) -> None:
    """An older collector stored a flush (no manifest) and was killed before its cursor commit; the
    new version adopts the bucket at start, shows the objects and skips their WAL records."""
    _append_raw(cluster_settings, [payload(_ids(10)) for _ in range(3)])
    _flush_without_commit(cluster_settings, manifest=False)
    collector = _started(cluster_settings)
    try:
        collector.flush()
        assert collector.ingest_status().replay_skipped_spans == 30
    finally:
        collector.stop()
    assert _bucket_counts(cluster_settings, tmp_path) == (30, 30)
