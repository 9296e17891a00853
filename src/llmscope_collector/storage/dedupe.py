"""Recently stored span ids, so a client retry or a replay does not write the same span twice.

OTLP clients resend a whole request when an ack is lost, so duplicates arrive close together in
time: a bounded FIFO window of (project, trace_id, span_id) keys catches them without unbounded
memory. Compaction later removes any duplicate the window missed. Keys include the project so one
tenant cannot suppress another tenant's spans by sending their ids.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from pathlib import Path

import pyarrow.parquet as pq

from llmscope_collector.storage.layout import iter_partitions, parquet_files, wal_range_of

log = logging.getLogger(__name__)


def span_key(project: str, trace_id: str, span_id: str) -> str:
    return f"{project}/{trace_id}{span_id}"


class RecentSpanIds:
    """A bounded set of span keys; the oldest key is forgotten first. Not thread-safe (one consumer)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._keys: set[str] = set()
        self._order: deque[str] = deque()

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def add(self, key: str) -> bool:
        """Remember `key`; False when it was already known (a duplicate)."""
        if self.capacity <= 0:
            return True
        if key in self._keys:
            return False
        self._keys.add(key)
        self._order.append(key)
        if len(self._order) > self.capacity:
            self._keys.discard(self._order.popleft())
        return True

    def add_all(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.add(key)


def seed_from_files(recent: RecentSpanIds, data_dir: Path) -> int:
    """Fill the window with the ids of the newest span files (newest WAL range first); returns ids read.

    After a restart a client may resend a request whose first copy is already in Parquet; seeding
    makes that retry a duplicate the window recognizes.
    """
    budget = recent.capacity
    if budget <= 0:
        return 0
    candidates = []
    for partition in iter_partitions(data_dir):
        for path in parquet_files(partition.path):
            wal_range = wal_range_of(path.name)
            candidates.append((wal_range[1] if wal_range else -1, _mtime(path), partition.project, path))
    candidates.sort(reverse=True)
    loaded: list[list[str]] = []
    for _end, _mtime_ns, project, path in candidates:
        if budget <= 0:
            break
        keys = _file_keys(project, path)
        loaded.append(keys[-budget:])
        budget -= len(keys)
    for keys in reversed(loaded):  # oldest first, so the newest stay longest
        recent.add_all(keys)
    return sum(len(k) for k in loaded)


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return 0


def _file_keys(project: str, path: Path) -> list[str]:
    try:
        table = pq.read_table(path, columns=["trace_id", "span_id"])
    except (OSError, ValueError) as exc:
        log.warning("cannot read span ids from %s for duplicate detection: %s", path, exc)
        return []
    traces = table.column("trace_id").to_pylist()
    spans = table.column("span_id").to_pylist()
    return [span_key(project, t, s) for t, s in zip(traces, spans, strict=True)]
