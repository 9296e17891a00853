"""The alerts' own small database: one SQLite file under the data dir.

Why SQLite and not the Parquet store: rules, rule states, events and the notification outbox are
tiny, updated in place and must change together — a state change, its event and its outbox
rows commit in one transaction, so a crash can neither lose a notification nor send one twice
for the same change. SQLite gives that from the standard library, durably (WAL journal,
`synchronous=FULL`). One connection serialized by a lock: writes are a few per evaluation tick.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from llmscope_collector.file_modes import make_private_dir

ALERTS_DIR = "alerts"
DB_FILE = "alerts.sqlite3"

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS rules (
        id TEXT PRIMARY KEY, project TEXT NOT NULL, body BLOB NOT NULL,
        created_at REAL NOT NULL, updated_at REAL NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS rules_by_project ON rules (project, created_at)",
    "CREATE TABLE IF NOT EXISTS rule_states (rule_id TEXT PRIMARY KEY, body BLOB NOT NULL)",
    """CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, project TEXT NOT NULL, rule_id TEXT NOT NULL,
        at REAL NOT NULL, kind TEXT NOT NULL, body BLOB NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS events_by_project ON events (project, id)",
    "CREATE INDEX IF NOT EXISTS events_by_rule ON events (rule_id, id)",
    """CREATE TABLE IF NOT EXISTS outbox (
        id TEXT PRIMARY KEY, project TEXT NOT NULL, rule_id TEXT NOT NULL, event_id INTEGER NOT NULL,
        channel BLOB NOT NULL, payload BLOB NOT NULL, status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL, last_error TEXT,
        created_at REAL NOT NULL, updated_at REAL NOT NULL, public_error TEXT)""",
    "CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_at)",
    "CREATE INDEX IF NOT EXISTS outbox_by_project ON outbox (project, status, updated_at)",
)


class AlertDb:
    """Owns `<data_dir>/alerts/alerts.sqlite3`; `read()` and `transaction()` hand out the connection."""

    def __init__(self, data_dir: Path) -> None:
        directory = data_dir / ALERTS_DIR
        make_private_dir(directory)
        path = directory / DB_FILE
        created = not path.exists()
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        if created:
            os.chmod(path, 0o600)  # it holds webhook signing secrets
        self._lock = threading.Lock()
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = FULL")
        with self.transaction() as conn:
            for statement in _SCHEMA:
                conn.execute(statement)
            _add_missing_columns(conn)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All statements inside commit together or not at all."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._conn

    def close(self) -> None:
        with self._lock:
            self._conn.close()


_ADDED_COLUMNS = (("outbox", "public_error", "TEXT"),)
"""Columns added after a table first shipped: created on open in databases made before them."""


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    for table, column, kind in _ADDED_COLUMNS:
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
