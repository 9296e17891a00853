"""Result rows → response Structs, shared by the trace, session and roll-up queries."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from llmscope_collector.query.models import LatencyStats, SessionSummary, TraceSummary, Usage


def money(value: Decimal | float | None) -> float | None:
    """USD as a float, from the exact decimal sum (12 decimals)."""
    return None if value is None else round(float(value), 12)


def _int(row: dict[str, Any], name: str) -> int:
    return int(row.get(name) or 0)


def _cost(row: dict[str, Any]) -> float | None:
    """Known cost, or None when every call was unpriced (unknown is not $0)."""
    calls, unknown = _int(row, "llm_calls"), _int(row, "cost_unknown")
    if calls and unknown >= calls:
        return None
    return money(row.get("cost_usd") or 0)


def usage(row: dict[str, Any]) -> Usage:
    return Usage(
        llm_calls=_int(row, "llm_calls"),
        input_tokens=_int(row, "input_tokens"),
        output_tokens=_int(row, "output_tokens"),
        cache_read_tokens=_int(row, "cache_read_tokens"),
        cache_write_tokens=_int(row, "cache_write_tokens"),
        reasoning_tokens=_int(row, "reasoning_tokens"),
        total_tokens=_int(row, "total_tokens"),
        cost_usd=_cost(row),
        cost_unknown=_int(row, "cost_unknown"),
    )


def trace_summary(row: dict[str, Any]) -> TraceSummary:
    return TraceSummary(
        trace_id=row["trace_id"],
        name=row["root_name"],
        root_span_id=row["root_span_id"],
        service_name=row["root_service"] or (row["services"] or [None])[0],
        services=row["services"] or [],
        start_time_unix_nano=row["start_ns"],
        duration_ms=row["duration_ns"] / 1_000_000,
        state=row["state"],
        status="error" if row["error_count"] else "ok",
        span_count=_int(row, "span_count"),
        llm_calls=_int(row, "llm_calls"),
        error_count=_int(row, "error_count"),
        input_tokens=_int(row, "input_tokens"),
        output_tokens=_int(row, "output_tokens"),
        cache_read_tokens=_int(row, "cache_read_tokens"),
        cache_write_tokens=_int(row, "cache_write_tokens"),
        total_tokens=_int(row, "total_tokens"),
        cost_usd=_cost(row),
        cost_unknown=_int(row, "cost_unknown"),
        session_id=row["session_id"],
        user_id=row["user_id"],
        models=row["models"] or [],
        providers=row["providers"] or [],
        prompts=row["prompts"] or [],
        tags=row["tags"] or [],
    )


def session_summary(row: dict[str, Any], latency_ns: list[float] | None) -> SessionSummary:
    p50, p95 = (latency_ns or [])[:2] if latency_ns and len(latency_ns) >= 2 else (None, None)
    return SessionSummary(
        session_id=row["session_id"],
        user_id=row["user_id"],
        first_activity_unix_nano=int(row["first_ns"]),
        last_activity_unix_nano=int(row["last_ns"]),
        trace_count=_int(row, "trace_count"),
        span_count=_int(row, "span_count"),
        llm_calls=_int(row, "llm_calls"),
        input_tokens=_int(row, "input_tokens"),
        output_tokens=_int(row, "output_tokens"),
        cache_read_tokens=_int(row, "cache_read_tokens"),
        cache_write_tokens=_int(row, "cache_write_tokens"),
        total_tokens=_int(row, "total_tokens"),
        cost_usd=_cost(row),
        cost_unknown=_int(row, "cost_unknown"),
        error_count=_int(row, "error_count"),
        error_traces=_int(row, "error_traces"),
        latency=LatencyStats(
            p50_ms=None if p50 is None else p50 / 1e6,
            p95_ms=None if p95 is None else p95 / 1e6,
        ),
    )
