"""A waterfall (and a span's detail) reads only the date partitions its trace summary's first start and last
end fall in, and still finds every span: across midnight, and a span whose end precedes its start on a later
date (found by looking again with a day's margin, since the summary counts more spans than the first read)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llmscope_collector.pipeline import DecodeIntoParquet
from llmscope_collector.processors.decode_pool import DecodePool
from llmscope_collector.processors.stitch import Stitcher
from llmscope_collector.query.store import TraceStore
from llmscope_collector.storage.dedupe import RecentSpanIds
from llmscope_collector.storage.parquet_writer import ParquetSpanWriter
from llmscope_collector.wal.segment import WalRecord
from tests import otlp_factory as f

DAY = 86_400 * 10**9
MIDNIGHT = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z
MS = 1_000_000
ONE_DAY = "aa" * 16  # every span on 2025-12-31
ACROSS = "bb" * 16  # root on 2025-12-31, a child after midnight
BACKWARDS = "cc" * 16  # a span starting after midnight that "ends" before it
NEIGHBOURS = "dd" * 16  # spans on the days around, so that a wider read would find partitions to open


def _sid(n: int) -> bytes:
    return (n + 1).to_bytes(8, "big")


def _write(data_dir: Path) -> None:
    spans = [
        f.span(bytes.fromhex(ONE_DAY), _sid(0), "root", MIDNIGHT - 3_600_000 * MS, MIDNIGHT - 3_000_000 * MS),
        f.span(bytes.fromhex(ONE_DAY), _sid(1), "child", MIDNIGHT - 3_500_000 * MS, MIDNIGHT - 3_400_000 * MS, _sid(0)),
        f.span(bytes.fromhex(ACROSS), _sid(2), "root", MIDNIGHT - 10 * MS, MIDNIGHT + 50 * MS),
        f.span(bytes.fromhex(ACROSS), _sid(3), "child", MIDNIGHT + 5 * MS, MIDNIGHT + 40 * MS, _sid(2)),
        f.span(bytes.fromhex(BACKWARDS), _sid(4), "root", MIDNIGHT - 100 * MS, MIDNIGHT - 60 * MS),
        f.span(bytes.fromhex(BACKWARDS), _sid(5), "skewed", MIDNIGHT + 20 * MS, MIDNIGHT - 90 * MS, _sid(4)),
        f.span(bytes.fromhex(NEIGHBOURS), _sid(6), "before", MIDNIGHT - DAY - 3_600_000 * MS, MIDNIGHT - DAY),
        f.span(bytes.fromhex(NEIGHBOURS), _sid(7), "after", MIDNIGHT + DAY, MIDNIGHT + DAY + MS, _sid(6)),
    ]
    writer = ParquetSpanWriter(data_dir, RecentSpanIds(0), hook=Stitcher(data_dir))
    DecodeIntoParquet(writer, DecodePool(0)).consume([WalRecord(0, 1, "default", f.request(spans).SerializeToString())])
    writer.flush(0, 1)


@pytest.fixture
def store(tmp_path: Path) -> TraceStore:
    _write(tmp_path)
    return TraceStore(tmp_path)


def _reads(store: TraceStore, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """The (from, to) dates of each span read the store makes from now on."""
    reads: list[tuple[str, str]] = []
    for method in ("rows", "trace_rows"):  # a span's detail, a waterfall
        rows = getattr(store, method)

        def spy(
            project: str, query: str, params: dict[str, Any], *args: Any, read: Any = rows, **kw: Any
        ) -> list[dict[str, Any]]:
            reads.append((params["from_date"].isoformat(), params["to_date"].isoformat()))
            return read(project, query, params, *args, **kw)  # type: ignore[no-any-return]

        monkeypatch.setattr(store, method, spy)
    return reads


def _names(store: TraceStore, trace_id: str) -> list[str]:
    waterfall = store.get_trace(trace_id)
    assert waterfall is not None
    return sorted(s.name for s in waterfall.spans)


def test_a_trace_within_one_day_reads_that_day_only(store: TraceStore, monkeypatch: pytest.MonkeyPatch) -> None:
    reads = _reads(store, monkeypatch)
    assert _names(store, ONE_DAY) == ["child", "root"]
    assert reads == [("2025-12-31", "2025-12-31")]


def test_a_trace_across_midnight_reads_both_days(store: TraceStore, monkeypatch: pytest.MonkeyPatch) -> None:
    reads = _reads(store, monkeypatch)
    assert _names(store, ACROSS) == ["child", "root"]
    assert reads == [("2025-12-31", "2026-01-01")]


def test_a_span_ending_before_it_starts_on_a_later_day_is_found_with_the_margin(
    store: TraceStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = _reads(store, monkeypatch)
    assert _names(store, BACKWARDS) == ["root", "skewed"]
    assert reads == [("2025-12-31", "2025-12-31"), ("2025-12-30", "2026-01-01")]
    detail = store.get_span("default", BACKWARDS, _sid(5).hex())
    assert detail is not None and detail.name == "skewed"


def test_without_a_summary_every_partition_is_read(store: TraceStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "_summary_row", lambda project, trace_id: None)
    assert _names(store, NEIGHBOURS) == ["after", "before"]
    assert store.get_trace("ee" * 16) is None


def test_a_trace_in_several_files_of_a_day_is_read_from_all(tmp_path: Path) -> None:
    """Flushes before compaction leave a partition several part files (named to the query one by one, their
    columns matched by name): a trace's spans in each are all found, a file written after the store's first
    read too."""
    _write(tmp_path)
    store = TraceStore(tmp_path)
    try:
        assert _names(store, ONE_DAY) == ["child", "root"]
        late = f.span(bytes.fromhex(ONE_DAY), _sid(8), "late", MIDNIGHT - 3_200_000 * MS, MIDNIGHT - 3_100_000 * MS)
        writer = ParquetSpanWriter(tmp_path, RecentSpanIds(0), hook=Stitcher(tmp_path))
        record = WalRecord(1, 2, "default", f.request([late]).SerializeToString())
        DecodeIntoParquet(writer, DecodePool(0)).consume([record])
        writer.flush(1, 2)
        assert len(list(tmp_path.glob("spans/project=default/date=2025-12-31/*.parquet"))) == 2
        assert _names(store, ONE_DAY) == ["child", "late", "root"]
    finally:
        store.close()
