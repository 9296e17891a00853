"""The stitcher: prices spans, marks duplicate LLM spans and keeps per-trace summaries, at flush time.

It is the Parquet writer's flush hook, so it sees exactly the rows being written, in WAL order:

1. `before_write` (per partition, before the span file): mark an LLM span nested directly in
   another LLM span as `llm_dup` (the anthropic client's own span under the SDK's span for the
   same call: counted once), except that an LLM span without usage around one with usage (a
   framework's wrapper, DSPy's `LM.__call__` over LiteLLM's call) is the duplicate instead: the call
   counted is the one that carries the usage. Spans arrive priced by the decode workers.
2. `after_write` (after the span file is durable): write a per-trace summary *delta* for the rows of
   that file, named by the same WAL range. A trace's summary is the merge of its deltas (sums,
   min/max, unions), so spans arriving in any order, in several requests, from several services,
   just add deltas; no read-modify-write, and the query side merges them once and caches the result.
3. `after_flush`: when a parent LLM span arrives after its nested child was written, the child is
   recorded in the `llm_dups` dataset and the parent's delta subtracts the child's tokens and cost.

Why deltas and not a DuckDB view over spans: the summaries are what list/session queries read
(≤100 ms at 10M spans), and a GROUP BY over all spans cannot meet that; deltas cost O(batch) at
ingest. A crash between a span file and its delta is repaired at start (`repair`): span files whose
WAL range has no delta get one recomputed from the file.

The window of recent traces holds one small value per span id (see `_Trace`), built from Arrow
columns a flush at a time: at 30k spans/s it remembers hundreds of thousands of LLM spans, and it
runs on the writer's single thread, so its memory and per-span Python work are kept minimal.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import marshal
import struct
import time
from collections import OrderedDict
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from llmscope_collector.processors.arrow_native import run_sets, run_starts, run_total
from llmscope_collector.processors.previews import kept_candidates, trace_previews
from llmscope_collector.storage.batch import DecodedPart, PartitionKey
from llmscope_collector.storage.layout import LLM_DUPS_DIR, SPANS_DIR, TRACES_DIR, wal_range_of
from llmscope_collector.storage.schema import (
    COST_TYPE,
    LLM_DUP_SCHEMA,
    LLM_OPERATIONS,
    SPAN_SCHEMA,
    TOKEN_COLUMNS,
    TRACE_COLUMNS,
    TRACE_DELTA_SCHEMA,
)
from llmscope_collector.storage.tables import LocalTables, TableSink

try:  # the window's per-row loops in C (setup.py builds it; without it, the same loops in Python)
    from llmscope_collector.processors import _stitch_window as _native_window  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - a build without a C compiler
    _native_window = None

log = logging.getLogger(__name__)

_LLM = frozenset(LLM_OPERATIONS)
_LLM_VALUES = pa.array(sorted(_LLM), pa.string())
_TOKEN_FIELDS = TOKEN_COLUMNS  # every token count of a span, summed into its trace's delta
_SUM_FIELDS = (*_TOKEN_FIELDS, "llm_calls", "cost_unknown")  # what a late duplicate's correction subtracts


_State = int
"""A window value that needs no data of its own: a small int (one of `_STATES`; compared by identity, which
CPython's cached small ints keep, also through `marshal`), so a packed trace is its entries as they are."""

# The states of a span id in a `_Trace` that carry no data. A non-duplicate LLM span under another span
# (a parent that is not, or not yet, an LLM span of the trace) is instead its contribution blob (bytes,
# see `_blobs`): the only spans that can be corrected later, so the only ones that keep their numbers.
_UNSEEN: Final[_State] = 0  # only named as a parent by LLM spans so far
_NEW: Final[_State] = 1  # registered by the batch being marked, not marked yet
_DUP: Final[_State] = 2  # a nested duplicate (final: its parent stays registered)
_NO_PARENT: Final[_State] = 3  # not a duplicate, parent null
_EMPTY_PARENT: Final[_State] = 4  # not a duplicate, parent ""
_OWN_PARENT: Final[_State] = 5  # its own parent: never a duplicate
_FALSY_PARENT: Final = {_NO_PARENT: None, _EMPTY_PARENT: ""}
_STATES: Final = (_UNSEEN, _NEW, _DUP, _NO_PARENT, _EMPTY_PARENT, _OWN_PARENT)


class _Trace(dict[Any, Any]):
    """A recent trace's window: span id → a `_State`, a blob, or a box `(state, child ids...)`.

    A box is a span (or a parent only named so far) with blob children: how a parent arriving late
    finds the written children to correct, and (scanned) a re-marked blob's parent. One dict per trace
    and no per-span objects besides the blobs: a third of the memory of per-span records.

    Between flushes a trace with every span written is `pack`ed: its entries as one `marshal` string
    (its dict emptied), unpacked when a batch touches the trace again. A window entry as a dict slot,
    a span id string and a blob object costs ~3 times its packed bytes, and most traces of a full
    window are not touched again (measured in docs/memory.md).
    """

    __slots__ = ("packed", "project", "touched", "unwritten")
    project: str
    touched: float
    unwritten: set[Any] | None  # blob spans registered but not yet in a written span file
    packed: bytes | None  # the entries while the dict is empty (`pack`)

    @classmethod
    def new(cls, project: str) -> _Trace:
        """An empty window of one of `project`'s traces."""
        trace = cls()
        trace.project, trace.unwritten, trace.packed = project, None, None
        return trace

    def pack(self) -> None:
        """Hold the entries as one string (its states are ints, so `marshal` takes the entries as they are:
        a C call, not a Python step per entry). Emptied before the dump: each entry's objects then have one
        reference, and `marshal` tracks only shared objects for back-references (a hashtable entry made and
        freed each): ~830 fewer instructions a packed trace of the ingest bench (~5,200 -> ~4,400)."""
        entries = dict(self)
        self.clear()
        self.packed = marshal.dumps(entries)

    def unpack(self) -> None:
        """The entries back in the dict, in their order."""
        self.update(marshal.loads(self.packed))  # type: ignore[arg-type]
        self.packed = None


def _registered(value: Any) -> bool:
    """Whether a window value is an LLM span of the trace (not just a parent named by one)."""
    return value is not None and not (type(value) is tuple and value[0] is _UNSEEN)


# A blob: token width (4 or 8 bytes per field), date code (int32: `_date_code`), the token counts,
# then the cost in units of 1e-12 USD (int64, `_COST_UNKNOWN` when unknown).
_HEADER = struct.Struct("<Bi")
_TOKENS = {4: struct.Struct(f"<{len(_TOKEN_FIELDS)}i"), 8: struct.Struct(f"<{len(_TOKEN_FIELDS)}q")}
_COST = struct.Struct("<q")
_COST_UNKNOWN: Final = -(2**63)
_COST_SCALE = pa.scalar(Decimal(10**12), pa.decimal128(13, 0))
_INT32 = (-(2**31), 2**31 - 1)


def _reblob(old: bytes, new: bytes) -> bytes:
    """`new`'s numbers with `old`'s date (a span keeps the date it was first registered with)."""
    return new[:1] + old[1:5] + new[5:]


def contribution_dict(blob: bytes) -> dict[str, Any]:
    """What a blob's span added to its trace's sums, by field name (plus the one LLM call it is)."""
    width = blob[0]
    tokens = _TOKENS[width].unpack_from(blob, 5)
    (cost,) = _COST.unpack_from(blob, 5 + len(_TOKEN_FIELDS) * width)
    unknown = cost == _COST_UNKNOWN
    return {
        **dict(zip(_TOKEN_FIELDS, tokens, strict=True)),
        "cost_unknown": 1 if unknown else 0,
        "cost_usd": Decimal(0) if unknown else Decimal(cost).scaleb(-COST_TYPE.scale),
        "llm_calls": 1,
    }


def _fixed(values: pa.Array, width: int) -> pa.Array:
    """A null-free integer array's values as `width`-byte little-endian strings (viewed, not converted)."""
    view = pa.Array.from_buffers(pa.binary(width), len(values), [None, values.buffers()[1]], values.offset)
    return pc.cast(view, pa.binary())


def _blobs(llm: pa.Table, date_code: int) -> list[bytes]:
    """Every LLM row's blob, built in Arrow: reading the numbers into Python per row cost more than the
    rest of marking, and a bytes object holds them in a fifth of a tuple of ints and a Decimal. In C
    (`_stitch_window.blobs`, one pass over the buffers: ~1.6 ms of Arrow kernels a 10k-span flush) when
    it is built and the columns are of the span schema's types."""
    if _native_window is not None:
        built = _native_blobs(llm, date_code)
        if built is not None:
            return built
    tokens = [_zero_filled(llm.column(f)).combine_chunks() for f in _TOKEN_FIELDS]
    narrow = all(_INT32[0] <= (m := pc.min_max(t).as_py())["min"] and m["max"] <= _INT32[1] for t in tokens)
    width = 4 if narrow else 8
    if narrow:
        tokens = [pc.cast(t, pa.int32()) for t in tokens]
    known = _true(llm.column("cost_known"))
    cost = _cost_units(llm.column("cost_usd"))
    cost = pc.if_else(known, cost, pa.scalar(_COST_UNKNOWN, pa.int64())).combine_chunks()
    header = pa.scalar(_HEADER.pack(width, date_code), pa.binary())
    parts = [header, *(_fixed(t, width) for t in tokens), _fixed(cost, 8)]
    return pc.binary_join_element_wise(*parts, b"").to_pylist()  # type: ignore[no-any-return]


def _native_blobs(llm: pa.Table, date_code: int) -> list[bytes] | None:
    """`_blobs` by the extension; None where the columns are not int64 counts and `COST_TYPE` costs."""
    tokens = [llm.column(f).combine_chunks() for f in _TOKEN_FIELDS]
    known, cost = llm.column("cost_known").combine_chunks(), llm.column("cost_usd").combine_chunks()
    if cost.type != COST_TYPE or known.type != pa.bool_() or any(t.type != pa.int64() for t in tokens):
        return None
    specs = [(a.buffers()[0] if a.null_count else None, a.buffers()[1], a.offset) for a in (*tokens, known, cost)]
    assert _native_window is not None
    return _native_window.blobs(date_code, llm.num_rows, tuple(specs[:-2]), *specs[-2:])  # type: ignore[no-any-return]


def _cost_units(cost: pa.ChunkedArray) -> pa.Array:
    """Costs in units of 1e-12 USD (0 where null): a `COST_TYPE` value's unscaled integer, which its
    precision (18) keeps within int64, so the low word of its 128 bits. Read as the first of each pair of
    int64 words, where multiplying by 10^12 and casting cost ~225 us of a 10k-span flush's ~800 of blobs
    (~60). Another decimal type is scaled as before."""
    values = cost.combine_chunks()
    if values.type != COST_TYPE:
        return _zero_filled(pc.cast(pc.multiply(values, _COST_SCALE), pa.int64()))
    words = pa.Array.from_buffers(pa.int64(), 2 * len(values), [None, values.buffers()[1]], offset=2 * values.offset)
    low = pc.list_element(pa.FixedSizeListArray.from_arrays(words, 2), 0)
    return pc.if_else(pc.is_valid(values), low, pa.scalar(0, pa.int64()))


@dataclasses.dataclass
class _Correction:
    project: str
    date: str
    trace_id: str
    span_id: str
    contribution: dict[str, Any]


class Stitcher:
    """Flush hook of `ParquetSpanWriter` (single-threaded: called from the thread that writes flushes only;
    `kept_previews`, called where batches are buffered, reads nothing of its state)."""

    def __init__(
        self, data_dir: Path, *, window_s: float = 600.0, max_traces: int = 50_000, tables: TableSink | None = None
    ) -> None:
        self._tables = tables or LocalTables(data_dir)
        self._window_s = window_s
        self._max_traces = max_traces
        # By trace id; by (project, trace id) for a trace whose id another project's window already has.
        self._windows: OrderedDict[str | tuple[str, str], _Trace] = OrderedDict()
        self._odd_dates: dict[str, int] = {}  # partition dates not in ISO form (none come from decode)
        self._parents: dict[int, dict[Any, Any]] = {}  # per trace (by id()), a batch's blob → parent scan
        self._pending: list[_Correction] = []
        self._unacked: _Registered | None = None  # the last `before_write`'s batch, until its `after_write`
        self._unsubtracted: dict[tuple[str, str], list[_Correction]] = {}
        self._repair_later: dict[PartitionKey, list[tuple[int, int]]] = {}
        self.deltas_written = 0
        self.dups_marked = 0

    # -- hook API ---------------------------------------------------------------------------------

    def before_write(self, key: PartitionKey, spans: pa.Table) -> pa.Table:
        """The partition's rows with `llm_dup` set on LLM rows (True for a nested duplicate)."""
        project, date = key
        self._hold_unacked()
        now = time.monotonic()
        self._evict(now)
        is_llm = llm_mask(spans)
        llm = spans.select(_LLM_FIELDS).filter(is_llm)
        if not llm.num_rows:
            return spans
        trace_ids = llm.column("trace_id").to_pylist()
        span_ids = llm.column("span_id").to_pylist()
        parents = llm.column("parent_span_id").to_pylist()
        blobs = _blobs(llm, self._date_code(date))  # all Arrow work first: the window changes below
        usage = _has_usage(llm)
        traces = self._touch(project, trace_ids, now)
        wrappers = self._wrappers(traces, trace_ids, span_ids, parents, usage, llm.column("parent_span_id"))
        rows = trace_ids, span_ids, parents, blobs
        if wrappers:  # not registered, not marked: their nested calls are the ones counted
            keep = [i for i in range(len(span_ids)) if i not in wrappers]
            rows = tuple([column[i] for i in keep] for column in rows)  # type: ignore[assignment]
        known = _register(traces, rows[0], rows[1])
        self._unacked = _Registered(key, llm.num_rows, traces, rows[0], rows[1], known)
        self._parents.clear()
        dups = self._mark(project, traces, *rows)
        if wrappers:
            marked = dict(zip(keep, dups, strict=True))
            dups = [marked.get(i, True) for i in range(llm.num_rows)]
        return spans.set_column(spans.schema.get_field_index("llm_dup"), "llm_dup", _marks(is_llm, dups))

    def _wrappers(
        self,
        traces: dict[str, _Trace],
        trace_ids: list[str],
        span_ids: list[str],
        parents: list[Any],
        usage: pa.Array,
        parent_column: pa.ChunkedArray,
    ) -> set[int]:
        """The rows of LLM spans without usage around a nested LLM span with usage (DSPy's `LM.__call__`
        over LiteLLM's `completion`): the call is the nested span, the one that carries the usage, so the
        wrapper is the duplicate. The nested span is in this batch or already in the window (an inner span
        ends, so is exported, before its wrapper)."""
        bare = pc.indices_nonzero(pc.invert(usage)).to_pylist()
        if not bare:
            return set()
        # The rows with usage whose parent is one of those (few): found in Arrow by the parent's span id.
        named = pc.is_in(parent_column, value_set=pa.array([span_ids[i] for i in bare], pa.string()))
        named = named.combine_chunks() if isinstance(named, pa.ChunkedArray) else named
        nested = pc.indices_nonzero(pc.and_(named, usage))
        with_usage = {(trace_ids[i], parents[i]) for i in nested.to_pylist() if parents[i]}
        found = set()
        for i in bare:
            key = (trace_ids[i], span_ids[i])
            if key in with_usage or _written_child_with_usage(traces[trace_ids[i]], span_ids[i]):
                found.add(i)
        return found

    def kept_previews(self, part: DecodedPart, keep: list[bool], spans: pa.Table) -> pa.Table | None:
        """The preview candidates of the spans `keep` keeps of `part` (`spans`: those): a part's candidates
        are its traces' picks, made again when a picked span is dropped (`previews.kept_candidates`)."""
        return None if part.previews is None else kept_candidates(part.previews, keep, spans, part.content)

    def after_write(
        self, key: PartitionKey, spans: pa.Table, wal_start: int, wal_end: int, previews: pa.Table | None = None
    ) -> None:
        """Write the partition's trace deltas, named by the WAL range of the span file just written
        (`previews`: the preview candidates of its rows, `processors.previews.PREVIEW_CANDIDATES`).

        Never raises: the span file is already durable, and failing here would make the writer write
        it again. A failed delta is recomputed from the span file at the end of the flush (or at start).
        """
        try:
            self._write_deltas(key, spans, wal_start, wal_end, previews)
        except Exception:
            log.exception(
                "trace summary delta for %s WAL [%d, %d) failed; recomputing it later", key, wal_start, wal_end
            )
            self._repair_later.setdefault(key, []).append((wal_start, wal_end))

    def _write_deltas(
        self, key: PartitionKey, spans: pa.Table, wal_start: int, wal_end: int, previews: pa.Table | None
    ) -> None:
        project, date = key
        is_llm = llm_mask(spans)
        self._note_written(key, spans, is_llm)
        corrections = self._take_corrections(project, spans)
        table = trace_deltas(spans, corrections, previews, is_llm=is_llm)
        self._write(TRACES_DIR, project, date, table, wal_start, wal_end)
        self.deltas_written += table.num_rows

    def after_flush(self, wal_start: int, wal_end: int) -> None:
        """Record LLM spans found to be nested duplicates after they were written; retry failed deltas.

        Never raises (the spans are durable; a failure here is retried at the next flush)."""
        try:
            self._write_corrections(wal_start, wal_end)
            if self._repair_later:
                queued, self._repair_later = self._repair_later, {}
                self.repair(queued)
        except Exception:
            log.exception("stitcher bookkeeping after flush failed; retrying at the next flush")

    def _write_corrections(self, wal_start: int, wal_end: int) -> None:
        pending, self._pending = self._pending, []
        by_partition: dict[PartitionKey, list[_Correction]] = {}
        for c in pending:
            by_partition.setdefault((c.project, c.date), []).append(c)
        for (project, date), items in by_partition.items():
            table = pa.Table.from_pydict(
                {
                    "trace_id": [c.trace_id for c in items],
                    "span_id": [c.span_id for c in items],
                    "marked_ns": [time.time_ns()] * len(items),
                },
                schema=LLM_DUP_SCHEMA,
            )
            try:
                self._write(LLM_DUPS_DIR, project, date, table, wal_start, wal_end)
            except Exception:
                self._pending.extend(items)
                raise

    def repair(self, ranges: dict[PartitionKey, list[tuple[int, int]]]) -> int:
        """Recompute deltas for span files (by partition and WAL range) that have none; returns how many.

        Without previews: the flush's preview candidates (made from its content by the decode workers)
        are not at hand any more, and reading and decoding a partition's whole content to find a few is
        not worth it for this rare repair (the list shows no preview for those traces' rows)."""
        repaired = 0
        for (project, date), wanted in ranges.items():
            have = {wal_range_of(name) for name in self._tables.names(TRACES_DIR, project, date)}
            for name in self._tables.names(SPANS_DIR, project, date):
                wal_range = wal_range_of(name)
                if wal_range is None or wal_range in have or wal_range not in wanted:
                    continue
                spans = self._tables.read(SPANS_DIR, project, date, name, schema=SPAN_SCHEMA)
                self._write(TRACES_DIR, project, date, trace_deltas(spans, []), *wal_range)
                repaired += 1
        return repaired

    # -- the window -------------------------------------------------------------------------------

    def _touch(self, project: str, trace_ids: list[str], now: float) -> dict[str, _Trace]:
        """The windows of these rows' traces by id, created if new, moved to the LRU end in the order of
        each trace's last row (as touching every row in turn would leave them), touched `now`. In C
        (`_stitch_window.touch_batch`: this loop's steps, `_touch_keyed` called back) when it is built."""
        if _native_window is not None:
            found: dict[str, _Trace] = _native_window.touch_batch(
                self._windows, project, trace_ids, now, _Trace.new, self._touch_keyed
            )
            return found
        found = {}
        windows = self._windows
        for trace_id in reversed(dict.fromkeys(reversed(trace_ids))):
            trace = windows.get(trace_id)
            if trace is not None and trace.project == project:
                windows.move_to_end(trace_id)
                if trace.packed is not None:
                    trace.unpack()
            elif trace is None and (project, trace_id) not in windows:  # a new window (most): `_touch_keyed`, inlined
                trace = windows[trace_id] = _Trace.new(project)
            else:
                trace = self._touch_keyed(project, trace_id, trace is None)
                if trace.packed is not None:
                    trace.unpack()
            trace.touched = now
            found[trace_id] = trace
        return found

    def _touch_keyed(self, project: str, trace_id: str, id_free: bool) -> _Trace:
        """A window not under its bare trace id: under (project, trace id), or new (at the LRU end)."""
        key = (project, trace_id)
        trace = self._windows.get(key)
        if trace is not None:
            self._windows.move_to_end(key)
            return trace
        trace = _Trace.new(project)
        self._windows[trace_id if id_free else key] = trace
        return trace

    def _evict(self, now: float) -> None:
        windows = self._windows
        while windows:
            key = next(iter(windows))
            if now - windows[key].touched < self._window_s and len(windows) <= self._max_traces:
                return
            del windows[key]

    def _hold_unacked(self) -> None:
        """The last marked batch's file was not written (no `after_write` came for it): its spans stay
        unwritten until a file holds them."""
        unacked, self._unacked = self._unacked, None
        if unacked is not None:
            _hold_unwritten(unacked)

    def _date_code(self, date: str) -> int:
        """A partition date as a blob stores it: its day number (negative: an odd date's index)."""
        try:
            day = dt.date.fromisoformat(date).toordinal()
            if dt.date.fromordinal(day).isoformat() == date:
                return day
        except ValueError:
            pass
        return -1 - self._odd_dates.setdefault(date, len(self._odd_dates))

    def _date_of(self, blob: bytes) -> str:
        code = _HEADER.unpack_from(blob)[1]
        return dt.date.fromordinal(code).isoformat() if code > 0 else list(self._odd_dates)[-1 - code]

    def _note_written(self, key: PartitionKey, spans: pa.Table, is_llm: Any) -> None:
        """The LLM spans (`is_llm`) of a durable span file: from now on, a late parent makes them corrections.
        The traces with every span written are packed until a batch touches them again.

        The file of the batch `before_write` marked last (the writer's order: `before_write` then, once the
        file is durable, `after_write` of the same rows) acknowledges that batch's spans at once; only a
        batch whose file was not written (`_hold_unacked`) leaves spans in `_Trace.unwritten`. Its traces
        are the ones `before_write` touched (nothing touches the window in between): taken from the batch,
        not touched again, which re-read the file's trace ids and moved each trace in the LRU a second time
        (~0.3 us a span of the writer thread); the LRU keeps the batch's order of arrival."""
        unacked, self._unacked = self._unacked, None
        llm_rows = pc.sum(is_llm).as_py() or 0
        if unacked is not None and unacked.key == key and unacked.llm_rows == llm_rows:
            traces = unacked.traces
        else:
            if unacked is not None:
                _hold_unwritten(unacked)
            if not llm_rows:
                return
            trace_ids = spans.column("trace_id").filter(is_llm).to_pylist()
            traces = self._touch(key[0], trace_ids, time.monotonic())
        if any(trace.unwritten for trace in traces.values()):
            llm = spans.select(["trace_id", "span_id"]).filter(is_llm).to_pydict()
            for trace_id, span_id in zip(llm["trace_id"], llm["span_id"], strict=True):
                unwritten = traces[trace_id].unwritten
                if unwritten:
                    unwritten.discard(span_id)
        if _native_window is not None:  # the loop below in C (`_Trace.pack`'s steps; ~1 us a trace less)
            _native_window.pack_written(traces)
            return
        for trace in traces.values():
            if not trace.unwritten:
                trace.unwritten = None
                trace.pack()

    # -- marking --------------------------------------------------------------------------------------

    def _mark(
        self, project: str, traces: dict[str, _Trace], trace_ids: list[str], span_ids: list[Any], parents: list[Any],
        blobs: list[bytes],
    ) -> list[bool]:  # fmt: skip
        """Mark each LLM row (trace, span, parent, blob) a duplicate when its parent is an LLM span of the
        same trace; whether each is. The first mark of a span (most rows) is `_settle_new`; in C
        (`_stitch_window.mark_batch`) when the extension is built."""
        if _native_window is not None:
            slow = functools.partial(self._mark_known, project)
            dups: list[bool] = _native_window.mark_batch(
                traces, trace_ids, span_ids, parents, blobs, self._parents, _STATES, slow
            )
        else:
            dups = []
            for trace_id, span_id, parent, blob in zip(trace_ids, span_ids, parents, blobs, strict=True):
                trace = traces[trace_id]
                value = trace[span_id]
                if value is _NEW:
                    value = trace[span_id] = self._settle_new(trace, span_id, parent, blob)
                elif value is not _DUP:
                    value = self._mark_known(project, trace_id, trace, span_id, value, parent, blob)
                dups.append(value is _DUP)
        self.dups_marked += dups.count(True)
        return dups

    def _mark_known(
        self, project: str, trace_id: str, trace: _Trace, span_id: str, value: Any, parent: str | None, blob: bytes
    ) -> Any:
        """Mark a span seen before (or with children waiting); correct its written children; its state."""
        box = value if type(value) is tuple else None
        state = value if box is None else box[0]
        if state is _NEW:
            state = self._settle_new(trace, span_id, parent, blob)
        elif state is not _DUP:
            state = self._settle(trace, span_id, state, blob)
        if box is None:
            trace[span_id] = state
        else:
            trace[span_id] = self._correct_written_children(project, trace_id, trace, (state, *box[1:]))
        return state

    def _settle_new(self, trace: _Trace, span_id: str, parent: Any, blob: bytes) -> Any:
        """A span's state at its first mark: `_DUP`, a `_State` for a span with no parent, or its blob."""
        if parent == span_id:
            return _OWN_PARENT
        siblings = trace.get(parent)
        if siblings is not None and (type(siblings) is not tuple or siblings[0] is not _UNSEEN):
            return _DUP  # `_registered(siblings)`, inlined
        if not parent:
            return _NO_PARENT if parent is None else _EMPTY_PARENT
        trace[parent] = (_UNSEEN, span_id) if siblings is None else (*siblings, span_id)
        if self._parents:
            self._parents.pop(id(trace), None)
        return blob  # unwritten until its file's `after_write` (`_Registered`)

    def _settle(self, trace: _Trace, span_id: str, state: Any, blob: bytes) -> Any:
        """A marked span's state after another row of it: a span keeps its first parent and date."""
        if type(state) is bytes:
            if _registered(trace.get(self._parent_of(trace, span_id))):
                return _DUP
            return state if blob == state else _reblob(state, blob)
        if state is _OWN_PARENT:
            return state
        return _DUP if _registered(trace.get(_FALSY_PARENT[state])) else state

    def _parent_of(self, trace: _Trace, span_id: str) -> Any:
        """A blob span's parent: the box listing it (rare: a span marked twice; one scan per trace and batch)."""
        parents = self._parents.get(id(trace))
        if parents is None:
            boxes = ((key, value) for key, value in trace.items() if type(value) is tuple)
            parents = self._parents[id(trace)] = {child: key for key, value in boxes for child in value[1:]}
        return parents[span_id]

    def _correct_written_children(self, project: str, trace_id: str, trace: _Trace, box: tuple[Any, ...]) -> Any:
        """A parent marked after its LLM children were written: those children become duplicates.

        Returns the parent's window value: the box of its children still unwritten, else its state."""
        unwritten = trace.unwritten or ()
        waiting = []
        for child in box[1:]:
            value = trace[child]
            state = value[0] if type(value) is tuple else value
            if type(state) is not bytes:
                continue  # a duplicate by now
            if child in unwritten:
                waiting.append(child)
                continue
            trace[child] = (_DUP, *value[1:]) if type(value) is tuple else _DUP
            self.dups_marked += 1
            correction = _Correction(project, self._date_of(state), trace_id, child, contribution_dict(state))
            self._pending.append(correction)
            self._unsubtracted.setdefault((project, trace_id), []).append(correction)
        return (box[0], *waiting) if waiting else box[0]

    def _take_corrections(self, project: str, spans: pa.Table) -> list[_Correction]:
        if not self._unsubtracted:
            return []
        taken: list[_Correction] = []
        trace_ids: Iterable[str] = pc.unique(spans.column("trace_id")).to_pylist()
        for trace_id in trace_ids:
            taken.extend(self._unsubtracted.pop((project, trace_id), ()))
        return taken

    def _write(self, dataset: str, project: str, date: str, table: pa.Table, wal_start: int, wal_end: int) -> None:
        if table.num_rows == 0:
            return
        name = self._tables.part_name(wal_start, wal_end)
        self._tables.write(dataset, project, date, name, table, row_group_size=64_000)


def _has_usage(llm: pa.Table) -> pa.Array:
    """Per LLM row, whether it reports any token count (a usage; null-free). Kept in Arrow: the rows
    without are few, and listing every row's flag in Python to find them was ~0.02 us a span."""
    present = [pc.is_valid(llm.column(f)) for f in (*_TOKEN_FIELDS, "total_tokens")]
    any_present = present[0]
    for column in present[1:]:
        any_present = pc.or_(any_present, column)
    return any_present.combine_chunks() if isinstance(any_present, pa.ChunkedArray) else any_present


def _written_child_with_usage(trace: _Trace, span_id: str) -> bool:
    """Whether the window holds a nested LLM span of `span_id` (it is only a named parent so far) whose
    numbers show a usage."""
    box = trace.get(span_id)
    if type(box) is not tuple or box[0] is not _UNSEEN:
        return False
    for child in box[1:]:
        value = trace.get(child)
        blob = value[0] if type(value) is tuple else value
        if type(blob) is bytes and any(contribution_dict(blob)[f] for f in (*_TOKEN_FIELDS, "total_tokens")):
            return True
    return False


def _register(traces: dict[str, _Trace], trace_ids: list[str], span_ids: list[Any]) -> set[tuple[str, Any]]:
    """Register a batch's LLM spans before marking any (a parent later in the batch still counts); the
    (trace id, span id) of the rows whose span was registered before the batch (few: spans sent again).
    In C (`_stitch_window.register_batch`) when the extension is built."""
    if _native_window is not None:
        return _native_window.register_batch(traces, trace_ids, span_ids, _STATES)  # type: ignore[no-any-return]
    known = set()
    for trace_id, span_id in zip(trace_ids, span_ids, strict=True):
        trace = traces[trace_id]
        value = trace.setdefault(span_id, _NEW)  # (one lookup for a new span, most rows)
        if value is not _NEW:
            if type(value) is tuple and value[0] is _UNSEEN:
                trace[span_id] = (_NEW, *value[1:])
            else:
                known.add((trace_id, span_id))
    return known


@dataclasses.dataclass
class _Registered:
    """A marked batch whose span file `after_write` has not acknowledged yet: its rows (`llm_rows`: its LLM
    rows, wrappers included, as the file's LLM rows count them) and which of its spans were known before.

    A span a batch registers and leaves a blob must not be corrected by a late parent until its file is
    durable (the file not written, the batch comes again and marks it in its row). Tracked a batch at a
    time, not as a set per trace added to and discarded from for every blob span (~0.15 us a span of
    the writer thread): only a file not written (`_hold_unwritten`) puts its spans in the sets."""

    key: PartitionKey
    llm_rows: int
    traces: dict[str, _Trace]
    trace_ids: list[str]
    span_ids: list[str]
    known: set[tuple[str, Any]]


def _hold_unwritten(batch: _Registered) -> None:
    """A batch's spans as unwritten (its file was not written): those it registered that are blobs, i.e.
    each span whose first mark in the batch made it a blob (a blob stays one, or becomes `_DUP`, whose
    membership is never asked)."""
    for trace_id, span_id in zip(batch.trace_ids, batch.span_ids, strict=True):
        trace = batch.traces[trace_id]
        value = trace.get(span_id)
        state = value[0] if type(value) is tuple else value
        if type(state) is bytes and (trace_id, span_id) not in batch.known:
            if trace.unwritten is None:
                trace.unwritten = {span_id}
            else:
                trace.unwritten.add(span_id)


def _marks(is_llm: pa.ChunkedArray, dups: list[bool]) -> pa.Array | pa.ChunkedArray:
    """`llm_dup` for every row: null for non-LLM rows, else whether the row is a nested duplicate."""
    if True not in dups:
        return pc.if_else(is_llm, pa.scalar(False), pa.scalar(None, pa.bool_()))
    nulls = pa.nulls(len(is_llm), pa.bool_())
    return pc.replace_with_mask(nulls, is_llm.combine_chunks(), pa.array(dups, pa.bool_()))


def llm_mask(spans: pa.Table) -> pa.ChunkedArray:
    """True for the rows that are model calls (they carry tokens and cost)."""
    return _true(pc.is_in(spans.column("operation"), value_set=_LLM_VALUES))


def _true(mask: Any) -> Any:
    """A boolean column with null as False: what `fill_null(mask, False)` gives, in two bitmap passes
    (~4 us a 10k-row column) where that coalesces value by value (~80 us)."""
    return pc.and_kleene(mask, pc.is_valid(mask))


def _zero_filled(values: Any, where: Any = None) -> Any:
    """A numeric column with null as 0 (and 0 where `where`, if given, is False): what `fill_null(values,
    0)` (under `if_else(where, ..., 0)`) gives, in one `if_else` (~12 us a 10k-row column, where
    `fill_null` alone took ~34)."""
    valid = pc.is_valid(values)
    return pc.if_else(valid if where is None else pc.and_(where, valid), values, pa.scalar(0, values.type))


_LLM_FIELDS = ["trace_id", "span_id", "parent_span_id", *_TOKEN_FIELDS, "cost_known", "cost_usd"]


def _present(values: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Empty strings as null: a summary lists only values that say something."""
    return pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)


def _where(mask: Any, values: Any, otherwise: Any) -> Any:
    return pc.if_else(mask, values, otherwise)


def _delta_inputs(spans: pa.Table, is_llm: Any) -> pa.Table:
    """One row per span of what it adds to its trace's delta (zeros/nulls where it adds nothing)."""
    counted = pc.and_(is_llm, pc.invert(_true(spans.column("llm_dup"))))
    known = pc.and_(counted, _true(spans.column("cost_known")))
    parent = spans.column("parent_span_id")
    name, version = _present(spans.column("prompt_name")), _present(spans.column("prompt_version"))
    both = pc.and_(pc.is_valid(name), pc.is_valid(version))
    model = pc.coalesce(_present(spans.column("response_model")), _present(spans.column("request_model")))
    none = pa.scalar(None, pa.string())
    columns: dict[str, Any] = {
        "trace_id": spans.column("trace_id"),
        "start_ns": spans.column("start_ns"),
        "end_ns": spans.column("end_ns"),
        "is_root": pc.or_kleene(pc.is_null(parent), pc.equal(parent, "")),
        "error_count": pc.cast(_true(pc.equal(spans.column("status_code"), "ERROR")), pa.int64()),
        "llm_calls": pc.cast(counted, pa.int64()),
        "cost_unknown": pc.cast(pc.and_(counted, pc.invert(known)), pa.int64()),
        "cost_usd": _zero_filled(spans.column("cost_usd"), known),
        "session_id": _present(spans.column("session_id")),
        "user_id": _present(spans.column("user_id")),
        "services": _present(spans.column("service_name")),
        "prompt_names": name,
        "prompts": _where(both, pc.binary_join_element_wise(name, version, "@"), name),
        "models": _where(counted, model, none),
        "providers": _where(counted, _present(spans.column("provider")), none),
    }
    for field in _TOKEN_FIELDS:
        columns[field] = _zero_filled(spans.column(field), counted)
    return pa.table(columns)


# The summary columns summed (all but the span count) and unioned (all but the tags, which are lists
# per span) by their declared merge; the root columns' span columns (`source`).
_SUMMED = tuple(c.name for c in TRACE_COLUMNS if c.merge == "sum" and c.name != "span_count")
_SETS = tuple(c.name for c in TRACE_COLUMNS if c.merge == "union" and c.name != "tags")


def trace_deltas(
    spans: pa.Table, corrections: list[_Correction], previews: pa.Table | None = None, *, is_llm: Any = None
) -> pa.Table:
    """Per-trace summary deltas of these span rows, minus the contributions of late-found duplicates, with
    the previews picked from `previews` (the rows' `PREVIEW_CANDIDATES`, in the rows' order: ties go to
    the first; none without it). `is_llm`: the rows' `llm_mask`, when the caller has it already."""
    inputs = _delta_inputs(spans, llm_mask(spans) if is_llm is None else is_llm)
    grouped, starts = _grouped(inputs)
    trace_ids = grouped["trace_id"]
    out: dict[str, Any] = {
        "trace_id": trace_ids,
        "updated_ns": pa.array([time.time_ns()] * len(trace_ids), pa.int64()),
        "start_ns": grouped["start_ns_min"],
        "end_ns": grouped["end_ns_max"],
        "has_root": grouped["is_root_any"],
        "span_count": grouped["trace_id_count"],
        "session_id": grouped["session_id_first"],
        "user_id": grouped["user_id_first"],
        "tags": _tag_sets(spans, trace_ids, starts),
    }
    out.update({field: grouped[f"{field}_sum"] for field in _SUMMED})
    out.update({field: _none_if_empty(grouped[f"{field}_distinct"]) for field in _SETS})
    out.update(_roots(spans, trace_ids, inputs.column("is_root"), starts))
    out.update(trace_previews(previews, trace_ids))
    table = _in_schema(out, TRACE_DELTA_SCHEMA)
    return _corrected(table, corrections) if corrections else table


def _in_schema(columns: dict[str, Any], schema: pa.Schema) -> pa.Table:
    """The table of `schema` from these columns, casting only those of another type (the cost sums):
    `Table.cast` went through every column, ~125 us a 10k-span flush's deltas where this takes ~40."""
    arrays = [columns[f.name] if columns[f.name].type == f.type else pc.cast(columns[f.name], f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


_AGGREGATES: list[tuple[str, str]] = [
    ("start_ns", "min"),
    ("end_ns", "max"),
    ("trace_id", "count"),
    ("is_root", "any"),
    *((field, "sum") for field in _SUMMED),
]
_FIRSTS = ("session_id", "user_id")  # the columns whose first non-null value per trace a delta keeps
_HASHED = [*_AGGREGATES, *((field, "first") for field in _FIRSTS), *((field, "distinct") for field in _SETS)]


def _grouped(inputs: pa.Table) -> tuple[dict[str, Any], pa.Array | None]:
    """The delta inputs aggregated per trace, in ascending order of trace id, by Acero's names
    (`<column>_<aggregate>`), and the first row of each trace (then the row count) when each trace is
    one run of rows (a span file's rows, sorted by trace id: `_by_runs`), else None (Acero's group-by)."""
    trace_ids = inputs.column("trace_id").combine_chunks()
    starts = run_starts(trace_ids)
    if starts is not None:
        by_runs = _by_runs(inputs, trace_ids, starts)
        if by_runs is not None:
            return by_runs, starts
    return _hashed(inputs, _HASHED), None


def _hashed(inputs: pa.Table, aggregates: list[tuple[str, str]]) -> dict[str, Any]:
    """`aggregates` of the inputs per trace by Acero's hash group-by, in ascending order of trace id."""
    grouped = pa.TableGroupBy(inputs, "trace_id", use_threads=False).aggregate(aggregates).sort_by("trace_id")
    return {name: grouped.column(name) for name in grouped.column_names}


def _by_runs(inputs: pa.Table, trace_ids: pa.Array, starts: pa.Array) -> dict[str, Any] | None:
    """`_grouped` where the rows come as runs of trace ids in ascending order: the unions by their runs
    (`arrow_native.run_sets`) instead of Acero's hash "distinct" (~0.27 us a span of the flush thread's
    ~0.4 of group-by), the first values by a count of the rows that have one (`_run_picks`) instead of
    Acero's hash "first" (~0.5 ms of a 10k-span flush's ~1 ms of group-by, string values), the sums,
    minimums, maximums and "any" by `arrow_native.run_total` (one pass a column; Acero's group-by, its sort
    by trace id and the check of its groups against the runs were ~0.2 us a span). None (Acero's path)
    without the extension."""
    columns: dict[str, Any] = {}
    for field in _SETS:
        columns[f"{field}_distinct"] = run_sets(inputs.column(field).combine_chunks(), starts)
        if columns[f"{field}_distinct"] is None:
            return None
    bounds = starts.slice(0, len(starts) - 1)
    columns["trace_id"] = trace_ids.take(bounds)
    columns["trace_id_count"] = pc.subtract(starts.slice(1), bounds)  # (trace ids have no nulls: `run_starts`)
    for field, aggregate in _AGGREGATES:
        if field != "trace_id":
            columns[f"{field}_{aggregate}"] = run_total(inputs.column(field).combine_chunks(), starts, aggregate)
            if columns[f"{field}_{aggregate}"] is None:
                return None
    for field in _FIRSTS:
        values = inputs.column(field).combine_chunks()
        columns[f"{field}_first"] = values.drop_null().take(_run_picks(pc.is_valid(values), starts, last=False))
    return columns


def _run_picks(mask: Any, starts: pa.Array, *, last: bool) -> pa.Array:
    """Per run of rows (`run_starts`), the position among the rows `mask` (null-free) selects of the run's
    first (`last`: last) selected row; null where the run has none. A cumulative count of the selected
    rows, read at the runs' bounds: no hashing of the runs' keys."""
    counts = pc.cumulative_sum(pc.cast(mask, pa.int64()))
    if isinstance(counts, pa.ChunkedArray):
        counts = counts.combine_chunks()
    before = pa.concat_arrays([pa.array([0], pa.int64()), counts]).take(starts)  # selected before each bound
    earlier, later = before.slice(0, len(before) - 1), before.slice(1)
    picked = pc.subtract(later, pa.scalar(1, pa.int64())) if last else earlier
    return pc.if_else(pc.greater(later, earlier), picked, pa.scalar(None, pa.int64()))


def removal_deltas(spans: pa.Table) -> pa.Table:
    """The deltas that cancel what these span rows added to their traces' summaries: for duplicate
    copies compaction leaves out (storage.bucket_compaction). Their sums negated; every other column
    empty, since a minimum, maximum, union, first value or root record is the same with or without a
    second copy of a span (and empty values are skipped by the merge)."""
    deltas = trace_deltas(spans, [])
    negated = {"span_count", *_SUMMED}
    columns = {}
    for field in TRACE_DELTA_SCHEMA:
        if field.name in ("trace_id", "updated_ns"):
            columns[field.name] = deltas.column(field.name)
        elif field.name in negated:
            columns[field.name] = pc.negate(deltas.column(field.name))
        else:
            columns[field.name] = pa.nulls(deltas.num_rows, field.type)
    return pa.table(columns, schema=TRACE_DELTA_SCHEMA)


def _none_if_empty(lists: pa.ChunkedArray | pa.ListArray) -> pa.ListArray:
    """The lists with each empty one null: a null-free list array's offsets and values under a validity
    mask, where `if_else` copied every list (~45 us each of a 10k-span flush's five union columns)."""
    if isinstance(lists, pa.ChunkedArray):
        lists = lists.combine_chunks()
    if lists.null_count:  # (none come from the group-bys; kept general)
        return pc.if_else(pc.equal(pc.list_value_length(lists), 0), pa.scalar(None, lists.type), lists)
    empty = pc.equal(pc.list_value_length(lists), 0)
    return pa.ListArray.from_arrays(lists.offsets, lists.values, type=lists.type, mask=empty)


def _aligned(trace_ids: pa.ChunkedArray, keyed: pa.Table, column: str) -> pa.ChunkedArray:
    """`keyed[column]` in the order of `trace_ids` (null where a trace has no row)."""
    where = pc.index_in(trace_ids, value_set=keyed.column("trace_id"))
    return pc.take(keyed.column(column), where)


def _tag_sets(
    spans: pa.Table, trace_ids: pa.ChunkedArray, starts: pa.Array | None = None
) -> pa.Array | pa.ChunkedArray:
    """Per trace (`trace_ids`), the distinct non-empty tags of its rows in the order of their first row (null
    for none); by the traces' runs of rows when `_grouped` found them (`starts`: `_tag_runs`), else by
    Acero's group-by and an alignment to `trace_ids`."""
    tags = spans.column("tags").combine_chunks()
    if starts is not None:
        by_runs = _tag_runs(tags, starts)
        if by_runs is not None:
            return by_runs
    flat = pa.table(
        {
            "trace_id": pc.take(spans.column("trace_id"), pc.list_parent_indices(tags)),
            "tag": _present(pc.list_flatten(tags)),
        }
    )
    grouped = pa.TableGroupBy(flat, "trace_id", use_threads=False).aggregate([("tag", "distinct")])
    if grouped.num_rows == 0:
        return pa.chunked_array([pa.nulls(len(trace_ids), pa.list_(pa.string()))])
    return _none_if_empty(
        pc.fill_null(_aligned(trace_ids, grouped, "tag_distinct"), pa.scalar([], pa.list_(pa.string())))
    )


def _tag_runs(tags: pa.ListArray, starts: pa.Array) -> pa.ListArray | None:
    """`_tag_sets` when the rows come as runs of trace ids (`run_starts`): the flattened tags of a run are
    one run too (they start where its first row's do, by a cumulative count of the rows' tags), so
    `run_sets` unions them, in the order of their first row as Acero's "distinct" lists them. Acero's
    group-by (with the take of a trace id per tag, and the lookup and take that aligned its groups) cost the
    flush thread ~0.13 ms a flush without any tag, ~0.56 ms with 1,000 spans of 0-2 tags, ~1.4 with 10,000;
    this ~0.03, ~0.15, ~0.54 (thread CPU, best of 7). None (the caller's Acero path) without the extension."""
    flat = _present(pc.list_flatten(tags))
    if not len(flat):
        return pa.nulls(len(starts) - 1, pa.list_(pa.string()))
    lengths = pc.list_value_length(tags)
    if lengths.null_count:  # a null list flattens to no items
        lengths = _zero_filled(lengths)
    ends = pc.cumulative_sum(pc.cast(lengths, pa.int64()))
    tag_starts = pa.concat_arrays([pa.array([0], pa.int64()), ends]).take(starts)
    sets = run_sets(flat, tag_starts)
    return None if sets is None else _none_if_empty(sets)


_ROOT_FIELDS = {c.name: c.source for c in TRACE_COLUMNS if c.merge == "root"}


def _roots(spans: pa.Table, trace_ids: Any, is_root: Any, starts: pa.Array | None) -> dict[str, Any]:
    """The root span's fields per trace (the last root row when a trace has several; `is_root`: the rows'
    mask, `starts`: the traces' runs of rows, as `_grouped` gives them).

    With runs, a trace's last root row is found by counting root rows (`_run_picks`); without, it is the
    first of the root rows taken backwards, and `index_in` gives a value's first index: one lookup and one
    take of a few columns, where a hash group-by "last" and an alignment cost ~0.25 us a span of the
    flush thread (and filtering before selecting, ~0.25 more: every column of the rows was taken)."""
    roots = spans.select(["trace_id", *_ROOT_FIELDS.values()]).filter(is_root)
    if roots.num_rows == 0:
        return {name: pa.nulls(len(trace_ids), pa.string()) for name in _ROOT_FIELDS}
    if starts is not None:
        picks = _run_picks(is_root, starts, last=True)
        return {name: pc.take(roots.column(column), picks) for name, column in _ROOT_FIELDS.items()}
    roots = roots.take(pa.array(range(roots.num_rows - 1, -1, -1), pa.int64()))
    where = pc.index_in(trace_ids, value_set=roots.column("trace_id"))
    return {name: pc.take(roots.column(column), where) for name, column in _ROOT_FIELDS.items()}


def _corrected(table: pa.Table, corrections: list[_Correction]) -> pa.Table:
    """Subtract late-found duplicates' contributions from their traces' rows (rare: a Python pass is fine)."""
    rows = table.to_pylist()
    by_trace = {row["trace_id"]: row for row in rows}
    for c in corrections:
        row = by_trace.get(c.trace_id)
        if row is None:
            continue
        for field in _SUM_FIELDS:
            row[field] -= int(c.contribution.get(field) or 0)
        row["cost_usd"] -= c.contribution.get("cost_usd") or Decimal(0)
    return pa.Table.from_pylist(rows, schema=TRACE_DELTA_SCHEMA)
