"""Result rows → response Structs, shared by the trace, session and roll-up queries."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from llmscope_collector.query.models import (
    Field,
    LatencyStats,
    SessionSummary,
    TraceSummary,
    Usage,
    served_trace_fields,
    summed_trace_fields,
)
from llmscope_collector.storage.schema import REPORTED_SOURCE, TOKEN_COLUMNS, TRACE_COLUMNS


def money(value: Decimal | float | None) -> float | None:
    """USD as a float, from the exact decimal sum (12 decimals)."""
    return None if value is None else round(float(value), 12)


# A reported cost is shown beside ours when they differ by more than this, in USD per million tokens
# of the call (rounding in an instrumentation's float arithmetic stays far below it).
REPORTED_TOLERANCE_PER_MTOK = Decimal("0.01")


def reported_cost_differs(row: dict[str, Any]) -> bool:
    """Whether a span's reported cost differs from ours by more than a cent per million tokens (never when
    ours is the reported one)."""
    ours, reported = row.get("cost_usd"), row.get("reported_cost_usd")
    if ours is None or reported is None or row.get("cost_source") == REPORTED_SOURCE:
        return False
    gap = abs(Decimal(ours) - Decimal(reported))
    tokens = row.get("total_tokens") or 0
    return bool(gap > REPORTED_TOLERANCE_PER_MTOK * tokens / 1_000_000) if tokens > 0 else bool(gap)


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
        cost_usd=_cost(row),
        cost_unknown=_int(row, "cost_unknown"),
        **{name: _int(row, name) for name in TOKEN_COLUMNS},
    )


def _served(row: dict[str, Any], fields: list[Field]) -> dict[str, Any]:
    """A struct's declared fields from a result row: totals as ints (0 for none), cost as shown, lists
    as lists, other values as they are."""
    values: dict[str, Any] = {}
    for name, _type, default in fields:
        if name == "cost_usd":
            values[name] = _cost(row)
        elif default == 0:
            values[name] = _int(row, name)
        elif default is None:
            values[name] = row.get(name)
        else:
            values[name] = row.get(name) or []
    return values


_TRACE_FIELDS = served_trace_fields(TRACE_COLUMNS)
_SESSION_FIELDS = summed_trace_fields(TRACE_COLUMNS)


def trace_summary(row: dict[str, Any]) -> TraceSummary:
    return TraceSummary(
        **_served(row, _TRACE_FIELDS),  # trace_id among them
        name=row["root_name"],
        service_name=row["root_service"] or (row["services"] or [None])[0],
        start_time_unix_nano=row["start_ns"],
        duration_ms=row["duration_ns"] / 1_000_000,
        state=row["state"],
        status="error" if row["error_count"] else "ok",
    )


def session_summary(row: dict[str, Any], latency_ns: list[float] | None) -> SessionSummary:
    p50, p95 = (latency_ns or [])[:2] if latency_ns and len(latency_ns) >= 2 else (None, None)
    return SessionSummary(
        **_served(row, _SESSION_FIELDS),
        session_id=row["session_id"],
        user_id=row["user_id"],
        first_activity_unix_nano=int(row["first_ns"]),
        last_activity_unix_nano=int(row["last_ns"]),
        trace_count=_int(row, "trace_count"),
        error_traces=_int(row, "error_traces"),
        latency=LatencyStats(
            p50_ms=None if p50 is None else p50 / 1e6,
            p95_ms=None if p95 is None else p95 / 1e6,
        ),
    )
