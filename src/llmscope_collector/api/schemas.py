"""API response models (msgspec Structs). Query results are returned as they are."""

from __future__ import annotations

from typing import Literal

import msgspec

from llmscope_collector.ingest_status import IngestStatus
from llmscope_collector.query.models import (
    CostReport,
    DeletionReport,
    Metrics,
    MetricsSeries,
    PromptList,
    PromptVersions,
    ScoreMetrics,
    SessionDetail,
    SessionPage,
    SpanDetail,
    StoreCounts,
    TracePage,
    TraceTotals,
    Waterfall,
    WaterfallSpan,
)


class ErrorBody(msgspec.Struct, kw_only=True):
    """Every 4xx/5xx body: a stable machine code and a sentence for people."""

    status_code: int
    error: str
    detail: str


class Health(msgspec.Struct, kw_only=True, omit_defaults=True):
    """`status` is the liveness answer anyone gets. The counts and the ingest detail (every
    project's together) are left out for callers without the admin token when keys are required."""

    status: Literal["ok", "degraded"]
    storage: Literal["ok", "unavailable"]
    version: str
    spans: int | None = None
    traces: int | None = None  # with ?traces=true only (a scan of every trace id)
    buffered_spans: int | None = None
    # Durable ingest: WAL lag (acked, not yet in Parquet), fsync latency, replay and repair counters.
    ingest: IngestStatus | None = None


__all__ = [
    "CostReport",
    "DeletionReport",
    "ErrorBody",
    "Health",
    "Metrics",
    "MetricsSeries",
    "PromptList",
    "PromptVersions",
    "ScoreMetrics",
    "SessionDetail",
    "SessionPage",
    "SpanDetail",
    "StoreCounts",
    "TracePage",
    "TraceTotals",
    "Waterfall",
    "WaterfallSpan",
]
