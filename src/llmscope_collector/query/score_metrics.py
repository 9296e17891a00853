"""Score metrics: a score's average and distribution over time, by model or prompt version.

Scores are read from their own dataset (`query.scores`, DuckDB over the Parquet files whatever the
engine); what a score is grouped by comes from its trace's summary, asked of the query backend
(`QueryBackend.trace_keys`: the same answer from DuckDB and ClickHouse). A score counts for every
model (prompt version) its trace used: a trace that called two models gives its score to both; a
score without a trace (on a session only), or on a trace that used none, is in the group `null`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from llmscope_collector.query.filters import InvalidFilter, TimeRange
from llmscope_collector.query.models import ScoreGroup, ScoreMetrics, ScorePoint, ScoreStats

if TYPE_CHECKING:
    from llmscope_collector.query.backend import QueryBackend
    from llmscope_collector.query.scores import ScoreStore

# Group name → the trace summary column (a list) its keys come from; the SQL of each engine reads it.
SCORE_GROUPS: dict[str, str] = {"model": "models", "prompt": "prompts"}
INTERVAL_NS: dict[str, int] = {"1m": 60 * 10**9, "1h": 3600 * 10**9, "1d": 86400 * 10**9}
MAX_SCORES = 1_000_000  # per request: the rows are grouped in memory


def quantile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between the closest ranks (DuckDB's `quantile_cont`) of sorted `values`."""
    if not values:
        return None
    position = (len(values) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return values[low] + (values[high] - values[low]) * (position - low)


def stats(rows: Iterable[dict[str, Any]]) -> ScoreStats:
    values: list[float] = []
    labels: dict[str, int] = defaultdict(int)
    count = 0
    for row in rows:
        count += 1
        if row["value"] is not None:
            values.append(float(row["value"]))
        if row["label"] is not None:
            labels[row["label"]] += 1
    values.sort()
    return ScoreStats(
        count=count,
        avg=math.fsum(values) / len(values) if values else None,
        min=values[0] if values else None,
        max=values[-1] if values else None,
        p50=quantile(values, 0.5),
        p90=quantile(values, 0.9),
        labels=dict(sorted(labels.items())),
    )


def _order(key: str | None) -> tuple[bool, str]:
    return (key is None, key or "")


def score_metrics(
    backend: QueryBackend,
    scores: ScoreStore,
    project: str,
    name: str,
    interval: str,
    group_by: str | None,
    time_range: TimeRange,
) -> ScoreMetrics:
    """The score `name` given in `time_range` (by the time it was given), per group and per time bucket."""
    if interval not in INTERVAL_NS:
        raise InvalidFilter("interval", f"must be one of {', '.join(INTERVAL_NS)}")
    if group_by is not None and group_by not in SCORE_GROUPS:
        raise InvalidFilter("group_by", f"must be one of {', '.join(SCORE_GROUPS)}")
    rows = scores.in_range(project, name, time_range.from_ns, time_range.to_ns, MAX_SCORES + 1)
    if len(rows) > MAX_SCORES:
        raise InvalidFilter("from", f"more than {MAX_SCORES} scores in the range: narrow it")
    keys: dict[str, list[str | None]] = {}
    if group_by is not None:
        traces = sorted({r["trace_id"] for r in rows if r["trace_id"] is not None})
        found = backend.trace_keys(project, traces, group_by) if traces else {}
        keys = {trace: list(values) or [None] for trace, values in found.items()}
    grouped: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    bucketed: dict[tuple[int, str | None], list[dict[str, Any]]] = defaultdict(list)
    size = INTERVAL_NS[interval]
    for row in rows:
        row_keys = keys.get(row["trace_id"], [None]) if group_by is not None else [None]
        bucket = row["time_ns"] // size * size
        for key in row_keys:
            grouped[key].append(row)
            bucketed[(bucket, key)].append(row)
    return ScoreMetrics(
        name=name,
        group_by=group_by,
        interval=interval,
        groups=[ScoreGroup(key=k, stats=stats(grouped[k])) for k in sorted(grouped, key=_order)],
        points=[
            ScorePoint(time_unix_nano=b, key=k, stats=stats(bucketed[(b, k)]))
            for b, k in sorted(bucketed, key=lambda bk: (bk[0], *_order(bk[1])))
        ],
    )
