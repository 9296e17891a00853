"""`TraceStore`: the only reader of the span store; all SQL comes from `query.sql`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from llmscope_collector.query import sql
from llmscope_collector.query.db import Database
from llmscope_collector.query.models import StoreCounts, Waterfall
from llmscope_collector.query.waterfall import build_waterfall
from llmscope_collector.storage.layout import has_span_files, spans_glob

_TRACE_ID_RE = re.compile(r"^[0-9a-f]{32}$")


class InvalidTraceId(ValueError):
    """A trace id that is not 32 hex characters (or is all zeros)."""


def normalize_trace_id(trace_id: str) -> str:
    """Lower-case hex trace id, or `InvalidTraceId` saying what a valid one looks like."""
    tid = trace_id.strip().lower()
    if not _TRACE_ID_RE.match(tid) or tid == "0" * 32:
        raise InvalidTraceId(f"trace id must be 32 hexadecimal characters and not all zeros, got {trace_id!r}")
    return tid


class TraceStore:
    """Reads traces from the Parquet files under `data_dir` through DuckDB."""

    def __init__(self, data_dir: Path, db: Database | None = None) -> None:
        self._data_dir = data_dir
        self._glob = spans_glob(data_dir)
        self._db = db or Database()

    def _rows(self, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        if not has_span_files(self._data_dir):
            return []
        cur = self._db.cursor()
        try:
            result = cur.execute(query, {"glob": self._glob, **params})
            names = [d[0] for d in result.description or ()]
            return [dict(zip(names, row, strict=True)) for row in result.fetchall()]
        finally:
            cur.close()

    def get_trace(self, trace_id: str) -> Waterfall | None:
        """The waterfall of one trace, or None when no span of it is stored."""
        tid = normalize_trace_id(trace_id)
        rows = self._rows(sql.TRACE_SPANS, {"trace_id": tid})
        return build_waterfall(tid, rows) if rows else None

    def counts(self) -> StoreCounts:
        rows = self._rows(sql.COUNTS, {})
        if not rows:
            return StoreCounts(spans=0, traces=0)
        return StoreCounts(spans=int(rows[0]["spans"]), traces=int(rows[0]["traces"]))

    def close(self) -> None:
        self._db.close()
