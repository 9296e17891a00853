"""The one DuckDB connection the query layer uses, with fixed session settings.

Each caller takes its own cursor (`cursor()`), which DuckDB makes safe across threads.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import duckdb

_PARAM_RE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def bind(query: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters `query` names: DuckDB refuses extra ones, and callers pass shared sets."""
    names = set(_PARAM_RE.findall(query))
    missing = names - params.keys()
    if missing:
        raise KeyError(f"query parameters not given: {sorted(missing)}")
    return {k: v for k, v in params.items() if k in names}


class Database:
    """Owns an in-memory DuckDB that reads the Parquet store."""

    def __init__(self, *, threads: int = 2, memory_limit: str = "2GB", spill_dir: Path | None = None) -> None:
        self._conn = duckdb.connect(":memory:")
        # GLOBAL: a cursor is a connection of its own, which a plain (session) SET does not reach.
        self._conn.execute("SET GLOBAL TimeZone = 'UTC'")
        self._conn.execute(f"SET threads = {int(threads)}")
        self._conn.execute("SET memory_limit = ?", [memory_limit])
        if spill_dir is not None:  # else DuckDB spills big sorts into `.tmp` of the working directory
            self._conn.execute("SET temp_directory = ?", [str(spill_dir)])
        self._lock = threading.Lock()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            return self._conn.cursor()

    def close(self) -> None:
        self._conn.close()
