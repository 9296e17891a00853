"""Recently stored span ids, so a client retry or a replay does not write the same span twice.

OTLP clients resend a whole request when an ack is lost, so duplicates arrive close together in
time: a bounded window of the newest (project, trace_id, span_id) keys catches them without unbounded
memory. Compaction later removes any duplicate the window missed. Keys include the project so one
tenant cannot suppress another tenant's spans by sending their ids. The content store keeps a window
of the same kind for the content items each partition stored recently (`storage.content`).

A window is the C extension's `KeyWindow` when it is built (storage/key_window_native.py), else
`PureKeyWindow` (Python sets: the reference; the two answer alike for any sequence of calls,
tests/collector/model/test_key_window_native.py). Measured with benchmarks/key_window.py, a 250k
window at its peak (312,499 span keys of project "default" held): 29.4 MiB traced, 99 B a key, RSS
+54.5 MiB (sets) against 13.7 MiB, 46 B a key, RSS +13.6 MiB (native; 14.0 MiB, 47 B a key, since its
generations have filters). Per key of a 1000-key batch of new keys, callgrind: the writer's `add_batch`
1,927 -> 918 instructions, the content store's `first_unknown` + `remember_new` 2,871 -> 1,354; CPU 0.82
-> 0.29 us and 0.90 -> 0.39 us (0.51 -> 0.074 and 0.61 -> 0.125 us with the filters and prefetching,
same benchmark, one run). The content store hands its keys to the native window as one buffer
(`first_unknown_packed`, `remember_new_packed`): no bytes object per key.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from itertools import compress
from pathlib import Path
from typing import Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from llmscope_collector.storage import key_window_native
from llmscope_collector.storage.layout import iter_partitions, parquet_files, wal_range_of

log = logging.getLogger(__name__)


def span_key(project: str, trace_id: str, span_id: str) -> bytes:
    """The window key of a span: its 24 id bytes, then the project (unambiguous: the ids have a fixed
    length). ~64 bytes a key, against ~110 for the hex string: the window holds 250,000 of them.
    Ids that are not 16 + 8 bytes of hex (never from the decoder) keep their text; a first byte tells
    the two forms apart."""
    try:
        ids = bytes.fromhex(trace_id + span_id)
    except ValueError:
        ids = b""
    if len(ids) == 24 and len(trace_id) == 32 and len(span_id) == 16:
        return b"h" + ids + project.encode()
    return f"t{trace_id}/{span_id}/{project}".encode()


def span_keys(project: str, trace_ids: list[str], span_ids: list[str]) -> list[bytes]:
    """`[span_key(project, t, s) ...]` for a batch; the decoder's ids (always 32 + 16 hex digits) take
    an inline path, anything else goes through `span_key`."""
    tail = project.encode()
    fromhex = bytes.fromhex
    keys: list[bytes] = []
    for trace_id, span_id in zip(trace_ids, span_ids, strict=True):
        if len(trace_id) == 32 and len(span_id) == 16:
            try:
                ids = fromhex(trace_id + span_id)
            except ValueError:
                ids = b""
            if len(ids) == 24:
                keys.append(b"h" + ids + tail)
                continue
        keys.append(span_key(project, trace_id, span_id))
    return keys


def span_keys_of(project: str, trace_ids: pa.ChunkedArray, span_ids: pa.ChunkedArray) -> list[bytes]:
    """`span_keys` of two id columns (a buffered part's), read by the C extension from the string arrays'
    buffers when it is built: the writer thread then makes no str object per id (`to_pylist` of both
    columns and the Python loop of `span_keys` were ~1 us a span of its CPU, benchmarks/writer_thread.py).
    Columns with nulls (never from the decoder) or of another layout take `span_keys` itself."""
    native = key_window_native.SPAN_KEYS
    plain = trace_ids.type == pa.string() and span_ids.type == pa.string()
    if native is None or not plain or trace_ids.null_count or span_ids.null_count:
        return span_keys(project, trace_ids.to_pylist(), span_ids.to_pylist())
    if [len(c) for c in trace_ids.chunks] != [len(c) for c in span_ids.chunks]:
        trace_ids, span_ids = (pa.chunked_array([column.combine_chunks()]) for column in (trace_ids, span_ids))
    tail = project.encode()
    keys: list[bytes] = []
    for traces, spans in zip(trace_ids.chunks, span_ids.chunks, strict=True):
        if not len(traces):
            continue
        if traces.offset != spans.offset:
            traces, spans = pa.concat_arrays([traces]), pa.concat_arrays([spans])  # both at offset 0
        _, trace_offsets, trace_data = traces.buffers()
        _, span_offsets, span_data = spans.buffers()
        keys += native(
            tail, trace_offsets, trace_data or b"", span_offsets, span_data or b"", traces.offset, len(traces)
        )
    return keys


class KeyWindow(Protocol):
    """A bounded window of bytes keys that remembers at least the `capacity` newest ones (the contract;
    `PureKeyWindow` is its reference, the C extension's `KeyWindow` its compact twin)."""

    @property
    def capacity(self) -> int: ...

    def __len__(self) -> int: ...

    def __contains__(self, key: object) -> bool: ...

    def add(self, key: bytes) -> bool:
        """Remember `key`; False when it was already known (a duplicate)."""
        ...

    def add_batch(self, keys: list[bytes]) -> list[bool]:
        """`[self.add(key) for key in keys]`, in one call."""
        ...

    def first_unknown(self, keys: list[bytes]) -> list[bool]:
        """True at the first occurrence in `keys` of each key the window does not hold (nothing is remembered)."""
        ...

    def remember_new(self, keys: list[bytes]) -> None:
        """Remember keys the window does not hold (as `add` of each, in order, without the lookups)."""
        ...

    def first_unknown_packed(self, data: bytes | bytearray, width: int) -> list[bool]:
        """`first_unknown` of the `width`-byte keys `data` holds back to back (`width` > 0 divides its length)."""
        ...

    def remember_new_packed(self, data: bytes | bytearray, width: int, keep: list[bool]) -> None:
        """`remember_new` of the keys of `data` (as `first_unknown_packed` reads them) that `keep` marks True."""
        ...

    def forget(self, keys: set[bytes]) -> None:
        """Stop remembering `keys` (rare: what a deletion removed from storage must be stored anew if sent again)."""
        ...


class PureKeyWindow:
    """The window in Python sets: the reference, and the fallback where the C extension is not built.

    Keys go into a current generation; a full generation (a quarter of the capacity) joins the old
    ones and the oldest of more than four is forgotten whole. So between `capacity` and ~1.25x
    `capacity` keys are held (one generation more), with no per-key FIFO bookkeeping (a deque entry per key cost as much
    memory as a fifth of the key). Not thread-safe (one consumer).
    """

    _OLD_GENERATIONS = 4

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._generation_size = max(1, -(-capacity // self._OLD_GENERATIONS))
        self._current: set[bytes] = set()
        self._old: deque[frozenset[bytes]] = deque()  # full generations, oldest first

    def __len__(self) -> int:
        return len(self._current) + sum(len(g) for g in self._old)

    def __contains__(self, key: object) -> bool:
        if key in self._current:
            return True
        for generation in self._old:  # noqa: SIM110 (a loop, not any(<generator>): this runs per span)
            if key in generation:
                return True
        return False

    def add(self, key: bytes) -> bool:
        if self.capacity <= 0:
            return True
        if key in self:
            return False
        self._remember(key)
        return True

    def add_batch(self, keys: list[bytes]) -> list[bool]:
        """With the lookups done as C-level set differences over the batch (each generation is probed
        once per distinct key, without a Python call per key)."""
        if self.capacity <= 0:
            return [True] * len(keys)
        unseen = self._unknown(keys)
        if len(unseen) == len(keys):  # all new and distinct (the usual batch): remembered in bulk
            self.remember_new(keys)
            return [True] * len(keys)
        fresh: list[bool] = []
        for key in keys:
            if key in unseen:  # the first time in the batch of a key not known before it
                unseen.discard(key)
                self._remember(key)
                fresh.append(True)
            else:  # known (a duplicate: rare), asked as `add` would be at this point
                fresh.append(self.add(key))
        return fresh

    def first_unknown(self, keys: list[bytes]) -> list[bool]:
        unseen = self._unknown(keys) if self.capacity > 0 else set(keys)
        first: list[bool] = []
        for key in keys:
            fresh = key in unseen
            if fresh:
                unseen.discard(key)
            first.append(fresh)
        return first

    def first_unknown_packed(self, data: bytes | bytearray, width: int) -> list[bool]:
        return self.first_unknown(packed_pieces(data, width))

    def remember_new_packed(self, data: bytes | bytearray, width: int, keep: list[bool]) -> None:
        pieces = packed_pieces(data, width)
        if len(keep) != len(pieces) or not all(isinstance(flag, bool) for flag in keep):
            raise ValueError("remember_new_packed: keep is a list of bools, one a key")
        self.remember_new(list(compress(pieces, keep)))

    def _unknown(self, keys: Iterable[bytes]) -> set[bytes]:
        unseen = set(keys)
        for generation in (self._current, *self._old):
            if unseen:
                unseen = unseen.difference(generation)  # iterates `unseen`, probing the generation
        return unseen

    def forget(self, keys: set[bytes]) -> None:
        self._current.difference_update(keys)
        for i, generation in enumerate(self._old):
            if not generation.isdisjoint(keys):
                self._old[i] = generation - keys

    def remember_new(self, keys: list[bytes]) -> None:
        if self.capacity <= 0:
            return
        i = 0
        while i < len(keys):
            room = self._generation_size - len(self._current)
            self._current.update(keys[i : i + room])
            i += room
            if len(self._current) >= self._generation_size:
                self._roll()

    def _remember(self, key: bytes) -> None:
        self._current.add(key)
        if len(self._current) >= self._generation_size:
            self._roll()

    def _roll(self) -> None:
        self._old.append(frozenset(self._current))  # sized to fit: ~half the table of a grown set
        self._current = set()
        if len(self._old) > self._OLD_GENERATIONS:
            self._old.popleft()


def packed_pieces(data: bytes | bytearray, width: int) -> list[bytes]:
    """The `width`-byte keys `data` holds back to back; ValueError unless `width` is positive and divides its length."""
    if width <= 0 or len(data) % width:
        raise ValueError("packed keys: a positive width dividing the buffer's length")
    return [bytes(data[i : i + width]) for i in range(0, len(data), width)]


RecentSpanIds: Callable[[int], KeyWindow] = key_window_native.NATIVE or PureKeyWindow
"""`RecentSpanIds(capacity)`: a new window, the C extension's when built (same answers, ~half the memory)."""


def seed_from_files(recent: KeyWindow, data_dir: Path) -> int:
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
    loaded: list[list[bytes]] = []
    for _end, _mtime_ns, project, path in candidates:
        if budget <= 0:
            break
        keys = _file_keys(project, path)
        loaded.append(keys[-budget:])
        budget -= len(keys)
    for keys in reversed(loaded):  # oldest first, so the newest stay longest
        recent.add_batch(keys)
    return sum(len(k) for k in loaded)


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return 0


def _file_keys(project: str, path: Path) -> list[bytes]:
    try:
        table = pq.read_table(path, columns=["trace_id", "span_id"])
    except (OSError, ValueError) as exc:
        log.warning("cannot read span ids from %s for duplicate detection: %s", path, exc)
        return []
    traces = table.column("trace_id").to_pylist()
    spans = table.column("span_id").to_pylist()
    return [span_key(project, t, s) for t, s in zip(traces, spans, strict=True)]
