"""Alert rule metrics from ClickHouse: the counterpart of `alerts.metrics.MetricReader` (DuckDB).

The same window, filters and counting rule (an LLM span under an LLM parent of its trace is the same
call, counted once), answered by one ClickHouse statement; the observation is built by the alert
package's own code, so a rule sees the same value from either engine (tests/collector/query/
test_engine_equivalence.py, tests/collector/alerts/test_engine_alerts.py). `ClickHouseStore.rule_metrics`
hands it to the alert evaluator when the server runs with `--query-engine clickhouse…`/`chdb://`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from llmscope_collector.alerts.budget import forecast
from llmscope_collector.alerts.metrics import Observation, RuleMetrics, _value, window_of
from llmscope_collector.alerts.rules import ADDITIVE_METRICS, Rule, timing
from llmscope_collector.query.clickhouse import sql
from llmscope_collector.query.clickhouse.store import ClickHouseStore
from llmscope_collector.query.waterfall import LLM_OPERATIONS

_NS = 1_000_000_000
_LLM_OPERATIONS = sorted(LLM_OPERATIONS)


def _day(seconds: float) -> dt.date:
    return dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc).date()


class ClickHouseMetricReader:
    """Evaluates rule metrics against the ClickHouse tables of `store` (loaded first); a score average from
    `scores`, the reader of the scores' files (the API reads scores from their files whatever the engine)."""

    def __init__(self, store: ClickHouseStore, scores: RuleMetrics) -> None:
        self._store = store
        self._scores = scores

    def observe(self, rule: Rule, now: float) -> Observation:
        if rule.metric == "score_avg":
            return self._scores.observe(rule, now)
        start, end = window_of(rule, now)
        params: dict[str, Any] = {
            "project": rule.project,
            "from_ns": int(start * _NS),
            "to_ns": int(end * _NS),
            "from_date": _day(start),  # the date partitions the window touches, as the DuckDB reader opens
            "to_date": _day(max(start, end - 1e-6)),
            **msgspec.structs.asdict(rule.filters),
        }
        self._store.loader.refresh()
        if rule.metric == "no_data":
            spans = int(self._row(sql.ALERT_SPAN_COUNT, params)["spans"])
            return Observation(value=float(spans), samples=spans, window_start=start, window_end=end)
        calls = self._row(sql.ALERT_LLM_CALLS, {**params, "llm_operations": _LLM_OPERATIONS})
        value, samples = _value(rule.metric, calls)
        observed = Observation(value=value, samples=samples, window_start=start, window_end=end)
        if timing(rule).window_s is None and rule.metric in ADDITIVE_METRICS:
            observed.forecast = forecast(value or 0.0, now, rule.alert_threshold, rule.warning_threshold)
        return observed

    def _row(self, query: str, params: dict[str, Any]) -> dict[str, Any]:
        rows = self._store.client.rows(query, params)
        return rows[0]  # an aggregate without GROUP BY always returns one row
