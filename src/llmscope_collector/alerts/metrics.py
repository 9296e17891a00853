"""Reads one rule's metric over its window from the Parquet span store: one DuckDB query.

Only the `date=` partitions of the rule's project that the window touches are opened, so an
evaluation costs the size of its window, not of the whole store.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Protocol

import msgspec

from llmscope_collector.alerts import metric_sql
from llmscope_collector.alerts.budget import Forecast, forecast, month_bounds
from llmscope_collector.alerts.rules import ADDITIVE_METRICS, Rule, timing
from llmscope_collector.query.db import Database
from llmscope_collector.query.waterfall import LLM_OPERATIONS
from llmscope_collector.storage.layout import SCORES_DIR, SPANS_DIR, parquet_files, partition_dir

_NS = 1_000_000_000
_LLM_OPERATIONS = sorted(LLM_OPERATIONS)
_EMPTY_CALLS: dict[str, Any] = {"requests": 0, "errors": 0, "cost_usd": 0.0, "tokens": 0.0, "ttft_samples": 0}


class Observation(msgspec.Struct, kw_only=True):
    """What one evaluation saw. `value` is None when the metric is undefined for lack of data
    (a latency or error rate over zero calls); sums and counts are 0 instead. Times are Unix seconds."""

    value: float | None
    samples: int
    window_start: float
    window_end: float
    forecast: Forecast | None = None


def window_of(rule: Rule, now: float) -> tuple[float, float]:
    """`[start, end)` of the rule's window ending at `now`."""
    window_s = timing(rule).window_s
    return (month_bounds(now)[0] if window_s is None else now - window_s), now


def partition_globs(data_dir: Path, project: str, start: float, end: float, dataset: str = SPANS_DIR) -> list[str]:
    """Globs of the project's existing partitions of `dataset` with rows starting in `[start, end)`."""
    day = dt.datetime.fromtimestamp(start, tz=dt.timezone.utc).date()
    last = dt.datetime.fromtimestamp(max(start, end - 1e-6), tz=dt.timezone.utc).date()
    globs: list[str] = []
    while day <= last:
        partition = partition_dir(data_dir, project, day.isoformat(), dataset)
        if parquet_files(partition):
            globs.append(str(partition / "*.parquet"))
        day += dt.timedelta(days=1)
    return globs


class RuleMetrics(Protocol):
    """Where the evaluator reads one rule's metric over its window ending at `now`: the stored files
    (`MetricReader`, DuckDB) or the query engine's tables (`QueryBackend.rule_metrics`). Raises
    `duckdb.Error` or `query.backend.QueryFailed` when the data cannot be read."""

    def observe(self, rule: Rule, now: float) -> Observation: ...


class MetricReader:
    """Evaluates rule metrics against the span files under `data_dir`."""

    def __init__(self, data_dir: Path, db: Database) -> None:
        self._data_dir = data_dir
        self._db = db

    def observe(self, rule: Rule, now: float) -> Observation:
        """Raises `duckdb.Error` when the files cannot be read; the caller records it on the rule."""
        start, end = window_of(rule, now)
        if rule.metric == "score_avg":
            return self._score_avg(rule, start, end)
        files = partition_globs(self._data_dir, rule.project, start, end)
        params: dict[str, Any] = {
            "files": files,
            "from_ns": int(start * _NS),
            "to_ns": int(end * _NS),
            **msgspec.structs.asdict(rule.filters),
        }
        if rule.metric == "no_data":
            spans = int(self._row(metric_sql.SPAN_COUNT, params)["spans"]) if files else 0
            return Observation(value=float(spans), samples=spans, window_start=start, window_end=end)
        calls = (
            self._row(metric_sql.LLM_CALLS, {**params, "llm_operations": _LLM_OPERATIONS}) if files else _EMPTY_CALLS
        )
        value, samples = _value(rule.metric, calls)
        observed = Observation(value=value, samples=samples, window_start=start, window_end=end)
        if timing(rule).window_s is None and rule.metric in ADDITIVE_METRICS:
            observed.forecast = forecast(value or 0.0, now, rule.alert_threshold, rule.warning_threshold)
        return observed

    def _score_avg(self, rule: Rule, start: float, end: float) -> Observation:
        files = partition_globs(self._data_dir, rule.project, start, end, SCORES_DIR)
        params = {"files": files, "score": rule.score, "from_ns": int(start * _NS), "to_ns": int(end * _NS)}
        row: dict[str, Any] = self._row(metric_sql.SCORE_AVG, params) if files else {"value": None, "samples": 0}
        samples = int(row["samples"])
        value = float(row["value"]) if samples else None
        return Observation(value=value, samples=samples, window_start=start, window_end=end)

    def _row(self, query: str, params: dict[str, Any]) -> dict[str, Any]:
        cur = self._db.cursor()
        try:
            result = cur.execute(query, params)
            names = [d[0] for d in result.description or ()]
            row = result.fetchone()
            assert row is not None  # an aggregate without GROUP BY always returns one row
            return dict(zip(names, row, strict=True))
        finally:
            cur.close()


def _value(metric: str, calls: dict[str, Any]) -> tuple[float | None, int]:
    requests = int(calls["requests"])
    if metric == "cost_usd":
        return float(calls["cost_usd"]), requests
    if metric == "tokens":
        return float(calls["tokens"]), requests
    if metric == "request_count":
        return float(requests), requests
    if metric == "error_rate":
        return (int(calls["errors"]) / requests if requests else None), requests
    if metric == "ttft_p95":
        samples = int(calls["ttft_samples"])
        return (float(calls["ttft_p95"]) if samples else None), samples
    latency = calls.get(metric)  # latency_p50 / p95 / p99
    return (float(latency) if requests and latency is not None else None), requests
