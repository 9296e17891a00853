"""`TraceStore`: the only reader of the data dir; all SQL comes from `query.sql`.

Every data method takes the caller's `project` and reads only that project's files (its own
globs) and rows (`project = $project` on the summary tables), so one tenant can never see
another's data. List views read the summary index; span-level roll-ups read light span columns
only; captured content is read for one span's detail and for `q=` search, never for lists.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import msgspec
import pyarrow as pa

from llmscope_collector.query import rollups, sessions, sql
from llmscope_collector.query.content_kinds import ContentKinds
from llmscope_collector.query.db import Database, bind
from llmscope_collector.query.filters import (
    SCORE_SORT,
    Cursor,
    InvalidFilter,
    TimeRange,
    TraceQuery,
    ValueQuery,
    span_dates,
    trace_dates,
)
from llmscope_collector.query.footers import FooterWarmer
from llmscope_collector.query.index import SummaryIndex, parquet_names, subdirs
from llmscope_collector.query.models import (
    ContentPart,
    CostReport,
    DeletionReport,
    Metrics,
    MetricsSeries,
    PromptList,
    PromptVersions,
    SessionDetail,
    SessionPage,
    SpanDetail,
    StoreCounts,
    TracePage,
    ValueCount,
    ValueList,
    Waterfall,
)
from llmscope_collector.query.partials import CostPartials
from llmscope_collector.query.rows import money, reported_cost_differs, trace_summary
from llmscope_collector.query.span_rows import SpanRows
from llmscope_collector.query.vanished import until_read
from llmscope_collector.query.waterfall import build_waterfall
from llmscope_collector.storage.content_items import display_value, rehydrate_attributes
from llmscope_collector.storage.layout import (
    CONTENT_DIR,
    SPANS_DIR,
    has_span_files,
    partition_key,
    project_date_globs,
    project_glob,
    spans_glob,
)
from llmscope_collector.storage.schema import DERIVED_SPAN_COLUMNS, SPAN_COLUMNS, genai_names, waterfall_names

if TYPE_CHECKING:
    from llmscope_collector.alerts.metrics import RuleMetrics
    from llmscope_collector.storage.content import ContentRemoval

_TRACE_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_SPAN_ID_RE = re.compile(r"^[0-9a-f]{16}$")
_json = msgspec.json.Decoder()
_GENAI_FIELDS = genai_names(SPAN_COLUMNS)  # what a span detail serves in `genai`
_COSTS = [(c.name, pa.types.is_decimal(c.type)) for c in SPAN_COLUMNS if c.role == "cost"]  # (name, is money)
# The derived column of the content refs' kinds and sizes (JSON), which a waterfall row serves as `content`.
(_SIZES,) = waterfall_names(DERIVED_SPAN_COLUMNS)
_sizes_json = msgspec.json.Decoder(list[tuple[str | None, int | None] | None])
# Optimizer passes a point lookup (one table function, no join) gains nothing from, which walk every projected
# column's statistics over every row group of its files: 1.3 + 0.8 ms of a waterfall's ~13 ms of DuckDB CPU at
# 10M spans (36 columns, 21 row groups a day's file). Row groups are still pruned by the scan's own filter.
_POINT_PLAN_SKIPPED = ("join_order", "statistics_propagation")
_UNSIZED_KEPT = 4096  # partition states remembered without `content_sizes` (a few per date, dropped all when full)


class InvalidTraceId(ValueError):
    """A trace id that is not 32 hex characters (or is all zeros)."""


def normalize_trace_id(trace_id: str) -> str:
    """Lower-case hex trace id, or `InvalidTraceId` saying what a valid one looks like."""
    tid = trace_id.strip().lower()
    if not _TRACE_ID_RE.match(tid) or tid == "0" * 32:
        raise InvalidTraceId(f"trace id must be 32 hexadecimal characters and not all zeros, got {trace_id!r}")
    return tid


def normalize_span_id(span_id: str) -> str:
    sid = span_id.strip().lower()
    if not _SPAN_ID_RE.match(sid) or sid == "0" * 16:
        raise InvalidTraceId(f"span id must be 16 hexadecimal characters and not all zeros, got {span_id!r}")
    return sid


SPILL_DIR = "tmp"
"""Where DuckDB may spill a query bigger than its memory limit (under the data dir, not the cwd)."""


_MAX_LISTED_DATES = 62


def _partition_dates(params: dict[str, Any]) -> list[str] | None:
    """The dates a `from_date`..`to_date` query can touch, when few enough to list their partitions."""
    first, last = params.get("from_date"), params.get("to_date")
    if not isinstance(first, dt.date) or not isinstance(last, dt.date) or last < first:
        return None
    days = (last - first).days
    if days > _MAX_LISTED_DATES:
        return None
    return [(first + dt.timedelta(days=n)).isoformat() for n in range(days + 1)]


class TraceStore:
    """Reads traces from the Parquet files under `data_dir` through DuckDB."""

    def __init__(self, data_dir: Path, db: Database | None = None, *, trace_idle_s: float = 300.0) -> None:
        self._data_dir = data_dir
        self._glob = spans_glob(data_dir)
        self._db = db or Database(spill_dir=data_dir / SPILL_DIR)
        # One trace's or span's rows (`rows(point=True)`): a scan of one row group, where a second thread only
        # adds its own start-up (1.5 ms of 11 per waterfall at 10M spans), while roll-ups want both. Its footer
        # cache spares each lookup the parse of its files' footers (a day's file at 10M spans: 21 row groups,
        # a 160 kB footer, ~3 ms of the waterfall's CPU).
        self._lookups = Database(
            threads=1,
            memory_limit="256MB",
            spill_dir=data_dir / SPILL_DIR,
            footer_cache=True,
            disabled_optimizers=_POINT_PLAN_SKIPPED,
        )
        # Parses the newest span files' footers into `_lookups` ahead of the waterfalls (started by the first
        # read of the summary index: a store no one reads never opens `_lookups`).
        self._warmer = FooterWarmer(data_dir / SPANS_DIR, self._lookups)
        weakref.finalize(self, self._warmer.stop)  # a store dropped unclosed leaves no thread polling forever
        self._content_kinds = ContentKinds()
        # Span partition states (`_partition_state`) whose files lack `content_sizes`, where a waterfall goes
        # straight to the refs instead of failing the query's bind first (~3 ms of CPU each time).
        self._unsized: set[tuple[Any, ...]] = set()
        self._index = SummaryIndex(data_dir, self._db)
        self._partials = CostPartials(data_dir, self._db, self._index)
        self._idle_ns = int(trace_idle_s * 1e9)
        self._span_rows = SpanRows(data_dir)
        self.deletion_lock = threading.Lock()  # one deletion at a time per store (query.deletion)

    @property
    def data_dir(self) -> Path:
        return self._data_dir

    @property
    def index(self) -> SummaryIndex:
        return self._index

    @property
    def partials(self) -> CostPartials:
        return self._partials

    def _rows(self, query: str, params: dict[str, Any], db: Database | None = None) -> list[dict[str, Any]]:
        if "glob" not in params and not has_span_files(self._data_dir):
            return []
        return self._execute(query, {"glob": self._glob, **params}, db)

    def _execute(self, query: str, params: dict[str, Any], db: Database | None = None) -> list[dict[str, Any]]:
        return self._retried(query, lambda: params, db)

    def _retried(
        self, query: str, params_of: Callable[[], dict[str, Any] | None], db: Database | None = None
    ) -> list[dict[str, Any]]:
        """Run `query` with `params_of()` (None: no rows), listed and run again while a file it names has just
        been removed by a compaction or retention (`vanished.until_read`)."""
        return until_read(lambda: self._read_once(query, params_of, db))

    def _read_once(
        self, query: str, params_of: Callable[[], dict[str, Any] | None], db: Database | None = None
    ) -> list[dict[str, Any]]:
        """Run `query` with `params_of()` (None: no rows), once: a vanished file raises (`_retried` retries)."""
        params = params_of()
        if params is None:
            return []
        cur = (db or self._db).cursor()
        try:
            result = cur.execute(query, bind(query, params))
            names = [d[0] for d in result.description or ()]
            return [dict(zip(names, row, strict=True)) for row in result.fetchall()]
        finally:
            cur.close()

    def rows(
        self, project: str, query: str, params: dict[str, Any], dataset: str = SPANS_DIR, *, point: bool = False
    ) -> list[dict[str, Any]]:
        """Run `query` with `$glob` bound to the project's files of `dataset` (no files: no rows); `point`: a
        query of one trace's or span's rows (on the single-threaded connection)."""
        db = self._lookups if point else None
        dates = _partition_dates(params)
        if dates is not None:
            globs = project_date_globs(self._data_dir, dataset, project, dates)
            return self._rows(query, {**params, "glob": globs}, db) if globs else []
        glob = project_glob(self._data_dir, dataset, project)
        if glob is None:
            return []
        return self._rows(query, {**params, "glob": glob}, db)

    def trace_rows(
        self, project: str, query: str, params: dict[str, Any], *, retry: bool = True
    ) -> list[dict[str, Any]]:
        """Run `query`, a read of one trace's span rows from `$files`, over the project's span files of the dates
        `from_date`..`to_date` of `params`, named one by one (listed again where one vanished), on the
        single-threaded connection; `$by_name` tells DuckDB to match columns by name across several files.
        `retry=False`: listed and run once, for a caller that retries a larger read itself (one patience,
        not one inside another)."""

        def bound() -> dict[str, Any] | None:
            files = self._span_files(project, params["from_date"], params["to_date"])
            return {**params, "files": files, "by_name": len(files) > 1} if files else None

        if retry:
            return self._retried(query, bound, self._lookups)
        return self._read_once(query, bound, self._lookups)

    def _span_files(self, project: str, first: dt.date, last: dt.date) -> list[str]:
        """The project's span files dated `first`..`last` (the partitions of a few dates, else every date's)."""
        listed = _partition_dates({"from_date": first, "to_date": last})
        root = str(self._data_dir)
        if listed is not None:
            dirs = [os.path.join(root, partition_key(project, date)) for date in listed]
        else:
            low, high = f"date={first.isoformat()}", f"date={last.isoformat()}"
            project_dir = os.path.dirname(os.path.join(root, partition_key(project, first.isoformat())))
            dirs = [d for d in subdirs(project_dir, "date=") if low <= os.path.basename(d) <= high]
        return sorted(os.path.join(d, name) for d in dirs for name in parquet_names(d))

    def table_rows(self, query: str, params: dict[str, Any], *, refresh: bool = True) -> list[dict[str, Any]]:
        """Run `query` over the in-memory tables (the summary index refreshed first unless the caller just
        did); files are read only where the query names a `$glob` the caller bound."""
        if refresh:
            self._warmer.start()
            self._index.refresh()
        return self._execute(query, params)

    def state_params(self) -> dict[str, Any]:
        return {"now_ns": time.time_ns(), "idle_ns": self._idle_ns}

    # -- traces ----------------------------------------------------------------------------------

    def get_trace(self, trace_id: str, project: str = "default") -> Waterfall | None:
        """The waterfall of one trace, or None when no span of it is stored."""
        tid = normalize_trace_id(trace_id)
        summary = self._summary_row(project, tid)
        rows = self._in_trace_dates(summary, lambda dates: self._trace_spans(project, tid, dates))
        if not rows:
            return None
        waterfall = build_waterfall(tid, rows)
        if summary is not None:
            waterfall.state = summary["state"]
            waterfall.session_id = summary["session_id"]
            waterfall.user_id = summary["user_id"]
        return waterfall

    def _trace_spans(self, project: str, trace_id: str, dates: dict[str, Any]) -> list[dict[str, Any]]:
        rows = self._sized_spans(project, trace_id, dates)
        if rows is None:
            rows = self._located_spans(project, trace_id, dates)
        rows.sort(key=lambda r: (r["start_ns"], r["span_id"]))  # (sql.TRACE_SPANS leaves the order to us)
        return [r for r in rows if r["trace_id"] == trace_id]

    def _sized_spans(self, project: str, trace_id: str, dates: dict[str, Any]) -> list[dict[str, Any]] | None:
        """The trace's rows with their refs' kinds and sizes from `content_sizes`; None where a file of
        them lacks it (schema version < 4, until compaction rewrites it)."""
        state = self._partition_state(project, dates)  # (taken before the query: a change after it is a new state)
        if state is not None and state in self._unsized:
            return None
        try:
            rows = self.trace_rows(project, sql.TRACE_SPANS, {"trace_id": trace_id, **dates})
        except duckdb.BinderException as exc:
            if _SIZES not in str(exc):
                raise
            if state is not None:
                if len(self._unsized) >= _UNSIZED_KEPT:
                    self._unsized.clear()
                self._unsized.add(state)
            return None  # no file of these dates has the column
        for row in rows:
            sizes = row.pop(_SIZES)
            if sizes is None:
                if row.pop("content_bytes") is not None:  # refs, in an older file
                    return None
                row["content"] = None
            else:
                del row["content_bytes"]
                row["content"] = [
                    None if p is None else {"kind": p[0], "bytes": p[1]} for p in _sizes_json.decode(sizes)
                ]
        return rows

    def _partition_state(self, project: str, dates: dict[str, Any]) -> tuple[Any, ...] | None:
        """The span partitions of `dates` that exist, each with its directory's modification time, which a file
        written, compacted or deleted in it changes; None when there are too many dates to list."""
        listed = _partition_dates(dates)
        if listed is None:
            return None
        state: list[Any] = [project]
        root = str(self._data_dir)
        for date in listed:
            try:
                state.append((date, os.stat(os.path.join(root, partition_key(project, date))).st_mtime_ns))
            except FileNotFoundError:
                continue
        return tuple(state)

    def _located_spans(self, project: str, trace_id: str, dates: dict[str, Any]) -> list[dict[str, Any]]:
        """The trace's rows with their refs' kinds and sizes read from the refs (`query.content_kinds`)."""

        def read() -> list[dict[str, Any]]:
            # Both reads once, retried together: a ref's file compacted away since DuckDB read the rows means
            # reading the rows again, within the one patience of `until_read`.
            params = {"trace_id": trace_id, **dates}
            rows = self.trace_rows(project, sql.TRACE_SPANS_LOCATED, params, retry=False)
            self._content_kinds.fill(rows)
            return rows

        return until_read(read)

    @staticmethod
    def _in_trace_dates(
        summary: dict[str, Any] | None, read: Callable[[dict[str, Any]], list[dict[str, Any]]], wanted: int = 0
    ) -> list[dict[str, Any]]:
        """`read` rows of a trace in the partitions of its summary's dates; where that finds fewer than `wanted`
        (default: the spans the summary counts; a span dated outside them), again with a day's margin each
        side; without a summary, in every partition."""
        if summary is None:
            return read(TimeRange().params())
        start, end = summary["start_ns"], summary["start_ns"] + summary["duration_ns"]
        rows = read(trace_dates(start, end))
        if len(rows) < (wanted or summary["span_count"]):
            rows = read(span_dates(start, end))
        return rows

    def waterfalls(self, project: str, trace_ids: Sequence[str], start_ns: int, end_ns: int) -> list[Waterfall]:
        wanted = [normalize_trace_id(t) for t in trace_ids]
        rows = self.rows(project, sql.MANY_TRACE_SPANS, {"trace_ids": wanted, **span_dates(start_ns, end_ns)})
        return waterfalls_of(wanted, rows)

    def _summary_row(self, project: str, trace_id: str) -> dict[str, Any] | None:
        rows = self.table_rows(sql.TRACE_PLACE, {"project": project, "trace_id": trace_id, **self.state_params()})
        return rows[0] if rows else None

    def list_traces(self, project: str, query: TraceQuery) -> TracePage:
        """One page of trace summaries, newest first by default; `next_cursor` continues it."""
        names, params = self._trace_filters(project, query)
        has_cursor = add_cursor(params, query)
        text = sql.list_traces(names, query.sort_key, query.order, has_cursor)
        return trace_page(self.table_rows(text, {**params, "project": project, "limit": query.limit + 1}), query)

    def trace_values(self, project: str, query: ValueQuery) -> ValueList:
        """The distinct values of one trace field over a time range, with their trace counts."""
        names, params = value_params(query)
        text = sql.trace_values(query.field, names, "prefix" in params)
        return value_list(query, self.table_rows(text, {**params, "project": project}))

    def _trace_filters(self, project: str, query: TraceQuery) -> tuple[list[str], dict[str, Any]]:
        names, params = trace_filter_params(query)
        restrict_to_matches(names, params, self._span_matches(project, query), query)
        params.update(self.state_params())
        return names, params

    def _span_matches(self, project: str, query: TraceQuery) -> list[str] | None:
        """Trace ids matching the span-level filters (attributes, content search); None when there are none."""
        if not query.attrs and query.q is None:
            return None
        matched: set[str] | None = None
        time_params = query.time.params()
        for path, value in query.attrs:
            rows = self.rows(project, sql.ATTR_MATCH, {"attr_path": path, "attr_value": value, **time_params})
            ids = {r["trace_id"] for r in rows}
            matched = ids if matched is None else matched & ids
        if query.q is not None:
            hashes = [
                r["hash"] for r in self.rows(project, sql.CONTENT_SEARCH, {"q": query.q, **time_params}, CONTENT_DIR)
            ]
            rows = self.rows(project, sql.SPANS_WITH_CONTENT, {"hashes": hashes, **time_params}) if hashes else []
            ids = {r["trace_id"] for r in rows}
            matched = ids if matched is None else matched & ids
        return sorted(matched or ())

    # -- spans -----------------------------------------------------------------------------------

    def get_span(self, project: str, trace_id: str, span_id: str) -> SpanDetail | None:
        """One span with every attribute, its events and its captured content (rehydrated)."""
        tid, sid = normalize_trace_id(trace_id), normalize_span_id(span_id)
        summary = self._summary_row(project, tid)
        params = {"trace_id": tid, "span_id": sid}
        rows = self._in_trace_dates(
            summary, lambda d: self.rows(project, sql.SPAN_DETAIL, {**params, **d}, point=True), wanted=1
        )
        if not rows:
            return None
        row = rows[0]
        content = self._content(project, row)
        late_dup = self.table_rows(sql.LATE_DUP, {"project": project, "trace_id": tid, "span_id": sid})[0]["n"]
        return _span_detail(row, content, counted=_span_counted(row, bool(late_dup)))

    def _content(self, project: str, row: dict[str, Any]) -> list[ContentPart]:
        refs = row.get("content_refs") or []
        if not refs:
            return []
        date = row["date"].isoformat() if isinstance(row.get("date"), dt.date) else str(row.get("date"))
        glob = project_glob(self._data_dir, CONTENT_DIR, project, date)
        hashes = sorted({r["hash"] for r in refs})
        found = (
            {r["hash"]: r["body"] for r in self._rows(sql.CONTENT_BODIES, {"glob": glob, "hashes": hashes})}
            if glob
            else {}
        )
        parts = []
        for ref in refs:
            body = found.get(ref["hash"])
            value = None if body is None else _json.decode(body)
            parts.append(
                ContentPart(
                    kind=ref["kind"],
                    source=ref["source"],
                    hash=ref["hash"],
                    bytes=ref["bytes"] or 0,
                    value=value,
                    available=body is not None,
                )
            )
        return parts

    # -- sessions, roll-ups, deletion (delegated) ------------------------------------------------

    def list_sessions(
        self, project: str, time_range: TimeRange, user: str | None, limit: int, cursor: str | None
    ) -> SessionPage:
        return sessions.list_sessions(self, project, time_range, user, limit, cursor)

    def get_session(self, project: str, session_id: str, limit: int = 500) -> SessionDetail | None:
        return sessions.get_session(self, project, session_id, limit)

    def delete_session(
        self, project: str, session_id: str, content_removal: ContentRemoval | None = None
    ) -> DeletionReport:
        from llmscope_collector.query.deletion import delete_session

        return delete_session(self, project, session_id, content_removal)

    def costs(
        self, project: str, group_by: Sequence[str], time_range: TimeRange, filters: dict[str, str]
    ) -> CostReport:
        return rollups.costs(self, project, list(group_by), time_range, filters)

    def metrics_summary(self, project: str, time_range: TimeRange, filters: dict[str, str]) -> Metrics:
        return rollups.metrics_summary(self, project, time_range, filters)

    def metrics_series(
        self, project: str, interval: str, group_by: str | None, time_range: TimeRange, filters: dict[str, str]
    ) -> MetricsSeries:
        return rollups.metrics_series(self, project, interval, group_by, time_range, filters)

    def prompts(self, project: str, time_range: TimeRange) -> PromptList:
        return rollups.prompts(self, project, time_range)

    def prompt_versions(self, project: str, name: str, time_range: TimeRange) -> PromptVersions:
        return rollups.prompt_versions(self, project, name, time_range)

    def trace_keys(self, project: str, trace_ids: Sequence[str], group_by: str) -> dict[str, list[str]]:
        rows = self.table_rows(sql.TRACE_KEYS[group_by], {"project": project, "trace_ids": list(trace_ids)})
        return {r["trace_id"]: list(r["keys"] or []) for r in rows}

    def counts(self, *, traces: bool = False) -> StoreCounts:
        if not traces:  # what a probe asks: no DuckDB (query.span_rows)
            return StoreCounts(spans=self._span_rows.total(), traces=None)
        rows = self._rows(sql.COUNTS, {})
        if not rows:
            return StoreCounts(spans=0, traces=0)
        return StoreCounts(spans=int(rows[0]["spans"]), traces=int(rows[0]["traces"]))

    def rule_metrics(self, files: RuleMetrics) -> RuleMetrics:
        """The alert reader of the files is this engine's: the evaluator keeps its own bounded DuckDB."""
        return files

    def close(self) -> None:
        self._warmer.close()
        self._db.close()
        self._lookups.close()


def waterfalls_of(trace_ids: Sequence[str], rows: list[dict[str, Any]]) -> list[Waterfall]:
    """The waterfall of each trace id that has rows (rows sorted by trace id), in the order of `trace_ids`."""
    by_trace: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_trace.setdefault(row["trace_id"], []).append(row)
    return [build_waterfall(t, by_trace[t]) for t in trace_ids if t in by_trace]


def trace_filter_params(query: TraceQuery) -> tuple[list[str], dict[str, Any]]:
    """The trace-list filters as bound parameters and the names of the SQL conditions they switch on;
    the same for every query engine (each engine's SQL has a condition per name)."""
    values: dict[str, Any] = {
        "service": query.service,
        "model": query.model,
        "provider": query.provider,
        "session": query.session,
        "user": query.user,
        "prompt_name": query.prompt_name,
        "tag": query.tag,
        "min_cost": query.min_cost,
        "min_tokens": query.min_tokens,
        "state": query.state,
    }
    if query.time.from_ns:
        values["from_ns"] = query.time.from_ns
    if query.time.bounded and query.time.to_ns < TimeRange().to_ns:
        values["to_ns"] = query.time.to_ns
    if query.prompt_version is not None:
        values["prompt_ref"] = f"{query.prompt_name}@{query.prompt_version}"
    if query.min_duration_ms is not None:
        values["min_duration_ns"] = int(query.min_duration_ms * 1_000_000)
    params = {k: v for k, v in values.items() if v is not None}
    names = list(params)
    if query.score_keys is not None:  # the score sort's keys (no condition name: the sort joins them)
        params["score_traces"] = [trace for trace, _ in query.score_keys]
        params["score_values"] = [value for _, value in query.score_keys]
    if query.status is not None:
        names.append("errors" if query.status == "error" else "no_errors")
    return names, params


def value_params(query: ValueQuery) -> tuple[list[str], dict[str, Any]]:
    """The time filters of a value query (those of the trace list) and its bound prefix and limit."""
    names, params = trace_filter_params(TraceQuery(time=query.time))
    params["limit"] = query.limit
    if query.prefix:
        params["prefix"] = query.prefix
    return names, params


def value_list(query: ValueQuery, rows: list[dict[str, Any]]) -> ValueList:
    return ValueList(
        field=query.field, values=[ValueCount(value=r["value"], traces=int(r["trace_count"])) for r in rows]
    )


def restrict_to_matches(names: list[str], params: dict[str, Any], matched: list[str] | None, query: TraceQuery) -> None:
    """Narrow the list to the traces the span-level filters matched and to `query.trace_ids` (if any)."""
    if query.trace_ids is not None:
        allowed = set(query.trace_ids)
        matched = sorted(allowed if matched is None else allowed.intersection(matched))
    if matched is not None:
        names.append("trace_ids")
        params["trace_ids"] = matched


def add_cursor(params: dict[str, Any], query: TraceQuery) -> bool:
    """Bind the page cursor of `query` (if any); True when the SQL must start after it."""
    if not query.cursor:
        return False
    cursor = Cursor.decode(query.cursor, query.sort, query.order)
    params["cursor_key"] = _cursor_key(query.sort, cursor.key)
    params["cursor_trace"] = cursor.last
    return True


def trace_page(rows: list[dict[str, Any]], query: TraceQuery) -> TracePage:
    """A page from `limit + 1` rows: the extra row only says there is a next page."""
    page = [trace_summary(r) for r in rows[: query.limit]]
    next_cursor = None
    if len(rows) > query.limit:
        last = rows[query.limit - 1]
        next_cursor = Cursor(query.sort, query.order, str(last["sort_key"]), last["trace_id"]).encode()
    return TracePage(traces=page, next_cursor=next_cursor)


def _cursor_key(sort: str, raw: str) -> Any:
    try:
        if sort.startswith(SCORE_SORT):
            key = float(raw)
            if not math.isfinite(key):
                raise ValueError(raw)
            return key
        return Decimal(raw) if sort == "cost" else int(raw)
    except (ValueError, ArithmeticError):
        raise InvalidFilter("cursor", "is not a cursor returned by this endpoint") from None


def _decode_json(raw: str | None, default: Any) -> Any:
    if not raw:
        return default
    try:
        return _json.decode(raw)
    except msgspec.DecodeError:
        return default


def _span_counted(row: dict[str, Any], late_dup: bool) -> bool | None:
    if row.get("operation") not in sql.LLM_OPERATION_SET:
        return None
    return not (row.get("llm_dup") or late_dup)


def _genai(row: dict[str, Any]) -> dict[str, Any]:
    """The span's canonical GenAI values that are set (an empty map is not set)."""
    values: dict[str, Any] = {}
    for name in _GENAI_FIELDS:
        value = row.get(name)
        if isinstance(value, dict):
            if value:
                values[name] = dict(value)
        elif isinstance(value, Decimal):  # (a reported cost: money as a float, like the cost columns)
            values[name] = money(value)
        elif value is not None:
            values[name] = value
    return values


def _costs(row: dict[str, Any]) -> dict[str, Any]:
    return {name: money(row.get(name)) if money_column else row.get(name) for name, money_column in _COSTS}


def _span_detail(row: dict[str, Any], content: list[ContentPart], counted: bool | None) -> SpanDetail:
    light = _decode_json(row.get("attributes"), {})
    items = [(c.kind, c.source, c.value) for c in content if c.available]
    for part in content:
        part.value = display_value(part.value)
    return SpanDetail(
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        parent_span_id=row["parent_span_id"],
        name=row["name"],
        kind=row["kind"],
        start_time_unix_nano=row["start_ns"],
        end_time_unix_nano=row["end_ns"],
        duration_ms=(row["duration_ns"] or 0) / 1_000_000,
        status_code=row["status_code"],
        status_message=row["status_message"],
        service_name=row["service_name"],
        scope_name=row["scope_name"],
        scope_version=row["scope_version"],
        resource_attributes=_decode_json(row.get("resource_attributes"), {}),
        attributes=rehydrate_attributes(light, items),
        events=_decode_json(row.get("events"), []),
        links=_decode_json(row.get("links"), []),
        genai=_genai(row),
        **_costs(row),
        reported_cost_differs=reported_cost_differs(row),
        counted=counted,
        content=content,
    )
