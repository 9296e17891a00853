# Frozen copy of src/llmscope_collector/processors/stitch.py at 1a12e86, the reference the compact
# stitcher window is proven equal to (tests/collector/model/test_stitch_equivalence.py). It uses the live
# durable_io/layout/schema/normalize modules (not changed by that work). Do not edit.
"""The stitcher: prices spans, marks duplicate LLM spans and keeps per-trace summaries, at flush time.

It is the Parquet writer's flush hook, so it sees exactly the rows being written, in WAL order:

1. `before_write` (per partition, before the span file): mark an LLM span nested directly in
   another LLM span as `llm_dup` (the anthropic client's own span under the SDK's span for the
   same call: counted once). Spans arrive priced by the decode workers (`processors.pricing`).
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
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from llmscope_collector.durable_io import write_durably
from llmscope_collector.processors.decode import PartitionKey
from llmscope_collector.processors.normalize import LLM_OPERATIONS
from llmscope_collector.storage.layout import SPANS_DIR, parquet_files, partition_dir, wal_range_of
from llmscope_collector.storage.schema import COST_TYPE, LLM_DUP_SCHEMA, SPAN_SCHEMA, TRACE_DELTA_SCHEMA

log = logging.getLogger(__name__)

TRACES_DIR = "traces"
LLM_DUPS_DIR = "llm_dups"
_LLM = frozenset(LLM_OPERATIONS)
_LLM_VALUES = pa.array(sorted(_LLM), pa.string())
_TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")
_SUM_FIELDS = (*_TOKEN_FIELDS, "total_tokens", "llm_calls", "cost_unknown")


# What one counted LLM span adds to its trace's sums, in `_CONTRIBUTION_FIELDS` order (a tuple: the
# window holds one per recent LLM span, tens of thousands, so it must be small).
Contribution = tuple[Any, ...]
_CONTRIBUTION_FIELDS = (*_TOKEN_FIELDS, "total_tokens", "cost_unknown", "cost_usd")


@dataclasses.dataclass(slots=True)
class _LlmSpan:
    """What the stitcher remembers of a recent LLM span: enough to undo its contribution."""

    parent: str | None
    date: str
    written: bool = False
    dup: bool = False
    contribution: Contribution = ()


@dataclasses.dataclass(slots=True)
class _Window:
    """A recent trace's LLM spans, and which of them have which parent."""

    spans: dict[str, _LlmSpan] = dataclasses.field(default_factory=dict)
    children: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    touched: float = 0.0

    def register(self, span_id: str, parent: str | None, date: str) -> None:
        if span_id not in self.spans:
            self.spans[span_id] = _LlmSpan(parent, date)
            if parent:
                self.children.setdefault(parent, []).append(span_id)


@dataclasses.dataclass
class _Correction:
    project: str
    date: str
    trace_id: str
    span_id: str
    contribution: dict[str, Any]


class Stitcher:
    """Flush hook of `ParquetSpanWriter` (single-threaded: called from the writer's thread only)."""

    def __init__(self, data_dir: Path, *, window_s: float = 600.0, max_traces: int = 50_000) -> None:
        self._data_dir = data_dir
        self._window_s = window_s
        self._max_traces = max_traces
        self._windows: OrderedDict[tuple[str, str], _Window] = OrderedDict()
        self._pending: list[_Correction] = []
        self._unsubtracted: dict[tuple[str, str], list[_Correction]] = {}
        self._repair_later: dict[PartitionKey, list[tuple[int, int]]] = {}
        self.deltas_written = 0
        self.dups_marked = 0

    # -- hook API ---------------------------------------------------------------------------------

    def before_write(self, key: PartitionKey, spans: pa.Table) -> pa.Table:
        """The partition's rows with `llm_dup` set on LLM rows (True for a nested duplicate)."""
        project, date = key
        self._evict(time.monotonic())
        is_llm = llm_mask(spans)
        positions = pc.indices_nonzero(is_llm).to_pylist()
        if not positions:
            return spans
        llm = spans.select(_LLM_FIELDS).take(positions).to_pydict()
        for trace_id, span_id, parent in zip(llm["trace_id"], llm["span_id"], llm["parent_span_id"], strict=True):
            self._window(project, trace_id).register(span_id, parent, date)
        dups = [j for j in range(len(positions)) if self._mark(project, llm, j)]
        marks = pc.if_else(is_llm, pa.scalar(False), pa.scalar(None, pa.bool_()))
        if dups:
            values = marks.to_pylist()
            for j in dups:
                values[positions[j]] = True
            marks = pa.array(values, pa.bool_())
        return spans.set_column(spans.schema.get_field_index("llm_dup"), "llm_dup", marks)

    def after_write(self, key: PartitionKey, spans: pa.Table, wal_start: int, wal_end: int) -> None:
        """Write the partition's trace deltas, named by the WAL range of the span file just written.

        Never raises: the span file is already durable, and failing here would make the writer write
        it again. A failed delta is recomputed from the span file at the end of the flush (or at start).
        """
        try:
            self._write_deltas(key, spans, wal_start, wal_end)
        except Exception:
            log.exception(
                "trace summary delta for %s WAL [%d, %d) failed; recomputing it later", key, wal_start, wal_end
            )
            self._repair_later.setdefault(key, []).append((wal_start, wal_end))

    def _write_deltas(self, key: PartitionKey, spans: pa.Table, wal_start: int, wal_end: int) -> None:
        project, date = key
        llm = spans.select(["trace_id", "span_id"]).filter(llm_mask(spans)).to_pydict()  # no copy of wide columns
        for trace_id, span_id in zip(llm["trace_id"], llm["span_id"], strict=True):
            span = self._window(project, trace_id).spans.get(span_id)
            if span is not None:
                span.written = True
        corrections = self._take_corrections(project, pc.unique(spans.column("trace_id")).to_pylist())
        table = trace_deltas(spans, corrections)
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
        """Recompute deltas for span files (by partition and WAL range) that have none; returns how many."""
        repaired = 0
        for (project, date), wanted in ranges.items():
            have = {
                wal_range_of(p.name) for p in parquet_files(partition_dir(self._data_dir, project, date, TRACES_DIR))
            }
            for path in parquet_files(partition_dir(self._data_dir, project, date, SPANS_DIR)):
                wal_range = wal_range_of(path.name)
                if wal_range is None or wal_range in have or wal_range not in wanted:
                    continue
                spans = pq.read_table(path, schema=SPAN_SCHEMA)
                self._write(TRACES_DIR, project, date, trace_deltas(spans, []), *wal_range)
                repaired += 1
        return repaired

    # -- marking and pricing ------------------------------------------------------------------------

    def _window(self, project: str, trace_id: str) -> _Window:
        key = (project, trace_id)
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = _Window()
        else:
            self._windows.move_to_end(key)
        window.touched = time.monotonic()
        return window

    def _evict(self, now: float) -> None:
        while self._windows:
            key, window = next(iter(self._windows.items()))
            if now - window.touched < self._window_s and len(self._windows) <= self._max_traces:
                return
            del self._windows[key]

    def _mark(self, project: str, llm: dict[str, list[Any]], j: int) -> bool:
        """Mark LLM row `j` a duplicate when its parent is an LLM span of the same trace; True if so."""
        trace_id, span_id = llm["trace_id"][j], llm["span_id"][j]
        window = self._window(project, trace_id)
        span = window.spans[span_id]
        span.dup = span.parent in window.spans and span.parent != span_id
        span.contribution = _llm_contribution(llm, j)
        if span.dup:
            self.dups_marked += 1
        self._correct_written_children(project, trace_id, span_id, window)
        return span.dup

    def _correct_written_children(self, project: str, trace_id: str, parent_id: str, window: _Window) -> None:
        """A parent arriving after its LLM children were written: those children become duplicates."""
        for span_id in window.children.get(parent_id, ()):
            span = window.spans[span_id]
            if span.written and not span.dup and span_id != parent_id:
                span.dup = True
                self.dups_marked += 1
                correction = _Correction(project, span.date, trace_id, span_id, contribution_dict(span.contribution))
                self._pending.append(correction)
                self._unsubtracted.setdefault((project, trace_id), []).append(correction)

    def _take_corrections(self, project: str, trace_ids: Iterable[str]) -> list[_Correction]:
        taken: list[_Correction] = []
        for trace_id in trace_ids:
            taken.extend(self._unsubtracted.pop((project, trace_id), ()))
        return taken

    def _write(self, dataset: str, project: str, date: str, table: pa.Table, wal_start: int, wal_end: int) -> None:
        if table.num_rows == 0:
            return
        directory = partition_dir(self._data_dir, project, date, dataset)
        directory.mkdir(parents=True, exist_ok=True)
        name = f"part-{wal_start:016x}-{wal_end:016x}-{uuid.uuid4().hex[:12]}.parquet"
        write_durably(table, directory / name, row_group_size=64_000)


def llm_mask(spans: pa.Table) -> pa.ChunkedArray:
    """True for the rows that are model calls (they carry tokens and cost)."""
    return pc.fill_null(pc.is_in(spans.column("operation"), value_set=_LLM_VALUES), False)


_LLM_FIELDS = ["trace_id", "span_id", "parent_span_id", *_TOKEN_FIELDS, "total_tokens", "cost_known", "cost_usd"]


def _llm_contribution(llm: dict[str, list[Any]], j: int) -> Contribution:
    """What one counted LLM span adds to its trace's sums (see `_CONTRIBUTION_FIELDS`)."""
    known = bool(llm["cost_known"][j])
    tokens = tuple(llm[f][j] or 0 for f in (*_TOKEN_FIELDS, "total_tokens"))
    return (*tokens, 0 if known else 1, llm["cost_usd"][j] if known else Decimal(0))


def contribution_dict(contribution: Contribution) -> dict[str, Any]:
    """A contribution by field name (plus the one LLM call it is)."""
    return {**dict(zip(_CONTRIBUTION_FIELDS, contribution, strict=True)), "llm_calls": 1}


def _present(values: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Empty strings as null: a summary lists only values that say something."""
    return pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)


def _where(mask: Any, values: Any, otherwise: Any) -> Any:
    return pc.if_else(mask, values, otherwise)


def _delta_inputs(spans: pa.Table) -> pa.Table:
    """One row per span of what it adds to its trace's delta (zeros/nulls where it adds nothing)."""
    counted = pc.and_(llm_mask(spans), pc.invert(pc.fill_null(spans.column("llm_dup"), False)))
    known = pc.and_(counted, pc.fill_null(spans.column("cost_known"), False))
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
        "error_count": pc.cast(pc.fill_null(pc.equal(spans.column("status_code"), "ERROR"), False), pa.int64()),
        "llm_calls": pc.cast(counted, pa.int64()),
        "cost_unknown": pc.cast(pc.and_(counted, pc.invert(known)), pa.int64()),
        "cost_usd": _where(known, pc.fill_null(spans.column("cost_usd"), 0), pa.scalar(0, COST_TYPE)),
        "session_id": _present(spans.column("session_id")),
        "user_id": _present(spans.column("user_id")),
        "services": _present(spans.column("service_name")),
        "prompt_names": name,
        "prompts": _where(both, pc.binary_join_element_wise(name, version, "@"), name),
        "models": _where(counted, model, none),
        "providers": _where(counted, _present(spans.column("provider")), none),
    }
    for field in (*_TOKEN_FIELDS, "total_tokens"):
        columns[field] = _where(counted, pc.fill_null(spans.column(field), 0), pa.scalar(0, pa.int64()))
    return pa.table(columns)


_SUMMED = (*_TOKEN_FIELDS, "total_tokens", "llm_calls", "error_count", "cost_unknown", "cost_usd")
_SETS = ("services", "prompts", "prompt_names", "models", "providers")


def trace_deltas(spans: pa.Table, corrections: list[_Correction]) -> pa.Table:
    """Per-trace summary deltas of these span rows, minus the contributions of late-found duplicates."""
    inputs = _delta_inputs(spans)
    aggregates: list[tuple[str, str]] = [
        ("start_ns", "min"),
        ("end_ns", "max"),
        ("trace_id", "count"),
        ("is_root", "any"),
        ("session_id", "first"),
        ("user_id", "first"),
        *((field, "sum") for field in _SUMMED),
        *((field, "distinct") for field in _SETS),
    ]
    grouped = pa.TableGroupBy(inputs, "trace_id", use_threads=False).aggregate(aggregates)
    out: dict[str, Any] = {
        "trace_id": grouped.column("trace_id"),
        "updated_ns": pa.array([time.time_ns()] * grouped.num_rows, pa.int64()),
        "start_ns": grouped.column("start_ns_min"),
        "end_ns": grouped.column("end_ns_max"),
        "has_root": grouped.column("is_root_any"),
        "span_count": grouped.column("trace_id_count"),
        "session_id": grouped.column("session_id_first"),
        "user_id": grouped.column("user_id_first"),
        "tags": _tag_sets(spans, grouped.column("trace_id")),
    }
    out.update({field: grouped.column(f"{field}_sum") for field in _SUMMED})
    out.update({field: _none_if_empty(grouped.column(f"{field}_distinct")) for field in _SETS})
    out.update(_roots(spans, grouped.column("trace_id")))
    table = pa.table({name: out[name] for name in TRACE_DELTA_SCHEMA.names}).cast(TRACE_DELTA_SCHEMA)
    table = table.sort_by("trace_id")
    return _corrected(table, corrections) if corrections else table


def _none_if_empty(lists: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.if_else(pc.equal(pc.list_value_length(lists), 0), pa.scalar(None, lists.type), lists)


def _aligned(trace_ids: pa.ChunkedArray, keyed: pa.Table, column: str) -> pa.ChunkedArray:
    """`keyed[column]` in the order of `trace_ids` (null where a trace has no row)."""
    where = pc.index_in(trace_ids, value_set=keyed.column("trace_id"))
    return pc.take(keyed.column(column), where)


def _tag_sets(spans: pa.Table, trace_ids: pa.ChunkedArray) -> pa.ChunkedArray:
    tags = spans.column("tags").combine_chunks()
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


_ROOT_FIELDS = {
    "root_span_id": "span_id",
    "root_name": "name",
    "root_service": "service_name",
    "root_status": "status_code",
}


def _roots(spans: pa.Table, trace_ids: pa.ChunkedArray) -> dict[str, Any]:
    """The root span's fields per trace (the last root row when a trace has several)."""
    parent = spans.column("parent_span_id")
    is_root = pc.or_kleene(pc.is_null(parent), pc.equal(parent, ""))
    roots = spans.filter(is_root).select(["trace_id", *_ROOT_FIELDS.values()])
    if roots.num_rows == 0:
        return {name: pa.nulls(len(trace_ids), pa.string()) for name in _ROOT_FIELDS}
    last = pa.TableGroupBy(roots, "trace_id", use_threads=False).aggregate(
        [(column, "last", pc.ScalarAggregateOptions(skip_nulls=False)) for column in _ROOT_FIELDS.values()]
    )
    return {name: _aligned(trace_ids, last, f"{column}_last") for name, column in _ROOT_FIELDS.items()}


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
