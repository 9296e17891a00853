"""The query layer's DuckDB session settings reach every cursor, not only the connection that set them."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

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


def test_a_lookup_without_the_skipped_planning_passes_reads_the_same_rows_of_fewer_row_groups(tmp_path: Path) -> None:
    """Point lookups skip optimizer passes (`disabled_optimizers`): every cursor has them off, a trace's rows
    over date partitions of several row groups are those a fully planned query reads, and the scan still
    prunes the row groups and partitions that cannot hold the trace."""
    for day, first in (("2026-01-01", 0), ("2026-01-02", 30)):
        part = tmp_path / f"date={day}"
        part.mkdir()
        ids = [f"{t:032x}" for t in range(first, first + 30) for _ in range(3)]
        pq.write_table(pa.table({"trace_id": ids, "n": list(range(len(ids)))}), part / "f.parquet", row_group_size=9)
    query = """SELECT trace_id, n, date FROM read_parquet($glob, hive_partitioning = true, union_by_name = true)
               WHERE trace_id = $trace_id AND date >= $from_date AND date <= $to_date"""
    skipping = Database(threads=1, disabled_optimizers=("join_order", "statistics_propagation"))
    planning = Database(threads=1)
    profile = tmp_path / "profile.json"
    try:
        [(disabled,)] = skipping.cursor().execute("SELECT current_setting('disabled_optimizers')").fetchall()
        assert disabled == "join_order,statistics_propagation"
        for trace in (0, 7, 31, 59, 60):
            params: dict[str, Any] = {"glob": str(tmp_path / "date=*" / "*.parquet"), "trace_id": f"{trace:032x}"}
            params |= {"from_date": dt.date(2026, 1, 1), "to_date": dt.date(2026, 1, 2)}
            got, want = (db.cursor().execute(query, params).fetchall() for db in (skipping, planning))
            assert sorted(got) == sorted(want) and len(got) == (3 if trace < 60 else 0)
        cur = skipping.cursor()
        cur.execute("PRAGMA enable_profiling = 'json'").execute("PRAGMA profiling_mode = 'detailed'")
        cur.execute("SET profiling_output = ?", [str(profile)])
        cur.execute(query, {**params, "trace_id": f"{7:032x}", "to_date": dt.date(2026, 1, 1)}).fetchall()
        cur.execute("PRAGMA disable_profiling")
    finally:
        skipping.close()
        planning.close()
    scanned = json.loads(profile.read_text())["query"]  # (one file of the two, one row group of its ten)
    assert (scanned["total_row_groups_scanned"], scanned["total_row_groups_to_scan"]) == (1, 10)
