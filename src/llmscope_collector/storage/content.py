"""The content store: captured prompts/completions, one row per distinct item per partition.

Every LLM call of a chat resends the whole history, so storing content per span grows with the
square of the chat length. Items are content-addressed (`hash` of the normalized JSON body) and a
(project, date) partition stores each hash once: a window of recently written hashes skips repeats,
and compaction drops any duplicate the window missed. Partitions match the span partitions, so a
span's content is always in its own partition and retention drops both together.

Files are written durably (temp + fsync + rename) before the spans that reference them, so a crash
never leaves a span pointing at missing content.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from llmscope_collector.storage.layout import partition_dir
from llmscope_collector.storage.parquet_writer import write_durably
from llmscope_collector.storage.schema import CONTENT_SCHEMA

CONTENT_DIR = "content"


class ContentStore:
    """Writes content items; single-threaded (the flush thread)."""

    def __init__(self, data_dir: Path, *, recent_capacity: int = 500_000) -> None:
        self._data_dir = data_dir
        self._capacity = recent_capacity
        self._recent: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self.items_written = 0
        self.items_skipped = 0
        self.bytes_written = 0

    def write(self, project: str, date: str, items: Iterable[tuple[str, str]]) -> int:
        """Store the `(hash, body)` items not stored yet in this partition; returns how many were new."""
        new: dict[str, str] = {}
        for content_hash, body in items:
            key = (project, date, content_hash)
            if key in self._recent or content_hash in new:
                self.items_skipped += 1
                continue
            new[content_hash] = body
        if not new:
            return 0
        self._write_file(project, date, new)
        for content_hash in new:
            self._remember((project, date, content_hash))
        self.items_written += len(new)
        return len(new)

    def _remember(self, key: tuple[str, str, str]) -> None:
        self._recent[key] = None
        if len(self._recent) > self._capacity:
            self._recent.popitem(last=False)

    def _write_file(self, project: str, date: str, items: dict[str, str]) -> None:
        hashes = sorted(items)
        bodies = [items[h] for h in hashes]
        table = pa.Table.from_pydict(
            {
                "hash": hashes,
                "body": bodies,
                "bytes": [len(b.encode()) for b in bodies],
                "first_seen_ns": [time.time_ns()] * len(hashes),
            },
            schema=CONTENT_SCHEMA,
        )
        self.bytes_written += int(pc.sum(table["bytes"]).as_py() or 0)
        directory = partition_dir(self._data_dir, project, date, CONTENT_DIR)
        directory.mkdir(parents=True, exist_ok=True)
        write_durably(table, directory / f"part-{uuid.uuid4().hex}.parquet", row_group_size=8_192)
