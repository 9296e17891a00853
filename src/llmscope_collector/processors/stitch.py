"""The stitcher: prices spans, marks duplicate LLM spans and keeps per-trace summaries, at flush time.

It is the Parquet writer's flush hook, so it sees exactly the rows being written, in WAL order:

1. `before_write` (per partition, before the span file): price every LLM span (`processors.cost`),
   mark an LLM span nested directly in another LLM span as `llm_dup` (the anthropic client's own
   span under the SDK's span for the same call: counted once), and store the partition's captured
   content (`storage.content`) so no written span ever points at missing content.
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
import pyarrow.parquet as pq

from llmscope_collector.processors.cost import UNKNOWN, PriceBook, SpanCost, sanitize_usage
from llmscope_collector.processors.decode import Columns, PartitionKey
from llmscope_collector.processors.normalize import LLM_OPERATIONS
from llmscope_collector.storage.content import ContentStore
from llmscope_collector.storage.layout import SPANS_DIR, parquet_files, partition_dir, wal_range_of
from llmscope_collector.storage.parquet_writer import write_durably
from llmscope_collector.storage.schema import CONTENT_ITEMS, LLM_DUP_SCHEMA, SPAN_SCHEMA, TRACE_DELTA_SCHEMA

log = logging.getLogger(__name__)

TRACES_DIR = "traces"
LLM_DUPS_DIR = "llm_dups"
_LLM = frozenset(LLM_OPERATIONS)
_TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")
_SUM_FIELDS = (*_TOKEN_FIELDS, "total_tokens", "llm_calls", "cost_unknown")


@dataclasses.dataclass
class _LlmSpan:
    """What the stitcher remembers of a recent LLM span: enough to undo its contribution."""

    parent: str | None
    date: str
    written: bool = False
    dup: bool = False
    contribution: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
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

    def __init__(
        self,
        data_dir: Path,
        prices: PriceBook | None = None,
        content: ContentStore | None = None,
        *,
        window_s: float = 600.0,
        max_traces: int = 200_000,
    ) -> None:
        self._data_dir = data_dir
        self._prices = prices or PriceBook()
        self._content = content or ContentStore(data_dir)
        self._window_s = window_s
        self._max_traces = max_traces
        self._windows: OrderedDict[tuple[str, str], _Window] = OrderedDict()
        self._pending: list[_Correction] = []
        self._unsubtracted: dict[tuple[str, str], list[_Correction]] = {}
        self._repair_later: dict[PartitionKey, list[tuple[int, int]]] = {}
        self.deltas_written = 0
        self.dups_marked = 0

    # -- hook API ---------------------------------------------------------------------------------

    def before_write(self, key: PartitionKey, cols: Columns) -> None:
        """Price and mark the rows of one partition in place, then store their content."""
        project, date = key
        self._evict(time.monotonic())
        rows = range(len(cols["span_id"]))
        for i in rows:
            if cols["operation"][i] in _LLM:
                window = self._window(project, cols["trace_id"][i])
                window.register(cols["span_id"][i], cols["parent_span_id"][i], date)
        for i in rows:
            self._price_and_mark(project, cols, i)
        items = cols.get(CONTENT_ITEMS)
        if items:
            self._content.write(project, date, (item for span_items in items for item in span_items))

    def after_write(self, key: PartitionKey, cols: Columns, wal_start: int, wal_end: int) -> None:
        """Write the partition's trace deltas, named by the WAL range of the span file just written.

        Never raises: the span file is already durable, and failing here would make the writer write
        it again. A failed delta is recomputed from the span file at the end of the flush (or at start).
        """
        try:
            self._write_deltas(key, cols, wal_start, wal_end)
        except Exception:
            log.exception(
                "trace summary delta for %s WAL [%d, %d) failed; recomputing it later", key, wal_start, wal_end
            )
            self._repair_later.setdefault(key, []).append((wal_start, wal_end))

    def _write_deltas(self, key: PartitionKey, cols: Columns, wal_start: int, wal_end: int) -> None:
        project, date = key
        for i in range(len(cols["span_id"])):
            if cols["operation"][i] in _LLM:
                span = self._window(project, cols["trace_id"][i]).spans.get(cols["span_id"][i])
                if span is not None:
                    span.written = True
        corrections = self._take_corrections(project, set(cols["trace_id"]))
        table = trace_deltas(cols, corrections)
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
                cols = pq.read_table(path, schema=SPAN_SCHEMA).to_pydict()
                self._write(TRACES_DIR, project, date, trace_deltas(cols, []), *wal_range)
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

    def _price_and_mark(self, project: str, cols: Columns, i: int) -> None:
        if cols["operation"][i] not in _LLM:
            return
        cost = self._price(cols, i)
        cols["cost_usd"][i], cols["cost_input_usd"][i], cols["cost_output_usd"][i] = cost.total, cost.input, cost.output
        cols["cost_known"][i], cols["cost_source"][i] = cost.known, cost.source
        window = self._window(project, cols["trace_id"][i])
        span_id = cols["span_id"][i]
        span = window.spans[span_id]
        span.dup = span.parent in window.spans and span.parent != span_id
        cols["llm_dup"][i] = span.dup
        span.contribution = _llm_contribution(cols, i)
        if span.dup:
            self.dups_marked += 1
        self._correct_written_children(project, cols["trace_id"][i], span_id, window)

    def _price(self, cols: Columns, i: int) -> SpanCost:
        tokens = [cols[f][i] for f in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")]
        usage = None if all(t is None for t in tokens) else sanitize_usage(*tokens)
        models = (cols["response_model"][i], cols["request_model"][i])
        if not any(models):
            return UNKNOWN
        error = cols["status_code"][i] == "ERROR"
        return self._prices.cost(cols["provider"][i], models, cols["start_ns"][i], usage, error=error)

    def _correct_written_children(self, project: str, trace_id: str, parent_id: str, window: _Window) -> None:
        """A parent arriving after its LLM children were written: those children become duplicates."""
        for span_id in window.children.get(parent_id, ()):
            span = window.spans[span_id]
            if span.written and not span.dup and span_id != parent_id:
                span.dup = True
                self.dups_marked += 1
                correction = _Correction(project, span.date, trace_id, span_id, span.contribution)
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


def _llm_contribution(cols: Columns, i: int) -> dict[str, Any]:
    """What one counted LLM span adds to its trace's sums."""
    contribution: dict[str, Any] = {f: cols[f][i] or 0 for f in (*_TOKEN_FIELDS, "total_tokens")}
    contribution["llm_calls"] = 1
    known = bool(cols["cost_known"][i])
    contribution["cost_unknown"] = 0 if known else 1
    contribution["cost_usd"] = cols["cost_usd"][i] if known else Decimal(0)
    return contribution


@dataclasses.dataclass
class _Delta:
    start_ns: int
    end_ns: int
    has_root: bool = False
    root: dict[str, Any] = dataclasses.field(default_factory=dict)
    span_count: int = 0
    error_count: int = 0
    sums: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(_SUM_FIELDS, 0))
    cost: Decimal = Decimal(0)
    session_id: str | None = None
    user_id: str | None = None
    sets: dict[str, dict[str, None]] = dataclasses.field(default_factory=dict)

    def add(self, field: str, value: str | None) -> None:
        if value:
            self.sets.setdefault(field, {})[value] = None

    def apply(self, contribution: dict[str, Any], sign: int) -> None:
        for field in _SUM_FIELDS:
            self.sums[field] += sign * int(contribution.get(field) or 0)
        self.cost += sign * (contribution.get("cost_usd") or Decimal(0))


def trace_deltas(cols: Columns | dict[str, list[Any]], corrections: list[_Correction]) -> pa.Table:
    """Per-trace summary deltas of these span rows, minus the contributions of late-found duplicates."""
    deltas: dict[str, _Delta] = {}
    for i in range(len(cols["span_id"])):
        trace_id = cols["trace_id"][i]
        delta = deltas.get(trace_id)
        if delta is None:
            delta = deltas[trace_id] = _Delta(cols["start_ns"][i], cols["end_ns"][i])
        _add_span(delta, cols, i)
    for c in corrections:
        if c.trace_id in deltas:
            deltas[c.trace_id].apply(c.contribution, -1)
    return _delta_table(deltas)


def _add_span(delta: _Delta, cols: Columns | dict[str, list[Any]], i: int) -> None:
    delta.start_ns = min(delta.start_ns, cols["start_ns"][i])
    delta.end_ns = max(delta.end_ns, cols["end_ns"][i])
    delta.span_count += 1
    delta.error_count += cols["status_code"][i] == "ERROR"
    if not cols["parent_span_id"][i]:
        delta.has_root = True
        delta.root = {
            "root_span_id": cols["span_id"][i],
            "root_name": cols["name"][i],
            "root_service": cols["service_name"][i],
            "root_status": cols["status_code"][i],
        }
    delta.session_id = delta.session_id or cols["session_id"][i]
    delta.user_id = delta.user_id or cols["user_id"][i]
    delta.add("services", cols["service_name"][i])
    for tag in cols["tags"][i] or ():
        delta.add("tags", tag)
    name, version = cols["prompt_name"][i], cols["prompt_version"][i]
    delta.add("prompt_names", name)
    delta.add("prompts", f"{name}@{version}" if name and version else name)
    if cols["operation"][i] in _LLM and not cols["llm_dup"][i]:
        delta.apply(_llm_contribution(cols, i), +1)
        delta.add("models", cols["response_model"][i] or cols["request_model"][i])
        delta.add("providers", cols["provider"][i])


def _delta_table(deltas: dict[str, _Delta]) -> pa.Table:
    now = time.time_ns()
    rows: dict[str, list[Any]] = {name: [] for name in TRACE_DELTA_SCHEMA.names}
    for trace_id, d in sorted(deltas.items()):
        row: dict[str, Any] = {
            "trace_id": trace_id,
            "updated_ns": now,
            "start_ns": d.start_ns,
            "end_ns": d.end_ns,
            "has_root": d.has_root,
            "span_count": d.span_count,
            "error_count": d.error_count,
            "cost_usd": d.cost,
            "session_id": d.session_id,
            "user_id": d.user_id,
            **d.sums,
            **d.root,
        }
        for field in ("services", "tags", "prompts", "prompt_names", "models", "providers"):
            row[field] = list(d.sets.get(field, {})) or None
        for name in TRACE_DELTA_SCHEMA.names:
            rows[name].append(row.get(name))
    return pa.Table.from_pydict(rows, schema=TRACE_DELTA_SCHEMA)
