"""The query layer's DuckDB session settings reach every cursor, not only the connection that set them."""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llmscope_collector.query.db import Database


def test_every_cursor_reads_time_in_utc_whatever_the_process_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        db = Database()
        try:
            cur = db.cursor()
            query = "SELECT current_setting('TimeZone'), strftime(to_timestamp(0), '%H')"
            [(zone, hour)] = cur.execute(query).fetchall()
            cur.close()
        finally:
            db.close()
    finally:
        monkeypatch.undo()
        time.tzset()
    assert (zone, hour) == ("UTC", "00")


def test_the_database_opens_on_first_use_with_its_settings(tmp_path: Path) -> None:
    """A server starts several query databases (spans, export, scores, alerts) and may never query some:
    each opens on its first cursor, with the settings it was made with, and refuses one once closed."""
    spill = tmp_path / "spill"
    unused = Database()
    unused.close()  # never opened: nothing to close
    db = Database(threads=1, memory_limit="256MB", spill_dir=spill)
    cur = db.cursor()
    names = ("threads", "memory_limit", "temp_directory")
    values = [cur.execute(f"SELECT current_setting('{name}')").fetchone() for name in names]
    cur.close()
    db.close()
    with duckdb.connect() as plain:  # how this DuckDB shows a 256MB limit
        limit = plain.execute("SET memory_limit = '256MB'").execute("SELECT current_setting('memory_limit')").fetchone()
    assert values == [(1,), limit, (str(spill),)]
    with pytest.raises(duckdb.ConnectionException):
        db.cursor()


def test_a_footer_cache_sees_a_file_replaced_under_its_name(tmp_path: Path) -> None:
    """The point lookups' footer cache (DuckDB's `parquet_metadata_cache`, on where DuckDB bounds it): every
    cursor has it, and a file replaced under the same name is read anew, not through its old footer."""
    path = tmp_path / "spans.parquet"
    db = Database(threads=1, footer_cache=True)
    cur = db.cursor()
    try:
        for rows in (3, 5):
            pq.write_table(pa.table({"n": list(range(rows))}), path)
            [(count, total)] = cur.execute("SELECT count(*), sum(n) FROM read_parquet($p)", {"p": str(path)}).fetchall()
            assert (count, total) == (rows, rows * (rows - 1) // 2)
        [(cached,)] = db.cursor().execute("SELECT current_setting('parquet_metadata_cache')").fetchall()
    finally:
        cur.close()
        db.close()
    major, minor = (int(p) for p in duckdb.__version__.split(".")[:2])
    assert cached is ((major, minor) >= (1, 5))
