"""API response models (msgspec Structs). Query results are returned as they are."""

from __future__ import annotations

from typing import Literal

import msgspec

from llmscope_collector.query.models import StoreCounts, TraceTotals, Waterfall, WaterfallSpan


class ErrorBody(msgspec.Struct, kw_only=True):
    """Every 4xx/5xx body: a stable machine code and a sentence for people."""

    status_code: int
    error: str
    detail: str


class Health(msgspec.Struct, kw_only=True):
    status: Literal["ok", "degraded"]
    storage: Literal["ok", "unavailable"]
    spans: int
    traces: int
    buffered_spans: int
    version: str


__all__ = ["ErrorBody", "Health", "StoreCounts", "TraceTotals", "Waterfall", "WaterfallSpan"]
