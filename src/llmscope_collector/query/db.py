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


def _bounded_object_cache() -> bool:
    """Whether DuckDB's object cache (where `parquet_metadata_cache` keeps parsed footers) is an LRU under the
    connection's memory limit: from 1.5 on; before, it kept every file's footer for the life of the process."""
    major, minor = (int(part) for part in re.findall(r"\d+", duckdb.__version__)[:2])
    return (major, minor) >= (1, 5)


def bind(query: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters `query` names: DuckDB refuses extra ones, and callers pass shared sets."""
    names = set(_PARAM_RE.findall(query))
    missing = names - params.keys()
    if missing:
        raise KeyError(f"query parameters not given: {sorted(missing)}")
    return {k: v for k, v in params.items() if k in names}


class Database:
    """Owns an in-memory DuckDB that reads the Parquet store, opened by the first `cursor()`.

    Opened on first use, not when the server starts: a DuckDB instance costs ~30 MB of resident
    memory on its first query (mostly code pages of its library) and ~4 MB more for each further
    instance, and a collector that only ingests never queries some of them (export, scores, alerts
    with no rules) or any (no one reads the API). docs/memory.md has the idle figures."""

    def __init__(
        self,
        *,
        threads: int = 2,
        memory_limit: str = "2GB",
        spill_dir: Path | None = None,
        footer_cache: bool = False,
        disabled_optimizers: tuple[str, ...] = (),
    ) -> None:
        """`footer_cache`: keep the parsed Parquet footers of the files read (key: path and modification time;
        a file is never rewritten in place), evicted under `memory_limit`; only where DuckDB bounds that cache.
        `disabled_optimizers`: DuckDB optimizer passes this instance's queries skip (they plan, not compute: a
        result is the same without them)."""
        self._threads = int(threads)
        self._memory_limit = memory_limit
        self._spill_dir = spill_dir
        self._footer_cache = footer_cache
        self._disabled_optimizers = ",".join(disabled_optimizers)
        self._conn: duckdb.DuckDBPyConnection | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._setup: list[str] = []

    def on_open(self, statements: list[str]) -> None:
        """Run `statements` (the tables an owner of this database reads) when it opens, or now if open:
        creating them in the constructor would open every instance at start."""
        with self._lock:
            self._setup.extend(statements)
            if self._conn is not None:
                _run(self._conn, statements)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._conn is None:
                if self._closed:
                    raise duckdb.ConnectionException("the query database is closed")
                self._conn = self._open()
            return self._conn.cursor()

    def _open(self) -> duckdb.DuckDBPyConnection:
        conn = duckdb.connect(":memory:")
        # GLOBAL: a cursor is a connection of its own, which a plain (session) SET does not reach.
        conn.execute("SET GLOBAL TimeZone = 'UTC'")
        conn.execute(f"SET threads = {self._threads}")
        conn.execute("SET memory_limit = ?", [self._memory_limit])
        if self._spill_dir is not None:  # else DuckDB spills big sorts into `.tmp` of the working directory
            conn.execute("SET temp_directory = ?", [str(self._spill_dir)])
        if self._footer_cache and _bounded_object_cache():  # here: reading duckdb.__version__ imports DuckDB
            conn.execute("SET GLOBAL parquet_metadata_cache = true")
        if self._disabled_optimizers:
            conn.execute("SET GLOBAL disabled_optimizers = ?", [self._disabled_optimizers])
        _run(conn, self._setup)
        return conn

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()


def _run(conn: duckdb.DuckDBPyConnection, statements: list[str]) -> None:
    cur = conn.cursor()
    try:
        for statement in statements:
            cur.execute(statement)
    finally:
        cur.close()
