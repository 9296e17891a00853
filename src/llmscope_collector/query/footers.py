"""`FooterWarmer`: parses the newest span files' Parquet footers into the lookup database's cache, in the background.

A waterfall reads one trace's rows from its day's span file on the lookup database, which keeps each file's
parsed footer (`Database(footer_cache=True)`). The first read of a file by that database parses it: at 10M
spans a day's compacted file has 21 row groups of 36 columns, a ~180 kB footer, ~8 ms of CPU. Without warming,
that parse lands on a user's request: the first waterfall of each day after the server starts, and the first
after compaction replaced a day's files.

The warmer starts on the store's first read of its summary index (someone opened the trace list or a trace;
a collector that only ingests never opens the lookup database, ~30 MB), then re-lists the span partitions
every `recheck_s` (a `stat` per partition directory, `query.index.DatasetFiles`) and reads the footers of the
files it has not read yet: those of each project's newest `dates` dates, the newest first, one file per
statement. A cached footer costs ~1.2 MB of resident memory at 10M spans (DuckDB bounds the cache by the
lookup database's memory limit and evicts the least recently used).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path

import duckdb

from llmscope_collector.query import sql
from llmscope_collector.query.db import Database
from llmscope_collector.query.index import DatasetFiles

log = logging.getLogger(__name__)

WARM_DATES = 31
"""Dates warmed per project, the newest: a month covers the default retention (30 days) whole."""
RECHECK_S = 5.0
"""How often an active warmer lists the span partitions again (a new day's file, a compaction's output)."""
_CHUNK = 64  # files warmed before the listing is looked at again (a pass's work is bounded)


class FooterWarmer:
    """Keeps the footers of each project's newest span files parsed in `db`'s cache (see the module docstring)."""

    def __init__(
        self, spans_root: Path, db: Database, *, dates: int = WARM_DATES, recheck_s: float = RECHECK_S
    ) -> None:
        self._files = DatasetFiles(spans_root)
        self._db = db
        self._dates = dates
        self._recheck_s = recheck_s
        self._warmed: set[str] = set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.files_warmed = 0  # how many footers it parsed (tests, diagnostics)
        self.passes = 0  # listings done (a pass with nothing new reads nothing)

    def start(self) -> None:
        """Start warming in the background (idempotent; cheap to call on every read)."""
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="llmscope-footer-warmer", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end after the statement in flight, without waiting (what a store that is
        dropped unclosed does: its finalizer may run on any thread)."""
        self._stop.set()

    def close(self) -> None:
        """Stop after the statement in flight (one file's footer), and wait for that."""
        with self._lock:
            self._stop.set()
            thread = self._thread
        if thread is not None:
            thread.join()

    @property
    def running(self) -> bool:
        """Whether its thread is alive (started, not yet stopped)."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.warm_new()
            except Exception:  # a warmer must never take anything down: the lookups just parse on demand
                log.exception("warming span file footers failed; retrying in %.0f s", self._recheck_s)
            self._stop.wait(self._recheck_s)

    def warm_new(self) -> int:
        """Parse the footers of the wanted files not parsed yet; how many were (also the thread's one pass)."""
        current = self._files.current()
        self._warmed &= current  # (files compacted or deleted since)
        self.passes += 1
        todo = [path for path in newest_dates(current, self._dates) if path not in self._warmed]
        done = 0
        for start in range(0, len(todo), _CHUNK):
            if self._stop.is_set():
                break
            done += self._warm(todo[start : start + _CHUNK])
        return done

    def _warm(self, paths: list[str]) -> int:
        done = 0
        cur = self._db.cursor()
        try:
            for path in paths:
                if self._stop.is_set():
                    break
                try:
                    cur.execute(sql.FILE_FOOTER, {"file": path}).fetchall()
                except duckdb.IOException:  # vanished since the listing (compaction, retention): nothing to warm
                    continue
                self._warmed.add(path)
                done += 1
        finally:
            cur.close()
        self.files_warmed += done
        return done


def newest_dates(paths: Iterable[str], dates: int) -> list[str]:
    """The paths (`.../project=P/date=D/name`) in each project's newest `dates` dates, newest date first."""
    by_project: dict[str, dict[str, list[str]]] = {}
    for path in paths:
        date_dir = os.path.dirname(path)
        project_dir, date = os.path.split(date_dir)
        by_project.setdefault(project_dir, {}).setdefault(date, []).append(path)
    picked: list[tuple[str, str]] = []
    for days in by_project.values():
        for date in sorted(days, reverse=True)[:dates]:
            picked.extend((date, path) for path in days[date])
    picked.sort(reverse=True)
    return [path for _, path in picked]
