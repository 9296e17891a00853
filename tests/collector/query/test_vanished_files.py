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

from llmscope_collector.query import store as store_module
from llmscope_collector.query.store import TraceStore

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
    monkeypatch.setattr(store_module, "_VANISHED_FILE_PATIENCE_S", 0.2)
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
