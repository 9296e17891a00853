"""Cost partials: per span file, counted LLM calls pre-summed by hour and key columns, in DuckDB memory.

A cost roll-up over all spans scans every span file (1.6 s at 10M spans). Span files are
immutable (compaction, deletion and retention replace or remove whole files), so the sums of a
file never change, except through late duplicate marks (`llm_dups`), which live in the same
(project, date) partition as the span they mark. The `llm_partials` table therefore keeps one
set of sums per file, by (project, date, hour, model, provider, service, prompt name, version):

- a file that appears is summed once; a file that disappears takes its rows with it;
- when a partition's `llm_dups` files change, that partition's span files are summed again;

and a roll-up whose keys and filters are among those columns re-sums the partials of the whole
hours of its range, plus a scan of the spans of its partial first and last hours. Integer and
decimal sums of sums are exact, so the result equals the scan's to the last digit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import threading
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmscope_collector.query import sql
from llmscope_collector.query.db import Database
from llmscope_collector.query.index import DatasetFiles
from llmscope_collector.query.vanished import until_read
from llmscope_collector.storage.layout import SPANS_DIR

if TYPE_CHECKING:
    from llmscope_collector.query.index import SummaryIndex

HOUR_NS = 3600 * 10**9
_SKEW_NS = 10**6  # span partitions are dated from a float of the start time: look a millisecond beyond
PARTIAL_GROUPS = frozenset(sql.PARTIAL_KEYS)
PARTIAL_FILTERS = frozenset(sql.PARTIAL_FILTERS)


def _partition_of(path: str) -> tuple[str, str]:
    """(`project=…`, `date=…`) of a file in any dataset: the key shared by its spans and its dup marks."""
    date_dir = os.path.dirname(path)
    return os.path.basename(os.path.dirname(date_dir)), os.path.basename(date_dir)


def _by_partition(files: frozenset[str] | set[str]) -> dict[tuple[str, str], frozenset[str]]:
    grouped: dict[tuple[str, str], set[str]] = defaultdict(set)
    for path in files:
        grouped[_partition_of(path)].add(path)
    return {key: frozenset(paths) for key, paths in grouped.items()}


@dataclasses.dataclass(frozen=True)
class HourSplit:
    """A `[from_ns, to_ns)` range as whole hours `[hours_from, hours_to)` and the two edge ranges around them."""

    hours_from: int
    hours_to: int
    edges: tuple[tuple[int, int], tuple[int, int]]

    @classmethod
    def of(cls, from_ns: int, to_ns: int) -> HourSplit:
        hours_from = -(-from_ns // HOUR_NS) * HOUR_NS
        hours_to = to_ns // HOUR_NS * HOUR_NS
        if hours_from >= hours_to:  # no whole hour: all of it is an edge
            return cls(0, 0, ((from_ns, to_ns), (0, 0)))
        return cls(hours_from, hours_to, ((from_ns, hours_from), (hours_to, to_ns)))

    def params(self) -> dict[str, Any]:
        (e1_from, e1_to), (e2_from, e2_to) = self.edges
        return {
            "hours_from_ns": self.hours_from,
            "hours_to_ns": self.hours_to,
            "edge1_from_ns": e1_from,
            "edge1_to_ns": e1_to,
            "edge2_from_ns": e2_from,
            "edge2_to_ns": e2_to,
        }

    def edge_dates(self) -> list[str]:
        """The date partitions that can hold spans of the edges (none when both are empty)."""
        dates: set[str] = set()
        for start, end in self.edges:
            if start >= end:
                continue
            first, last = _utc_day(start - _SKEW_NS), _utc_day(end - 1 + _SKEW_NS)
            dates.update((first + dt.timedelta(days=n)).isoformat() for n in range((last - first).days + 1))
        return sorted(dates)


def _utc_day(ns: int) -> dt.date:
    return dt.datetime.fromtimestamp(max(0, ns) // 10**9, tz=dt.timezone.utc).date()


class CostPartials:
    """Owns the `llm_partials` table of `db`; `refresh()` before reading it (see the module docstring)."""

    def __init__(self, data_dir: Path, db: Database, index: SummaryIndex) -> None:
        self._data_dir = data_dir
        self._db = db
        self._index = index
        self._lock = threading.Lock()
        self._files = DatasetFiles(data_dir / SPANS_DIR)
        self._loaded: frozenset[str] = frozenset()
        self._dups: dict[tuple[str, str], frozenset[str]] = {}
        self.files_summed = 0
        db.on_open([sql.CREATE_PARTIALS])

    def refresh(self) -> None:
        """Bring the partials (and the summary index they depend on) up to date with the files on disk."""
        with self._lock:
            until_read(self._refresh)  # listed again where a file vanished between listing and reading

    def _refresh(self) -> None:
        with self._index.held() as dup_files:
            dups = _by_partition(dup_files)
            stale = {key for key in dups.keys() | self._dups.keys() if dups.get(key) != self._dups.get(key)}
            files = self._files.current()
            resum = {path for path in self._loaded & files if _partition_of(path) in stale}
            drop, add = (self._loaded - files) | resum, (files - self._loaded) | resum
            steps = ([(sql.DROP_PARTIALS, sorted(drop))] if drop else []) + (
                [(sql.LOAD_PARTIALS, sorted(add))] if add else []
            )
            if steps:
                self._transaction(steps)
                self.files_summed += len(add)
            self._loaded, self._dups = files, dups

    def _transaction(self, steps: list[tuple[str, list[str]]]) -> None:
        """Each statement with its `$files`, all or nothing (a reader sees the old partials or the new)."""
        cur = self._db.cursor()
        try:
            cur.execute("BEGIN TRANSACTION")
            for statement, files in steps:
                cur.execute(statement, {"files": files})
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        finally:
            cur.close()
