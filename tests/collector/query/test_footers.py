"""`FooterWarmer` parses the footers of each project's newest span files into the lookup database's cache, once
each, in the background once started, and stops with its store."""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llmscope_collector.query.db import Database
from llmscope_collector.query.filters import TraceQuery
from llmscope_collector.query.footers import FooterWarmer, newest_dates
from llmscope_collector.query.store import TraceStore
from llmscope_collector.storage.layout import SPANS_DIR

_DATES = ["2026-01-01", "2026-01-02", "2026-01-03"]


def _write(root: Path, project: str, date: str, name: str = "part.parquet") -> str:
    part = root / f"project={project}" / f"date={date}"
    part.mkdir(parents=True, exist_ok=True)
    table = pa.table({"trace_id": [f"{n:032x}" for n in range(64)], "start_ns": list(range(64))})
    path = part / name
    pq.write_table(table, path, row_group_size=8)  # several row groups: a footer worth caching
    return str(path)


def _object_cache_bytes(db: Database) -> int:
    cur = db.cursor()
    try:
        row = cur.execute("SELECT memory_usage_bytes FROM duckdb_memory() WHERE tag = 'OBJECT_CACHE'").fetchone()
    finally:
        cur.close()
    return int(row[0]) if row else 0


@pytest.fixture
def lookups() -> Iterator[Database]:
    db = Database(threads=1, memory_limit="256MB", footer_cache=True)
    yield db
    db.close()


def test_it_warms_each_projects_newest_dates_once_newest_first(tmp_path: Path, lookups: Database) -> None:
    paths = {(p, d): _write(tmp_path, p, d) for p in ("a", "b") for d in _DATES}
    warmer = FooterWarmer(tmp_path, lookups, dates=2)
    assert newest_dates(paths.values(), 2) == [
        paths[(p, d)] for d in reversed(_DATES[1:]) for p in ("b", "a")
    ]  # (newest date first; within a date, the paths in reverse order)
    assert _object_cache_bytes(lookups) == 0
    assert warmer.warm_new() == 4
    assert _object_cache_bytes(lookups) > 0  # the footers are in DuckDB's cache, not just read
    assert warmer.warm_new() == 0  # nothing new
    added = _write(tmp_path, "a", _DATES[2], "later.parquet")  # e.g. a compaction's output
    assert warmer.warm_new() == 1
    assert warmer.files_warmed == 5 and warmer.passes == 3
    os.unlink(added)
    os.unlink(paths[("a", _DATES[2])])
    assert warmer.warm_new() == 1  # the files gone are forgotten; the date next in line now counts
    assert warmer.warm_new() == 0


def test_a_file_gone_between_listing_and_reading_is_skipped(tmp_path: Path, lookups: Database) -> None:
    kept = _write(tmp_path, "a", _DATES[0])
    gone = _write(tmp_path, "a", _DATES[0], "gone.parquet")
    part = os.path.dirname(gone)
    warmer = FooterWarmer(tmp_path, lookups)
    warmer._files.current()  # listed (both files) ...
    listed = os.stat(part).st_mtime_ns
    os.unlink(gone)  # ... then removed; the listing is stale until the directory's mtime moves
    os.utime(part, ns=(listed, listed))
    assert warmer.warm_new() == 1
    assert kept in warmer._warmed and gone not in warmer._warmed


def test_it_warms_in_the_background_once_started_and_stops_on_close(tmp_path: Path, lookups: Database) -> None:
    _write(tmp_path, "a", _DATES[0])
    warmer = FooterWarmer(tmp_path, lookups, recheck_s=0.05)
    time.sleep(0.1)
    assert warmer.passes == 0  # nothing before `start`
    warmer.start()
    warmer.start()
    deadline = time.monotonic() + 10
    while warmer.files_warmed < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert warmer.files_warmed == 1
    _write(tmp_path, "a", _DATES[1])  # found by a later pass
    while warmer.files_warmed < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert warmer.files_warmed == 2
    assert warmer.running
    warmer.close()
    assert not warmer.running
    warmer.start()  # closed: stays stopped
    assert not warmer.running


def test_the_store_starts_warming_on_its_first_read_and_stops_on_close(tmp_path: Path) -> None:
    _write(tmp_path / SPANS_DIR, "default", _DATES[0])
    store = TraceStore(tmp_path)
    try:
        assert not store._warmer.running
        assert store.list_traces("default", TraceQuery()).traces == []  # (no summaries yet: the index was read)
        assert store._warmer.running
    finally:
        store.close()
    assert not store._warmer.running


def test_a_store_dropped_unclosed_stops_its_warmer(tmp_path: Path) -> None:
    """Nothing but the store refers to its warmer's work: once the store is gone, the thread ends."""
    _write(tmp_path / SPANS_DIR, "default", _DATES[0])
    store = TraceStore(tmp_path)
    store.list_traces("default", TraceQuery())
    warmer = store._warmer
    assert warmer.running
    del store
    gc.collect()
    deadline = time.monotonic() + 30
    while warmer.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not warmer.running
