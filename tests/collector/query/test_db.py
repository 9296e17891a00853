"""The query layer's DuckDB session settings reach every cursor, not only the connection that set them."""

from __future__ import annotations

import time

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
