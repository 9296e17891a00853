"""Reads the `scores` dataset: the latest version of each score, by target or by name and value.

A score sent again with the same id is a new row in a later file; readers keep, per id, the row
received last (`received_ns`), so replacing a score and replaying the WAL are both plain appends.
Every SQL text is a constant of this module with bound parameters; the comparison of a score
filter is chosen from a fixed table, never taken from the request. The files are read with DuckDB
whatever the query engine of the traces (scores are small and the Parquet files are always there).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from llmscope_collector.query.db import Database, bind
from llmscope_collector.query.filters import InvalidFilter
from llmscope_collector.query.models import Score
from llmscope_collector.query.vanished import until_read
from llmscope_collector.storage.layout import SCORES_DIR, project_glob
from llmscope_collector.storage.schema import SCORE_COLUMNS, names

_COLUMNS = ", ".join(names(SCORE_COLUMNS))
# The latest row of every score id of the project's files (bound as $glob).
_LATEST = f"""
SELECT {_COLUMNS} FROM read_parquet($glob, union_by_name = true)
QUALIFY row_number() OVER (PARTITION BY id ORDER BY received_ns DESC, time_ns DESC) = 1
"""  # noqa: S608  (column names from storage.schema)

TRACE_SCORES = f"SELECT * FROM ({_LATEST}) WHERE trace_id = $trace_id ORDER BY time_ns, id"  # noqa: S608
SPAN_SCORES = f"SELECT * FROM ({_LATEST}) WHERE trace_id = $trace_id AND span_id = $span_id ORDER BY time_ns, id"  # noqa: S608
SESSION_SCORES = f"SELECT * FROM ({_LATEST}) WHERE session_id = $session_id ORDER BY time_ns, id"  # noqa: S608
LIST_SCORES = f"""
SELECT * FROM ({_LATEST})
WHERE ($name IS NULL OR name = $name) AND time_ns >= $from_ns AND time_ns < $to_ns
ORDER BY time_ns DESC, id LIMIT $limit
"""  # noqa: S608

# How a filter compares: numeric scores by value, categorical (and boolean) ones by label.
_NUMERIC_OPS = {">=": ">=", "<=": "<=", ">": ">", "<": "<", "=": "=", "!=": "<>"}
_MATCH = {
    op: f"SELECT DISTINCT trace_id FROM ({_LATEST}) WHERE name = $name AND trace_id IS NOT NULL AND value {sql} $value"  # noqa: S608
    for op, sql in _NUMERIC_OPS.items()
}
_MATCH_LABEL = {
    "=": f"SELECT DISTINCT trace_id FROM ({_LATEST}) WHERE name = $name AND trace_id IS NOT NULL AND label = $label",  # noqa: S608
    "!=": f"SELECT DISTINCT trace_id FROM ({_LATEST}) WHERE name = $name AND trace_id IS NOT NULL AND label <> $label",  # noqa: S608
}

STREAM_SCORES = f"""
SELECT * FROM ({_LATEST})
WHERE ($name IS NULL OR name = $name) AND time_ns >= $from_ns AND time_ns < $to_ns
ORDER BY time_ns DESC, id"""  # noqa: S608

# The values of one score given in a time range (metrics: query.score_metrics).
SCORES_IN_RANGE = f"""
SELECT trace_id, time_ns, value, label FROM ({_LATEST})
WHERE name = $name AND time_ns >= $from_ns AND time_ns < $to_ns
ORDER BY time_ns, id LIMIT $limit"""  # noqa: S608

# Per trace, the average of the latest values of a numeric (or boolean) score on it or its spans: the
# key of `sort=score.<name>` (categorical scores have no value: they do not sort).
TRACE_AVERAGES = f"""
SELECT trace_id, avg(value) AS score FROM ({_LATEST})
WHERE name = $name AND trace_id IS NOT NULL AND value IS NOT NULL
GROUP BY trace_id ORDER BY trace_id"""  # noqa: S608

_FILTER_RE = re.compile(r"^score\.([^<>=!]{1,200})(>=|<=|!=|=|>|<)(.{1,200})$", re.DOTALL)


@dataclasses.dataclass(frozen=True)
class ScoreFilter:
    """`score.<name><op><value>`: traces with a score `name` (on the trace or one of its spans) that
    compares true; a number compares with the value, anything else with the label (`=`, `!=`)."""

    name: str
    op: str
    value: float | None
    label: str | None


def score_filters(params: Mapping[str, str] | Any) -> tuple[ScoreFilter, ...]:
    """The `score.*` filters of a query string (`score.helpfulness>=0.5` arrives as the key
    `score.helpfulness>` with the value `0.5`, `score.x>0.5` as a key without a value)."""
    found = []
    for key, raw in params.items():
        if not key.startswith("score."):
            continue
        expression = key if raw == "" and key[-1] not in "<>!" else f"{key}={raw}"
        found.append(parse_score_filter(expression))
    return tuple(found)


def parse_score_filter(expression: str) -> ScoreFilter:
    match = _FILTER_RE.match(expression)
    if match is None:
        raise InvalidFilter("score", f"{expression!r} is not score.<name><op><value> with op one of >= <= > < = !=")
    name, op, text = match.groups()
    try:
        value: float | None = float(text)
    except ValueError:
        value = None
    if value is None and op not in _MATCH_LABEL:
        raise InvalidFilter("score", f"{expression!r}: {op} needs a number")
    if value is not None and text.lower() in ("nan", "inf", "-inf", "infinity", "-infinity"):
        raise InvalidFilter("score", f"{expression!r}: the value must be a finite number")
    return ScoreFilter(name, op, value, None if value is not None else text)


class ScoreStore:
    """The scores of one data dir (or a bucket's mirror), read through DuckDB."""

    def __init__(self, data_dir: Path, db: Database | None = None) -> None:
        self._data_dir = data_dir
        self._db = db or Database(threads=1, memory_limit="512MB")
        self._owns_db = db is None

    def for_trace(self, project: str, trace_id: str) -> list[Score]:
        """Every score of a trace: on the trace itself and on its spans."""
        return self._scores(project, TRACE_SCORES, {"trace_id": trace_id})

    def for_span(self, project: str, trace_id: str, span_id: str) -> list[Score]:
        return self._scores(project, SPAN_SCORES, {"trace_id": trace_id, "span_id": span_id})

    def for_session(self, project: str, session_id: str) -> list[Score]:
        return self._scores(project, SESSION_SCORES, {"session_id": session_id})

    def recent(self, project: str, name: str | None, from_ns: int, to_ns: int, limit: int) -> list[Score]:
        params = {"name": name, "from_ns": from_ns, "to_ns": to_ns, "limit": limit}
        return self._scores(project, LIST_SCORES, params)

    def matching_traces(self, project: str, filters: tuple[ScoreFilter, ...]) -> list[str]:
        """The trace ids every filter matches (sorted)."""
        matched: set[str] | None = None
        for f in filters:
            if f.value is not None:
                rows = self._rows(project, _MATCH[f.op], {"name": f.name, "value": f.value})
            else:
                rows = self._rows(project, _MATCH_LABEL[f.op], {"name": f.name, "label": f.label})
            ids = {r["trace_id"] for r in rows}
            matched = ids if matched is None else matched & ids
        return sorted(matched or ())

    def stream(self, project: str, name: str | None, from_ns: int, to_ns: int) -> Iterator[dict[str, Any]]:
        """Every score of the range (of `name`, if given), newest first, read in batches of 1000 rows."""
        glob = project_glob(self._data_dir, SCORES_DIR, project)
        if glob is None:
            return
        params = {"glob": glob, "name": name, "from_ns": from_ns, "to_ns": to_ns}
        cur = self._db.cursor()
        try:
            result = cur.execute(STREAM_SCORES, bind(STREAM_SCORES, params))
            columns = [d[0] for d in result.description or ()]
            while rows := result.fetchmany(1000):
                for row in rows:
                    yield dict(zip(columns, row, strict=True))
        finally:
            cur.close()

    def in_range(self, project: str, name: str, from_ns: int, to_ns: int, limit: int) -> list[dict[str, Any]]:
        """The trace, time, value and label of each score `name` given in `[from_ns, to_ns)`, oldest first."""
        params = {"name": name, "from_ns": from_ns, "to_ns": to_ns, "limit": limit}
        return self._rows(project, SCORES_IN_RANGE, params)

    def trace_averages(self, project: str, name: str) -> tuple[tuple[str, float], ...]:
        """(trace id, average value of the score `name` on it and its spans) of every trace that has one."""
        rows = self._rows(project, TRACE_AVERAGES, {"name": name})
        return tuple((r["trace_id"], float(r["score"])) for r in rows)

    def _scores(self, project: str, query: str, params: dict[str, Any]) -> list[Score]:
        return [Score(**row) for row in self._rows(project, query, params)]

    def _rows(self, project: str, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        glob = project_glob(self._data_dir, SCORES_DIR, project)
        if glob is None:
            return []
        bound = bind(query, {**params, "glob": glob})

        def read() -> list[dict[str, Any]]:
            cur = self._db.cursor()
            try:
                result = cur.execute(query, bound)
                columns = [d[0] for d in result.description or ()]
                return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]
            finally:
                cur.close()

        return until_read(read)  # a file removed (retention) between the glob and the read: glob again

    def close(self) -> None:
        if self._owns_db:
            self._db.close()
