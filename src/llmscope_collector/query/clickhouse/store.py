"""`ClickHouseStore`: the `QueryBackend` calls answered by ClickHouse (a server, or chdb in-process).

Each call loads what is new in the object source first (`Loader.refresh`), then runs statements of
`clickhouse.sql` and builds the responses with the same code as the DuckDB store (`query.rows`,
`query.waterfall`, `query.rollups`), so the two engines differ only in their SQL.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmscope_collector.query import sql as duck_sql
from llmscope_collector.query.backend import DeletionUnsupported
from llmscope_collector.query.clickhouse import sql
from llmscope_collector.query.clickhouse.client import ClickHouseClient, connect
from llmscope_collector.query.clickhouse.loader import BucketSource, DirectorySource, Loader, ObjectSource
from llmscope_collector.query.deletion import remove_from_files, session_trace_ids
from llmscope_collector.query.filters import (
    InvalidFilter,
    TimeRange,
    TraceQuery,
    ValueQuery,
    check_session_id,
    span_dates,
)
from llmscope_collector.query.models import (
    ContentPart,
    CostGroup,
    CostReport,
    DeletionReport,
    Metrics,
    MetricsPoint,
    MetricsSeries,
    PromptList,
    PromptSummary,
    PromptVersion,
    PromptVersions,
    SessionDetail,
    SessionPage,
    SpanDetail,
    StoreCounts,
    TracePage,
    ValueList,
    Waterfall,
)
from llmscope_collector.query.partials import HOUR_NS
from llmscope_collector.query.rollups import _prompt_stats, _span_filters, _text, metrics
from llmscope_collector.query.rows import session_summary, trace_summary, usage
from llmscope_collector.query.sessions import session_page, session_page_params
from llmscope_collector.query.store import (
    TraceStore,
    _json,
    _span_counted,
    _span_detail,
    add_cursor,
    normalize_span_id,
    normalize_trace_id,
    restrict_to_matches,
    trace_filter_params,
    trace_page,
    value_list,
    value_params,
    waterfalls_of,
)
from llmscope_collector.query.waterfall import build_waterfall
from llmscope_collector.storage.cluster import query_dir
from llmscope_collector.storage.retention import RetentionPolicy
from llmscope_collector.storage.schema import SPAN_COLUMNS

if TYPE_CHECKING:
    from llmscope_collector.alerts.metrics import RuleMetrics
    from llmscope_collector.settings import Settings
    from llmscope_collector.storage.content import ContentRemoval

# Beyond this many summary rows a window costs about what the whole project's statement does.
_MAX_WINDOW_ROWS = 30_000
_MIN_DATE = dt.date(1970, 1, 1)
_MAX_DATE = dt.date(2149, 6, 6)  # ClickHouse `Date` ends here; no partition can be later
_LIST_COLUMNS = frozenset(c.name for c in SPAN_COLUMNS if str(c.type).startswith("list"))
_MAP_COLUMNS = frozenset(c.name for c in SPAN_COLUMNS if str(c.type).startswith("map"))


def _dates(params: dict[str, Any]) -> dict[str, Any]:
    """Dates (`from_date`, `to_date`, …) clamped to ClickHouse's `Date` range (the same partitions selected)."""
    return {k: min(max(v, _MIN_DATE), _MAX_DATE) if isinstance(v, dt.date) else v for k, v in params.items()}


def hour_params(time_range: TimeRange) -> dict[str, Any]:
    """`sql.hourly_costs`' split of a range: its whole hours (hour numbers `[hours_from, hours_to)`) from the
    hourly sums, the partial hours before and after (`edge1_*`, `edge2_*`: ns and date bounds) scanned.
    The first hour of 1970 is never a whole hour: its hour number (0) is also that of a negative start time."""
    first, last = max(-(-time_range.from_ns // HOUR_NS), 1), time_range.to_ns // HOUR_NS
    if first >= last:
        first = last = 0
        edges = ((time_range.from_ns, time_range.to_ns), (0, 0))
    else:
        edges = ((time_range.from_ns, first * HOUR_NS), (last * HOUR_NS, time_range.to_ns))
    params: dict[str, Any] = {"hours_from": first, "hours_to": last}
    for n, (start, end) in enumerate(edges, start=1):
        dates = span_dates(start, end)  # a day's margin each side: partitions are dated from a float
        params.update(
            {f"edge{n}_from_ns": start, f"edge{n}_to_ns": end},
            **{f"edge{n}_{k}": v for k, v in dates.items()},
        )
    return params


def _span_row(row: dict[str, Any]) -> dict[str, Any]:
    """A spans row as DuckDB gives it: maps as dicts; an empty list as NULL (ClickHouse has no NULL list)."""
    for name in _MAP_COLUMNS & row.keys():
        row[name] = dict(row[name]) if row[name] is not None else None
    for name in _LIST_COLUMNS & row.keys():
        if not row[name]:
            row[name] = None
    return row


class ClickHouseStore:
    """Answers the API's queries from ClickHouse tables fed by `loader`."""

    def __init__(
        self, client: ClickHouseClient, loader: Loader, *, trace_idle_s: float = 300.0, data_dir: Path | None = None
    ) -> None:
        """`data_dir`: the data dir the loader reads, whose files a session deletion rewrites (None: the
        files are not this server's to change, e.g. a bucket's mirror, and deletion is refused)."""
        self._client = client
        self._loader = loader
        self._idle_ns = int(trace_idle_s * 1e9)
        self._files = TraceStore(data_dir) if data_dir is not None else None  # DuckDB finds the files to rewrite

    @property
    def client(self) -> ClickHouseClient:
        return self._client

    @property
    def loader(self) -> Loader:
        return self._loader

    def _rows(self, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        return self._client.rows(query, _dates(params))

    def _fresh(self, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        self._loader.refresh()
        return self._rows(query, params)

    def state_params(self) -> dict[str, Any]:
        return {"now_ns": time.time_ns(), "idle_ns": self._idle_ns}

    # -- traces ----------------------------------------------------------------------------------

    def get_trace(self, trace_id: str, project: str = "default") -> Waterfall | None:
        tid = normalize_trace_id(trace_id)
        summary = self._summary_row(project, tid)
        dates = span_dates(summary["start_ns"], summary["start_ns"] + summary["duration_ns"]) if summary else None
        params = {"project": project, "trace_id": tid, **(dates or TimeRange().params())}
        rows = [_waterfall_row(r) for r in self._rows(sql.TRACE_SPANS, params)]
        if not rows:
            return None
        waterfall = build_waterfall(tid, rows)
        if summary is not None:
            waterfall.state = summary["state"]
            waterfall.session_id = summary["session_id"]
            waterfall.user_id = summary["user_id"]
        return waterfall

    def waterfalls(self, project: str, trace_ids: Sequence[str], start_ns: int, end_ns: int) -> list[Waterfall]:
        wanted = [normalize_trace_id(t) for t in trace_ids]
        params = {"project": project, "trace_ids": wanted, **span_dates(start_ns, end_ns)}
        return waterfalls_of(wanted, [_waterfall_row(r) for r in self._fresh(sql.MANY_TRACE_SPANS, params)])

    def _summary_row(self, project: str, trace_id: str) -> dict[str, Any] | None:
        params = {"project": project, "trace_id": trace_id, **self.state_params()}
        rows = self._fresh(sql.TRACE_SUMMARY, params)
        return rows[0] if rows else None

    def list_traces(self, project: str, query: TraceQuery) -> TracePage:
        self._loader.refresh()
        names, params = self._trace_filters(project, query)
        has_cursor = add_cursor(params, query)
        params.update(project=project, limit=query.limit + 1)
        if query.sort_key == "start" and set(names) <= {"from_ns", "to_ns"}:
            rows = self._page_by_start(names, query, has_cursor, params)
            if rows is not None:
                return trace_page(rows, query)
        text = sql.list_traces(names, query.sort_key, query.order, has_cursor)
        return trace_page(self._rows(text, params), query)

    def _page_by_start(
        self, names: list[str], query: TraceQuery, has_cursor: bool, params: dict[str, Any]
    ) -> list[dict[str, Any]] | None:
        """A page sorted by start from the traces starting in a window at the page's end of the range
        (`sql.traces_in_window`): first as many summary rows as the page has traces, then 8 times more
        while the window holds fewer traces that pass the filters than the page and does not cover the
        range; None (the whole-project statement instead) once the window would hold over
        `_MAX_WINDOW_ROWS` rows. The cost of a page then follows the page, not the project."""
        lower, upper = query.time.from_ns, query.time.to_ns  # [lower, upper): where the page's starts can be
        if has_cursor and query.order == "desc":
            upper = min(upper, int(params["cursor_key"]) + 1)
        elif has_cursor:
            lower = max(lower, int(params["cursor_key"]))
        text = sql.traces_in_window(names, query.order, has_cursor)
        offset = query.limit
        while offset <= _MAX_WINDOW_ROWS:
            bounds = {"project": params["project"], "lower": lower, "upper": upper, "offset": offset}
            edge = self._rows(sql.WINDOW_EDGE[query.order], bounds)
            if not edge:  # fewer rows than that: the window is the whole range
                window = (lower, upper)
            elif query.order == "desc":
                window = (int(edge[0]["edge"]), upper)
            else:
                window = (lower, int(edge[0]["edge"]) + 1)
            rows = self._rows(text, {**params, "window_from": window[0], "window_to": window[1]})
            if len(rows) == params["limit"] or not edge:
                return rows
            offset *= 8
        return None

    def trace_values(self, project: str, query: ValueQuery) -> ValueList:
        names, params = value_params(query)
        text = sql.trace_values(query.field, names, "prefix" in params)
        return value_list(query, self._fresh(text, {**params, "project": project}))

    def _trace_filters(self, project: str, query: TraceQuery) -> tuple[list[str], dict[str, Any]]:
        names, params = trace_filter_params(query)
        restrict_to_matches(names, params, self._span_matches(project, query), query)
        params.update(self.state_params())
        return names, params

    def _span_matches(self, project: str, query: TraceQuery) -> list[str] | None:
        if not query.attrs and query.q is None:
            return None
        matched: set[str] | None = None
        time_params = {"project": project, **query.time.params()}
        for path, value in query.attrs:
            key = path[len('$."') : -1]  # filters.attr_filters made it `$."<key>"`
            rows = self._rows(sql.ATTR_MATCH, {"attr_key": key, "attr_value": value, **time_params})
            ids = {r["trace_id"] for r in rows}
            matched = ids if matched is None else matched & ids
        if query.q is not None:
            hashes = [r["hash"] for r in self._rows(sql.CONTENT_SEARCH, {"q": query.q, **time_params})]
            rows = self._rows(sql.SPANS_WITH_CONTENT, {"hashes": hashes, **time_params}) if hashes else []
            ids = {r["trace_id"] for r in rows}
            matched = ids if matched is None else matched & ids
        return sorted(matched or ())

    # -- spans -----------------------------------------------------------------------------------

    def get_span(self, project: str, trace_id: str, span_id: str) -> SpanDetail | None:
        tid, sid = normalize_trace_id(trace_id), normalize_span_id(span_id)
        summary = self._summary_row(project, tid)
        dates = span_dates(summary["start_ns"], summary["start_ns"] + summary["duration_ns"]) if summary else None
        params = {"project": project, "trace_id": tid, "span_id": sid, **(dates or TimeRange().params())}
        rows = self._rows(sql.SPAN_DETAIL, params)
        if not rows:
            return None
        row = _span_row(rows[0])
        content = self._content(project, row)
        late_dup = self._rows(sql.LATE_DUP, {"project": project, "trace_id": tid, "span_id": sid})[0]["n"]
        return _span_detail(row, content, counted=_span_counted(row, bool(late_dup)))

    def _content(self, project: str, row: dict[str, Any]) -> list[ContentPart]:
        refs = row.get("content_refs") or []
        if not refs:
            return []
        hashes = sorted({r["hash"] for r in refs})
        params = {"project": project, "date": row["date"], "hashes": hashes}
        found = {r["hash"]: r["body"] for r in self._rows(sql.CONTENT_BODIES, params)}
        parts = []
        for ref in refs:
            body = found.get(ref["hash"])
            parts.append(
                ContentPart(
                    kind=ref["kind"],
                    source=ref["source"],
                    hash=ref["hash"],
                    bytes=ref["bytes"] or 0,
                    value=None if body is None else _json.decode(body),
                    available=body is not None,
                )
            )
        return parts

    # -- sessions --------------------------------------------------------------------------------

    def list_sessions(
        self, project: str, time_range: TimeRange, user: str | None, limit: int, cursor: str | None
    ) -> SessionPage:
        filters, params = session_page_params(project, time_range, user, limit, cursor)
        ids = [r["session_id"] for r in self._fresh(sql.session_page(filters, bool(cursor)), params)]
        rows = self._rows(sql.SESSION_ROWS, {"project": project, "sessions": ids}) if ids else []
        return session_page(rows, limit, {r["session_id"]: r["latency_ns"] for r in rows})

    def get_session(self, project: str, session_id: str, limit: int = 500) -> SessionDetail | None:
        check_session_id(session_id)
        rows = self._fresh(sql.SESSION_ROWS, {"project": project, "sessions": [session_id]})
        if not rows:
            return None
        params = {"project": project, "sessions": [session_id], "limit": limit + 1, **self.state_params()}
        traces = self._rows(sql.SESSION_TRACES, params)
        return SessionDetail(
            session=session_summary(rows[0], rows[0]["latency_ns"]),
            traces=[trace_summary(r) for r in traces[:limit]],
            traces_truncated=len(traces) > limit,
        )

    def delete_session(
        self, project: str, session_id: str, content_removal: ContentRemoval | None = None
    ) -> DeletionReport:
        """The session's traces out of the tables and out of the files, with DuckDB's result.

        The loader is paused throughout. The rows go from the tables first (lightweight DELETE), then from
        the files (`query.deletion`, the storage rewrite DuckDB's deletion runs): a rewritten file names
        the files it replaces, so the loader records it without loading the rows again, and a crash
        between the two steps leaves the session in the files for a retried DELETE to find.
        """
        check_session_id(session_id)
        if self._files is None:
            raise DeletionUnsupported(
                "this ClickHouse engine reads a bucket (--storage): sessions are deleted from the bucket"
                " (query.deletion.delete_from_bucket, which the server wires in cluster mode), not from its files"
            )
        files = self._files
        with self._loader.paused(), files.deletion_lock:
            summarized = self._rows(sql.SESSION_TRACE_IDS, {"project": project, "sessions": [session_id]})
            spans = session_trace_ids(files, project, session_id, summaries=False)  # the files: what is stored
            trace_ids = sorted({r["trace_id"] for r in summarized} | set(spans))
            if trace_ids:
                for table in sql.TRACE_TABLES:
                    self._client.command(sql.delete_traces(table), {"project": project, "trace_ids": trace_ids})
            tally = remove_from_files(files, project, session_id, trace_ids, content_removal)
            for (partition_project, date), hashes in tally.orphans.items():
                params = {"project": partition_project, "date": dt.date.fromisoformat(date), "hashes": sorted(hashes)}
                self._client.command(sql.DELETE_CONTENT, params)
        return tally.report(session_id, len(trace_ids))

    # -- roll-ups --------------------------------------------------------------------------------

    def costs(
        self, project: str, group_by: Sequence[str], time_range: TimeRange, filters: dict[str, str]
    ) -> CostReport:
        names, params = _span_filters(filters)
        params.update(time_range.params(), project=project)
        keys = list(group_by)
        statement = sql.costs
        if set(keys) <= sql.HOURLY_KEYS.keys() and set(names) <= sql.HOURLY_FILTERS:
            statement = sql.hourly_costs
            params.update(hour_params(time_range))
        self._loader.refresh()
        rows = self._rows(statement(keys, names), params) if keys else []
        if rows and len(rows) < sql.COST_GROUPS_LIMIT:
            total = usage({n: sum((r[n] for r in rows if r[n] is not None), start=0) for n in duck_sql.USAGE_COLUMNS})
        else:
            total_rows = self._rows(statement([], names), params)
            total = usage(total_rows[0]) if total_rows else usage({})
        groups = [CostGroup(key={g: _text(r[f"key_{g}"]) for g in keys}, usage=usage(r)) for r in rows]
        return CostReport(
            group_by=keys,
            from_time_unix_nano=time_range.from_ns or None,
            to_time_unix_nano=time_range.to_ns if time_range.bounded and time_range.to_ns < TimeRange().to_ns else None,
            total=total,
            groups=groups,
        )

    def metrics_summary(self, project: str, time_range: TimeRange, filters: dict[str, str]) -> Metrics:
        names, params = _span_filters(filters)
        rows = self._fresh(sql.metrics_summary(names), {**params, **time_range.params(), "project": project})
        return metrics(rows[0] if rows else {})

    def metrics_series(
        self, project: str, interval: str, group_by: str | None, time_range: TimeRange, filters: dict[str, str]
    ) -> MetricsSeries:
        if interval not in sql.INTERVALS:
            raise InvalidFilter("interval", f"must be one of {', '.join(sql.INTERVALS)}")
        if group_by is not None and group_by not in sql.SERIES_GROUPS:
            raise InvalidFilter("group_by", f"must be one of {', '.join(sql.SERIES_GROUPS)}")
        names, params = _span_filters(filters)
        text = sql.metrics_series(interval, group_by, names)
        rows = self._fresh(text, {**params, **time_range.params(), "project": project})
        points = [
            MetricsPoint(time_unix_nano=int(r["bucket"]) * 1_000_000_000, key=_text(r["key"]), metrics=metrics(r))
            for r in rows
        ]
        return MetricsSeries(interval=interval, group_by=group_by, points=points)

    def prompts(self, project: str, time_range: TimeRange) -> PromptList:
        rows = self._fresh(sql.PROMPTS, {**time_range.params(), "project": project})
        return PromptList(
            prompts=[PromptSummary(name=r["name"], versions=int(r["versions"]), stats=_prompt_stats(r)) for r in rows]
        )

    def prompt_versions(self, project: str, name: str, time_range: TimeRange) -> PromptVersions:
        if not 1 <= len(name) <= 512:
            raise InvalidFilter("name", "must be 1..512 characters")
        params = {"prompt_name": name, **time_range.params(), "project": project}
        rows = self._fresh(sql.PROMPT_VERSIONS, params)
        return PromptVersions(
            name=name, versions=[PromptVersion(version=r["version"], stats=_prompt_stats(r)) for r in rows]
        )

    def trace_keys(self, project: str, trace_ids: Sequence[str], group_by: str) -> dict[str, list[str]]:
        rows = self._fresh(sql.TRACE_KEYS[group_by], {"project": project, "trace_ids": list(trace_ids)})
        return {r["trace_id"]: list(r["keys"] or []) for r in rows}

    def counts(self, *, traces: bool = False) -> StoreCounts:
        rows = self._fresh(sql.COUNTS if traces else sql.SPAN_ROWS, {})
        if not rows:
            return StoreCounts(spans=0, traces=0 if traces else None)
        return StoreCounts(spans=int(rows[0]["spans"]), traces=int(rows[0]["traces"]) if traces else None)

    def rule_metrics(self, files: RuleMetrics) -> RuleMetrics:
        """Every span metric of a rule in ClickHouse; score averages from the scores' files (`files`)."""
        from llmscope_collector.query.clickhouse.metrics import ClickHouseMetricReader  # it builds on this module

        return ClickHouseMetricReader(self, files)

    def close(self) -> None:
        self._client.close()
        if self._files is not None:
            self._files.close()


def _waterfall_row(row: dict[str, Any]) -> dict[str, Any]:
    """A waterfall row as DuckDB's query gives it: content refs' kinds and sizes under `content`."""
    refs = row.pop("content_refs") or []
    row["content"] = [{"kind": r["kind"], "bytes": r["bytes"]} for r in refs]
    return _span_row(row)


def open_clickhouse(settings: Settings) -> ClickHouseStore:
    """The ClickHouse engine of `settings.query_engine`, fed from what the collector stores.

    A ClickHouse server with `--storage s3://…` reads the bucket itself (`s3()`, endpoint and keys from the
    AWS_* variables); otherwise the engine reads the files of the data dir (or of the bucket's mirror)
    with `file()`: chdb in this process, or a server on this host allowed to read them.
    """
    client, database = connect(settings.query_engine, settings.data_dir)
    try:
        client.use(database)
        policy = RetentionPolicy.parse(settings.retention_days, settings.retention_project_days)
        loader = Loader(client, _source(settings), retention_days=policy.default_days, project_days=policy.project_days)
    except BaseException:
        client.close()
        raise
    files = None if settings.storage else settings.data_dir  # a bucket's mirror is not ours to rewrite
    return ClickHouseStore(client, loader, trace_idle_s=settings.trace_idle_s, data_dir=files)


def _source(settings: Settings) -> ObjectSource:
    if settings.storage and not settings.query_engine.startswith("chdb:"):
        from llmscope_collector.storage.objects import ObjectStore, StorageUrl

        url = StorageUrl.parse(settings.storage)
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or ""
        if not endpoint:
            region = os.environ.get("AWS_REGION", "us-east-1")
            endpoint = f"https://s3.{region}.amazonaws.com"
        return BucketSource(
            ObjectStore(url),
            endpoint,
            url.bucket,
            url.prefix,
            os.environ.get("AWS_ACCESS_KEY_ID", ""),
            os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
        )
    return DirectorySource(query_dir(settings))
