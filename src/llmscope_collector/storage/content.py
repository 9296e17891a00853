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
from collections.abc import Callable
from contextlib import AbstractContextManager
from itertools import compress
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from llmscope_collector.storage.dedupe import RecentSpanIds
from llmscope_collector.storage.layout import CONTENT_DIR
from llmscope_collector.storage.schema import CONTENT_SCHEMA
from llmscope_collector.storage.tables import LocalTables, TableSink

ForgetContent = Callable[[str, str, set[str]], None]
"""`forget(project, date, hashes)`: items a deletion removed, no longer "stored recently" (`ContentStore.forget`)."""
ContentRemoval = Callable[[], AbstractContextManager[ForgetContent]]
"""What a deletion holds while it removes orphaned content: the writer's flushes wait
(`ParquetSpanWriter.content_removal`), and it yields the `ForgetContent` to call for what was removed."""


class ContentStore:
    """Writes content items; single-threaded (the flush thread; a deletion's `forget` runs under the
    writer's `content_lock`, which its flushes hold)."""

    def __init__(self, data_dir: Path, *, recent_capacity: int = 200_000, tables: TableSink | None = None) -> None:
        self._data_dir = data_dir
        self._tables = tables or LocalTables(data_dir)
        self._recent = RecentSpanIds(recent_capacity)  # recently stored items: `_item_key`s
        self.items_written = 0
        self.items_skipped = 0
        self.bytes_written = 0

    def write(self, project: str, date: str, items: pa.Table, *, name: str | None = None) -> int:
        """Store the items (`CONTENT_ITEM_SCHEMA`) not stored yet in this partition; returns how many were new.

        A chat resends its history in every call, so most items of a flush repeat: each hash is
        kept once (its first row), and not at all when this partition stored it recently."""
        partition = f"{date}{project}".encode()
        keys = [_item_key(h, partition) for h in items.column("hash").to_pylist()]
        keep = self._recent.first_unknown(keys)  # the first row of each hash not stored recently
        new = list(compress(keys, keep))
        self.items_skipped += len(keys) - len(new)
        if not new:
            return 0
        self._write_file(project, date, items.filter(pa.array(keep)) if len(new) < len(keys) else items, name)
        self._recent.remember_new(new)  # only once the file is durable: a failed write is retried whole
        self.items_written += len(new)
        return len(new)

    def forget(self, project: str, date: str, hashes: set[str]) -> None:
        """The items `hashes` of the partition are no longer stored (a deletion removed them as orphans): a
        later flush sending one again must write it, not skip it as stored recently."""
        partition = f"{date}{project}".encode()
        self._recent.forget({_item_key(h, partition) for h in hashes})

    def _write_file(self, project: str, date: str, items: pa.Table, name: str | None) -> None:
        items = items.sort_by("hash")
        sizes = pc.binary_length(items.column("body")).cast(pa.int64())
        stamps = pa.array([time.time_ns()] * items.num_rows, pa.int64())
        table = pa.Table.from_arrays([items.column("hash"), items.column("body"), sizes, stamps], schema=CONTENT_SCHEMA)
        self.bytes_written += int(pc.sum(table["bytes"]).as_py() or 0)
        # The flush's name when given (a deterministic key in a bucket: a replay is refused); else a
        # random one (content is addressed by hash: repeats collapse on read).
        name = name or f"part-{uuid.uuid4().hex}.parquet"
        self._tables.write(CONTENT_DIR, project, date, name, table, row_group_size=8_192)


def _item_key(content_hash: str, partition: bytes) -> bytes:
    """Window key of an item in a partition: the hash's 16 bytes when it is hex (always, for hashes
    this collector computed: half the memory of the text), then the partition; a first byte tells
    that form from the text one."""
    if len(content_hash) == 32:
        try:
            raw = bytes.fromhex(content_hash)
        except ValueError:
            raw = b""
        if len(raw) == 16:
            return b"h" + raw + partition
    return b"t" + content_hash.encode() + b"/" + partition
