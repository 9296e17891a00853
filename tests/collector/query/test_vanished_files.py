"""A read whose listed files keep vanishing (a compaction retiring its inputs one by one while the read opens
them in the same order) lists again until it reads a consistent set, instead of answering HTTP 500 after a
fixed number of tries. Real Parquet files, the store's real DuckDB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llmscope_collector.query import vanished
from llmscope_collector.query.store import TraceStore
from llmscope_collector.query.vanished import is_vanished_file, until_read

_QUERY = "SELECT sum(n) AS total FROM read_parquet($files)"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    directory.mkdir()
    return directory


@pytest.fixture
def trace_store(data: Path) -> Iterator[TraceStore]:
    opened = TraceStore(data)
    try:
        yield opened
    finally:
        opened.close()


def _files(directory: Path, count: int) -> list[Path]:
    paths = []
    for i in range(count):
        path = directory / f"part-{i:04d}.parquet"
        pq.write_table(pa.table({"n": pa.array([i + 1], pa.int64())}), path)
        paths.append(path)
    return paths


def _vanishing_listing(directory: Path, vanish: int) -> tuple[Any, list[int]]:
    """A listing function that, on each of its first `vanish` calls, removes one listed file right after
    listing it (as a compaction's roll-forward does between a reader's listing and its open)."""
    calls: list[int] = []

    def params_of() -> dict[str, Any]:
        listed = sorted(str(p) for p in directory.glob("*.parquet"))
        calls.append(len(listed))
        if len(calls) <= vanish:
            Path(listed[0]).unlink()  # (the first file DuckDB opens: gone before it does)
        return {"files": listed}

    return params_of, calls


def test_a_read_lists_again_while_files_keep_vanishing(data: Path, trace_store: TraceStore) -> None:
    _files(data, 12)
    params_of, calls = _vanishing_listing(data, vanish=8)  # more than the old fixed 3 retries
    rows = trace_store._retried(_QUERY, params_of)
    # the first 8 files were retired one per attempt; the ninth listing (files 9..12) reads whole
    assert rows == [{"total": 9 + 10 + 11 + 12}]
    assert calls == [12, 11, 10, 9, 8, 7, 6, 5, 4]


def test_a_file_that_never_opens_fails_after_the_patience(
    data: Path, trace_store: TraceStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vanished, "VANISHED_FILE_PATIENCE_S", 0.2)
    (present,) = _files(data, 1)
    calls: list[int] = []

    def params_of() -> dict[str, Any]:
        calls.append(1)
        return {"files": [str(present), str(data / "never-there.parquet")]}

    with pytest.raises(duckdb.IOException, match="never-there"):
        trace_store._retried(_QUERY, params_of)
    assert len(calls) >= 2  # it did list again before giving up


def test_other_io_errors_are_not_retried(data: Path, trace_store: TraceStore) -> None:
    bad = data / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    calls: list[int] = []

    def params_of() -> dict[str, Any]:
        calls.append(1)
        return {"files": [str(bad)]}

    with pytest.raises(duckdb.Error):
        trace_store._retried(_QUERY, params_of)
    assert calls == [1]


def _footer_rows(directory: Path, vanish: int, calls: list[int]) -> int:
    """The rows of the directory's files by their footers (as `SpanRows` counts them), the first listed file
    removed right after each of the first `vanish` listings (a compaction retiring its inputs meanwhile)."""
    listed = sorted(directory.glob("*.parquet"))
    calls.append(len(listed))
    if len(calls) <= vanish:
        listed[0].unlink()
    return sum(pq.read_metadata(path).num_rows for path in listed)


def test_footer_reads_list_again_while_files_vanish(data: Path) -> None:
    _files(data, 10)
    calls: list[int] = []
    assert until_read(lambda: _footer_rows(data, 6, calls)) == 4  # pyarrow's FileNotFoundError, 6 times
    assert calls == [10, 9, 8, 7, 6, 5, 4]


def test_a_footer_that_never_opens_fails_after_the_patience(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vanished, "VANISHED_FILE_PATIENCE_S", 0.2)
    calls: list[int] = []

    def read() -> int:
        calls.append(1)
        return pq.read_metadata(data / "never-there.parquet").num_rows

    with pytest.raises(FileNotFoundError):
        until_read(read)
    assert len(calls) >= 2


def _duckdb_error(path: Path) -> duckdb.Error:
    with pytest.raises(duckdb.Error) as caught:
        duckdb.connect().execute("SELECT * FROM read_parquet($p)", {"p": str(path)}).fetchall()
    return caught.value


def test_what_counts_as_a_vanished_file(data: Path) -> None:
    bad = data / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    assert is_vanished_file(_duckdb_error(data / "gone.parquet"))  # named, not there
    assert is_vanished_file(_duckdb_error(data / "gone-*.parquet"))  # a glob matching nothing
    assert is_vanished_file(FileNotFoundError(2, "No such file or directory"))
    assert not is_vanished_file(_duckdb_error(bad))  # there, but not Parquet: not retried
    assert not is_vanished_file(OSError(28, "No space left on device"))
    assert not is_vanished_file(ValueError("No such file"))  # only I/O errors say a file vanished


@pytest.fixture
def read_depths(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How deep in `until_read` each of its calls started (1: not inside another), for every reader module."""
    from llmscope_collector.query import index, partials, store

    depths: list[int] = []
    active = [0]
    original = vanished.until_read

    def tracked(read: Any) -> Any:
        active[0] += 1
        depths.append(active[0])
        try:
            return original(read)
        finally:
            active[0] -= 1

    for module in (vanished, store, index, partials):
        monkeypatch.setattr(module, "until_read", tracked)
    monkeypatch.setattr(vanished, "VANISHED_FILE_PATIENCE_S", 0.2)
    return depths


def _dangling(data: Path, dataset: str) -> Path:
    """A listed Parquet file that never opens (a symlink to nothing) in a partition of `dataset`."""
    partition = data / dataset / "project=default" / "date=2026-12-05"
    partition.mkdir(parents=True)
    link = partition / "gone.parquet"
    link.symlink_to(data / "nowhere.parquet")
    return link


def test_a_waterfall_read_and_its_refs_share_one_patience(
    data: Path, trace_store: TraceStore, read_depths: list[int]
) -> None:
    """The located spans' read retries the rows and the refs together: the rows' read inside is not retried
    on its own (a file that never opens fails after one patience, not one within another)."""
    import datetime as dt

    _dangling(data, "spans")
    day = dt.date(2026, 12, 5)
    with pytest.raises(duckdb.IOException, match=r"gone\.parquet"):
        trace_store._located_spans("default", "ab" * 16, {"from_date": day, "to_date": day})
    assert read_depths == [1]


def test_the_cost_partials_and_the_index_they_hold_share_one_patience(
    data: Path, trace_store: TraceStore, read_depths: list[int]
) -> None:
    _dangling(data, "traces")
    with pytest.raises(duckdb.IOException, match=r"gone\.parquet"):
        trace_store.partials.refresh()
    assert read_depths == [1]
    with pytest.raises(duckdb.IOException, match=r"gone\.parquet"):
        trace_store.index.refresh()  # on its own, the index retries its refresh itself
    assert read_depths == [1, 1]
