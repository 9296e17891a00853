"""The query layer's DuckDB session settings reach every cursor, not only the connection that set them."""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
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
