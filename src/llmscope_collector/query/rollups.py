"""Span-level roll-ups over counted LLM calls: costs, latency/usage metrics, prompt versions.

They read light span columns only, restricted to the caller's project files and to the date
partitions of the requested range; nested duplicate LLM spans are excluded (`sql.COUNTED_LLM`),
so every sum here equals the sum of what the counted spans carried.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from llmscope_collector.query import sql
from llmscope_collector.query.filters import InvalidFilter, TimeRange
from llmscope_collector.query.models import (
    CostGroup,
    CostReport,
    Metrics,
    MetricsPoint,
    MetricsSeries,
    Percentiles,
    PromptList,
    PromptStats,
    PromptSummary,
    PromptVersion,
    PromptVersions,
)
from llmscope_collector.query.partials import PARTIAL_FILTERS, PARTIAL_GROUPS, HourSplit
from llmscope_collector.query.rows import usage
from llmscope_collector.storage.layout import SPANS_DIR, project_date_globs

if TYPE_CHECKING:
    from llmscope_collector.query.store import TraceStore

MAX_GROUP_BY = 3


def _span_filters(filters: dict[str, str]) -> tuple[list[str], dict[str, Any]]:
    for name in filters:
        if name not in sql.SPAN_FILTERS:
            raise InvalidFilter(name, f"unknown filter; use one of {', '.join(sorted(sql.SPAN_FILTERS))}")
    return sorted(filters), dict(filters)


def parse_group_by(raw: str | None) -> list[str]:
    """`model,day` → ["model", "day"], validated against the allowlist."""
    names = [g.strip() for g in (raw or "").split(",") if g.strip()]
    for name in names:
        if name not in sql.GROUP_KEYS:
            raise InvalidFilter("group_by", f"{name!r} is not one of {', '.join(sql.GROUP_KEYS)}")
    if len(names) != len(set(names)) or len(names) > MAX_GROUP_BY:
        raise InvalidFilter("group_by", f"at most {MAX_GROUP_BY} distinct dimensions")
    return names


def costs(
    store: TraceStore, project: str, group_by: list[str], time_range: TimeRange, filters: dict[str, str]
) -> CostReport:
    names, params = _span_filters(filters)
    params.update(time_range.params())
    query = _from_partials if usable(group_by, names) else _from_spans
    rows = query(store, project, group_by, names, params) if group_by else []
    if rows and len(rows) < sql.COST_GROUPS_LIMIT:
        total = usage(_summed(rows))  # every counted span is in exactly one group: no second scan
    else:
        total_rows = query(store, project, [], names, params)
        total = usage(total_rows[0]) if total_rows else usage({})
    groups = [CostGroup(key={g: _text(r[f"key_{g}"]) for g in group_by}, usage=usage(r)) for r in rows]
    return CostReport(
        group_by=group_by,
        from_time_unix_nano=time_range.from_ns or None,
        to_time_unix_nano=time_range.to_ns if time_range.bounded and time_range.to_ns < TimeRange().to_ns else None,
        total=total,
        groups=groups,
    )


def usable(group_by: list[str], filters: list[str]) -> bool:
    """Whether the cost partials hold every key and filter column (user and session keys need `traces`)."""
    return set(group_by) <= PARTIAL_GROUPS and set(filters) <= PARTIAL_FILTERS


def _from_spans(
    store: TraceStore, project: str, group_by: list[str], names: list[str], params: dict[str, Any]
) -> list[dict[str, Any]]:
    # llm_dups (COUNTED_LLM) and traces (user/session keys) must be current before the scan.
    return _with_index(store, project, sql.costs(group_by, names), params)


def _from_partials(
    store: TraceStore, project: str, group_by: list[str], names: list[str], params: dict[str, Any]
) -> list[dict[str, Any]]:
    """The same rows as `_from_spans`: whole hours from the partials, the range's edge hours from spans."""
    store.partials.refresh()
    split = HourSplit.of(params["from_ns"], params["to_ns"])
    globs = project_date_globs(store.data_dir, SPANS_DIR, project, split.edge_dates())
    text = sql.partial_costs(group_by, names, edges=bool(globs))
    return store.table_rows(text, {**params, **split.params(), "project": project, "glob": globs}, refresh=False)


def _summed(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The usage sums over all groups (exact: integers and DuckDB's decimal cost sums)."""
    return {name: sum((r[name] for r in rows if r[name] is not None), start=0) for name in sql.USAGE_COLUMNS}


def _with_index(store: TraceStore, project: str, text: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    store.index.refresh()
    return store.rows(project, text, params)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def metrics_summary(store: TraceStore, project: str, time_range: TimeRange, filters: dict[str, str]) -> Metrics:
    names, params = _span_filters(filters)
    rows = _with_index(store, project, sql.metrics_summary(names), {**params, **time_range.params()})
    return metrics(rows[0] if rows else {})


def metrics_series(
    store: TraceStore,
    project: str,
    interval: str,
    group_by: str | None,
    time_range: TimeRange,
    filters: dict[str, str],
) -> MetricsSeries:
    if interval not in sql.INTERVALS:
        raise InvalidFilter("interval", f"must be one of {', '.join(sql.INTERVALS)}")
    if group_by is not None and group_by not in sql.SERIES_GROUPS:
        raise InvalidFilter("group_by", f"must be one of {', '.join(sql.SERIES_GROUPS)}")
    names, params = _span_filters(filters)
    text = sql.metrics_series(interval, group_by, names)
    rows = _with_index(store, project, text, {**params, **time_range.params()})
    points = [
        MetricsPoint(time_unix_nano=_bucket_ns(r["bucket"]), key=_text(r["key"]), metrics=metrics(r)) for r in rows
    ]
    return MetricsSeries(interval=interval, group_by=group_by, points=points)


def _bucket_ns(bucket: dt.datetime) -> int:
    if bucket.tzinfo is None:
        bucket = bucket.replace(tzinfo=dt.timezone.utc)
    return int(bucket.timestamp()) * 1_000_000_000


def metrics(row: dict[str, Any]) -> Metrics:
    requests = int(row.get("llm_calls") or 0)
    errors = int(row.get("errors") or 0)
    latency = row.get("latency_ns") or [None, None, None]
    ttft = row.get("ttft_s") or [None, None]
    return Metrics(
        requests=requests,
        errors=errors,
        error_rate=errors / requests if requests else None,
        latency=Percentiles(p50_ms=_ms(latency[0], 1e-6), p95_ms=_ms(latency[1], 1e-6), p99_ms=_ms(latency[2], 1e-6)),
        ttft=Percentiles(p50_ms=_ms(ttft[0], 1e3), p95_ms=_ms(ttft[1], 1e3)),
        usage=usage(row),
    )


def _ms(value: float | None, scale: float) -> float | None:
    return None if value is None else float(value) * scale


def prompts(store: TraceStore, project: str, time_range: TimeRange) -> PromptList:
    rows = _with_index(store, project, sql.PROMPTS, time_range.params())
    return PromptList(
        prompts=[PromptSummary(name=r["name"], versions=int(r["versions"]), stats=_prompt_stats(r)) for r in rows]
    )


def prompt_versions(store: TraceStore, project: str, name: str, time_range: TimeRange) -> PromptVersions:
    if not 1 <= len(name) <= 512:
        raise InvalidFilter("name", "must be 1..512 characters")
    rows = _with_index(store, project, sql.PROMPT_VERSIONS, {"prompt_name": name, **time_range.params()})
    return PromptVersions(
        name=name, versions=[PromptVersion(version=r["version"], stats=_prompt_stats(r)) for r in rows]
    )


def _prompt_stats(row: dict[str, Any]) -> PromptStats:
    uses = int(row["llm_calls"] or 0)
    errors = int(row["errors"] or 0)
    return PromptStats(
        uses=uses,
        errors=errors,
        error_rate=errors / uses if uses else None,
        avg_tokens=None if row["avg_tokens"] is None else float(row["avg_tokens"]),
        avg_latency_ms=None if row["avg_duration_ns"] is None else float(row["avg_duration_ns"]) / 1e6,
        first_used_unix_nano=int(row["first_ns"]),
        last_used_unix_nano=int(row["last_ns"]),
        usage=usage(row),
    )
