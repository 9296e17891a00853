"""The one DuckDB connection the query layer uses, with fixed session settings.

Each caller takes its own cursor (`cursor()`), which DuckDB makes safe across threads.
"""

from __future__ import annotations

import threading

import duckdb


class Database:
    """Owns an in-memory DuckDB that reads the Parquet store."""

    def __init__(self, *, threads: int = 2, memory_limit: str = "2GB") -> None:
        self._conn = duckdb.connect(":memory:")
        self._conn.execute("SET TimeZone = 'UTC'")
        self._conn.execute(f"SET threads = {int(threads)}")
        self._conn.execute("SET memory_limit = ?", [memory_limit])
        self._lock = threading.Lock()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            return self._conn.cursor()

    def close(self) -> None:
        self._conn.close()
