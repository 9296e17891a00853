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

import binascii
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
        hashes = items.column("hash").combine_chunks()  # one array: the window's keys and the sort read it
        keep, remember = self._first_unknown(hashes, f"{date}{project}".encode())
        new = keep.count(True)  # the first row of each hash not stored recently
        self.items_skipped += len(keep) - new
        if not new:
            return 0
        self._write_file(project, date, items, hashes, pa.array(keep) if new < len(keep) else None, name)
        remember()  # only once the file is durable: a failed write is retried whole
        self.items_written += new
        return new

    def _first_unknown(self, hashes: pa.Array, partition: bytes) -> tuple[list[bool], Callable[[], None]]:
        """The window's `first_unknown` of the hashes' keys, and the call that remembers those it marks.

        The collector's hashes go as one buffer of keys (`packed_item_keys`): a flush's ~14k bytes objects,
        made, hashed and freed on the writer's thread, cost more than the window's lookups in C."""
        packed = packed_item_keys(hashes, partition)
        if packed is None:
            keys = [_item_key(h, partition) for h in hashes.to_pylist()]
            keep = self._recent.first_unknown(keys)
            return keep, lambda: self._recent.remember_new(list(compress(keys, keep)))
        data, width = packed
        keep = self._recent.first_unknown_packed(data, width)
        return keep, lambda: self._recent.remember_new_packed(data, width, keep)

    def forget(self, project: str, date: str, hashes: set[str]) -> None:
        """The items `hashes` of the partition are no longer stored (a deletion removed them as orphans): a
        later flush sending one again must write it, not skip it as stored recently."""
        partition = f"{date}{project}".encode()
        self._recent.forget({_item_key(h, partition) for h in hashes})

    def _write_file(
        self, project: str, date: str, items: pa.Table, hashes: pa.Array, keep: pa.Array | None, name: str | None
    ) -> None:
        """Write the rows `keep` keeps (all without it) ordered by hash: one take of the bodies, not a
        filter's copy and then the sort's. `hashes` is the hash column as one array, combined once for the
        window's keys, the sort and the file (a take from the parts combined it again each time): sort and
        takes of a flush of writer_thread.py, 2,126 -> 2,090 instructions a span (callgrind)."""
        if keep is None:
            order = pc.sort_indices(hashes)
        else:
            rows = pc.indices_nonzero(keep)
            order = rows.take(pc.sort_indices(hashes.take(rows)))
        bodies = items.column("body").take(order)
        sizes = pc.binary_length(bodies).cast(pa.int64())
        stamps = pa.repeat(pa.scalar(time.time_ns(), pa.int64()), len(order))
        table = pa.Table.from_arrays([hashes.take(order), bodies, sizes, stamps], schema=CONTENT_SCHEMA)
        self.bytes_written += int(pc.sum(table["bytes"]).as_py() or 0)
        # The flush's name when given (a deterministic key in a bucket: a replay is refused); else a
        # random one (content is addressed by hash: repeats collapse on read).
        name = name or f"part-{uuid.uuid4().hex}.parquet"
        self._tables.write(CONTENT_DIR, project, date, name, table, row_group_size=8_192)


def packed_item_keys(hashes: pa.Array | pa.ChunkedArray, partition: bytes) -> tuple[bytearray, int] | None:
    """`[_item_key(h, partition) for h in hashes]` back to back, and their width, when each hash is 32 hex digits
    (always, for the collector's): built from the column's bytes in a few calls, not a Python call per item (a
    flush's ~12k items cost the writer's thread ~0.9 us each that way); None for any other column."""
    raw = _unhexed(hashes, 16)
    return None if raw is None else (_laid_out(raw, partition), 17 + len(partition))


def _laid_out(raw: bytes, partition: bytes) -> bytearray:
    """`b"h" + id + partition` for each 16-byte id of `raw`, back to back: the partition written once for all
    (a repeated template), then each of an id's 16 bytes into every key at once (a strided copy), instead of
    Arrow's element-wise join (~2.1 -> ~1.1 ms for a flush's 14k items of benchmarks/writer_thread.py)."""
    width = 17 + len(partition)
    out = bytearray((b"h" + bytes(16) + partition) * (len(raw) // 16))
    for n in range(16):
        out[1 + n :: width] = raw[n::16]
    return out


def _unhexed(values: pa.Array | pa.ChunkedArray, size: int) -> bytes | None:
    """The bytes a string column's values spell in hex, when each is `size` bytes (`2 * size` hex digits,
    no nulls): the values back to back, `size` bytes each; else None."""
    array = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if not len(array) or array.null_count or array.type != pa.string():
        return None
    lengths = pc.min_max(pc.binary_length(array))
    if lengths["min"].as_py() != 2 * size or lengths["max"].as_py() != 2 * size:
        return None
    first = int.from_bytes(memoryview(array.buffers()[1])[4 * array.offset : 4 * array.offset + 4], "little")
    try:
        return binascii.unhexlify(memoryview(array.buffers()[2])[first : first + 2 * size * len(array)])
    except binascii.Error:  # not hex (`_item_key` keeps such a hash's text)
        return None


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
