"""The summary index: per-trace summaries, per-session summaries and late duplicate marks, in DuckDB memory.

List views (traces, sessions) must answer in ≤100 ms at millions of spans, so they never scan
spans: they read the `traces` table, the merge of the stitcher's summary deltas. The table is kept
current incrementally: each refresh lists the delta files (re-scanning only partition directories
whose mtime changed), loads the new files and merges them into the affected rows. When files
disappear (deletion, retention) the table is rebuilt, except for compaction: a compacted file
names its inputs in its metadata, and if those were all loaded it brings nothing new.

The `sessions` table follows `traces` in the same transaction: a merge recomputes only the sessions
of the merged traces (before and after), a rebuild recomputes all of them. The session list then
reads one row per session instead of grouping every trace summary of the project per request.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow.parquet as pq

from llmscope_collector.query import sql
from llmscope_collector.query.db import Database, bind
from llmscope_collector.query.vanished import until_read
from llmscope_collector.storage.layout import LLM_DUPS_DIR, TRACES_DIR

log = logging.getLogger(__name__)

COMPACTED_FROM = b"llmscope.compacted_from"


class DatasetFiles:
    """The Parquet files of one dataset, listed incrementally by partition directory mtime."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._dirs: dict[str, tuple[int, frozenset[str]]] = {}  # directory: (mtime, its files' paths)
        self._all: frozenset[str] | None = None  # the union of those, rebuilt only when one changes

    def current(self) -> frozenset[str]:
        """Every file's path; the set is built again only when a partition directory changed (every waterfall
        refreshes the index: at 10M spans a union of 240 paths each time was ~0.4 ms of its CPU)."""
        changed = False
        seen: set[str] = set()
        for date_dir in self._partition_dirs():
            seen.add(date_dir)
            try:
                mtime = os.stat(date_dir).st_mtime_ns
            except FileNotFoundError:
                changed |= self._dirs.pop(date_dir, None) is not None
                continue
            cached = self._dirs.get(date_dir)
            if cached is None or cached[0] != mtime:
                paths = frozenset(os.path.join(date_dir, name) for name in parquet_names(date_dir))
                self._dirs[date_dir] = (mtime, paths)
                changed = True
        for gone in set(self._dirs) - seen:
            del self._dirs[gone]
            changed = True
        if changed or self._all is None:
            self._all = frozenset().union(*(paths for _, paths in self._dirs.values()))
        return self._all

    def _partition_dirs(self) -> list[str]:
        dirs: list[str] = []
        for project in subdirs(str(self._root), "project="):
            dirs.extend(subdirs(project, "date="))
        return dirs


def subdirs(path: str, prefix: str) -> list[str]:
    """The directories in `path` named `prefix...` (none where `path` is gone)."""
    try:
        return [e.path for e in os.scandir(path) if e.name.startswith(prefix) and e.is_dir()]
    except FileNotFoundError:
        return []


def parquet_names(directory: str) -> list[str]:
    """The names of the Parquet files in `directory` (temporary files end otherwise; none where it is gone)."""
    try:
        return [e.name for e in os.scandir(directory) if e.name.endswith(".parquet")]
    except FileNotFoundError:
        return []


def _compacted_inputs(path: str) -> set[str] | None:
    """The input files a compacted file replaced (same directory), or None for a plain file."""
    try:
        meta = pq.read_metadata(path).metadata or {}
    except OSError:
        return None
    raw = meta.get(COMPACTED_FROM)
    if raw is None:
        return None
    return {os.path.join(os.path.dirname(path), name) for name in json.loads(raw)}


class SummaryIndex:
    """Owns the `traces` and `llm_dups` tables of `db`; `refresh()` before reading them."""

    def __init__(self, data_dir: Path, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._files = {name: DatasetFiles(data_dir / name) for name in (TRACES_DIR, LLM_DUPS_DIR)}
        self._loaded: dict[str, set[str]] = {name: set() for name in self._files}
        self.full_reloads = 0
        db.on_open([sql.CREATE_TRACES, sql.INDEX_TRACES, sql.CREATE_LLM_DUPS, sql.CREATE_SESSIONS])

    def refresh(self) -> None:
        """Bring the tables up to date with the files on disk."""
        with self._lock:
            self._refresh_all()

    @contextmanager
    def held(self) -> Iterator[frozenset[str]]:
        """Refresh, then keep the tables as they are (no refresh, no invalidation) until the block ends.

        Yields the `llm_dups` files loaded: a cache derived from `llm_dups` (query.partials) records
        which marks it was computed with, and this is the only way to know they are the table's. Its refresh
        is not retried: a vanished file raises, and the caller retries its whole read (`CostPartials.refresh`
        does), so the two share one patience instead of one nested in the other.
        """
        with self._lock:
            self._refresh_datasets()
            yield frozenset(self._loaded[LLM_DUPS_DIR])

    def _refresh_all(self) -> None:
        """Every dataset's table brought up to date, listed again where a file vanished between its listing
        and its read (`vanished.until_read`)."""
        until_read(self._refresh_datasets)

    def _refresh_datasets(self) -> None:
        """Every dataset's table brought up to date, once (a vanished file raises)."""
        for dataset in self._files:
            self._refresh(dataset)

    def invalidate(self) -> None:
        """Forget what was loaded: the next refresh rebuilds the tables (after a deletion)."""
        with self._lock:
            for loaded in self._loaded.values():
                loaded.clear()
            self._run([sql.CLEAR_TRACES, sql.CLEAR_SESSIONS, sql.CLEAR_DUPS], {})

    def _refresh(self, dataset: str) -> None:
        files = self._files[dataset].current()
        loaded = self._loaded[dataset]
        added, removed = set(files - loaded), loaded - files
        if added and not loaded:  # the first load: one build, no merge into (empty) rows
            self._full(dataset, files)
            return
        if removed:
            remaining = self._absorb_compaction(added, removed, loaded)
            if remaining is None:
                self._full(dataset, files)
                return
            added = remaining
            loaded -= removed
        if added:
            self._incremental(dataset, sorted(added))
            loaded |= added

    def _absorb_compaction(self, added: set[str], removed: set[str], loaded: set[str]) -> set[str] | None:
        """Added files minus compaction outputs whose inputs were all loaded; None if a rebuild is needed."""
        replaced: set[str] = set()
        remaining = set(added)
        for path in added:
            inputs = _compacted_inputs(path)
            if inputs is not None and inputs <= loaded:
                replaced |= inputs
                remaining.discard(path)
                loaded.add(path)
        return remaining if removed <= replaced else None

    def _full(self, dataset: str, files: frozenset[str]) -> None:
        self.full_reloads += 1
        if dataset == LLM_DUPS_DIR:
            self._run([sql.LOAD_DUPS_FULL] if files else [sql.CLEAR_DUPS], {"files": sorted(files)})
        elif files:
            self._run([sql.LOAD_TRACES_FULL, sql.INDEX_TRACES, *sql.LOAD_SESSIONS_FULL], {"files": sorted(files)})
        else:
            self._run([sql.CLEAR_TRACES, sql.CLEAR_SESSIONS], {})
        self._loaded[dataset] = set(files)

    def _incremental(self, dataset: str, files: list[str]) -> None:
        if dataset == LLM_DUPS_DIR:
            self._run([sql.APPEND_DUPS], {"files": files})
            return
        # One cursor for all: the staging tables are temporary (per connection).
        self._run(
            [
                sql.STAGE_DELTAS,
                sql.MERGE_STAGED,
                sql.STAGE_TOUCHED_SESSIONS,
                *sql.REPLACE_MERGED,
                *sql.REPLACE_TOUCHED_SESSIONS,
            ],
            {"files": files},
        )

    def _run(self, statements: list[str], params: dict[str, object]) -> None:
        cur = self._db.cursor()
        try:
            cur.execute("BEGIN TRANSACTION")
            for statement in statements:
                cur.execute(statement, bind(statement, params) if "$" in statement else None)
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        finally:
            cur.close()
