"""Builds a trace's waterfall from its span rows: tree, offsets, self-time, critical path.

Pure Python over rows already fetched, so it is tested without a store. Spans whose parent is not
in the trace (lost or not yet arrived) are flagged `orphan` and shown under one synthetic root row
(`synthetic`, span id all zeros, which no real span may have) spanning them; it is not counted in
the totals. Parent links that form a cycle are cut at the cycle's earliest span, shown as an orphan.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from llmscope_collector.query.models import ContentRef, SpanEvent, SpanException, TraceTotals, Waterfall, WaterfallSpan
from llmscope_collector.storage.schema import LLM_OPERATIONS as LLM_OPERATION_NAMES
from llmscope_collector.storage.schema import SPAN_COLUMNS, TOKEN_COLUMNS, waterfall_copied

_NS_PER_MS = 1_000_000
SYNTHETIC_ROOT_ID = "0" * 16


def _union_ns(intervals: list[tuple[int, int]]) -> int:
    """Total length covered by possibly overlapping intervals."""
    total, cur_start, cur_end = 0, None, None
    for start, end in sorted(intervals):
        if cur_end is None or start > cur_end:
            if cur_end is not None and cur_start is not None:
                total += cur_end - cur_start
            cur_start, cur_end = start, end
        elif end > cur_end:
            cur_end = end
    if cur_end is not None and cur_start is not None:
        total += cur_end - cur_start
    return total


def _critical_path(root: str, rows: dict[str, dict[str, Any]], children: dict[str, list[str]]) -> set[str]:
    """Jaeger-style: walk back from a span's end, into the last-finishing child, then the child
    that finished before that one started, and so on."""
    marked: set[str] = set()
    stack = [root]
    while stack:
        span_id = stack.pop()
        marked.add(span_id)
        t = rows[span_id]["end_ns"]
        first = True
        for child in sorted(children.get(span_id, ()), key=lambda c: rows[c]["end_ns"], reverse=True):
            if first or rows[child]["end_ns"] <= t:
                stack.append(child)
                t = rows[child]["start_ns"]
                first = False
    return marked


def build_waterfall(trace_id: str, rows: Sequence[dict[str, Any]]) -> Waterfall:
    """Rows must all belong to `trace_id`; duplicates of a span id keep the first seen."""
    by_id: dict[str, dict[str, Any]] = {}
    for row in rows:
        by_id.setdefault(row["span_id"], row)
    children: dict[str, list[str]] = {}
    roots: list[str] = []
    orphans: list[str] = []
    for span_id, row in by_id.items():
        parent = row["parent_span_id"]
        if parent and parent in by_id and parent != span_id:
            children.setdefault(parent, []).append(span_id)
        elif parent and parent != span_id:
            orphans.append(span_id)
        else:
            roots.append(span_id)
    real = dict(by_id)
    detached = _break_cycles(by_id, children, [*roots, *orphans])
    orphans.extend(detached)
    if orphans:
        by_id[SYNTHETIC_ROOT_ID] = _synthetic_root(trace_id, [by_id[o] for o in orphans])
        children[SYNTHETIC_ROOT_ID] = orphans
        roots.append(SYNTHETIC_ROOT_ID)
    order_key = lambda s: (by_id[s]["start_ns"], s)  # noqa: E731
    for kids in children.values():
        kids.sort(key=order_key)
    roots.sort(key=order_key)
    trace_start = min(r["start_ns"] for r in real.values())
    trace_end = max(r["end_ns"] for r in real.values())
    critical: set[str] = set()
    if roots:
        longest_root = max(roots, key=lambda s: by_id[s]["end_ns"])
        critical = _critical_path(longest_root, by_id, children)
    spans: list[WaterfallSpan] = []
    stack = [(r, 0) for r in reversed(roots)]
    while stack:
        span_id, depth = stack.pop()
        row = by_id[span_id]
        kids = children.get(span_id, [])
        orphan = span_id in detached or (bool(row["parent_span_id"]) and row["parent_span_id"] not in real)
        spans.append(_waterfall_span(row, depth, kids, trace_start, by_id, span_id in critical, real, orphan))
        stack.extend((kid, depth + 1) for kid in reversed(kids))
    return Waterfall(
        trace_id=trace_id,
        project=str(rows[0].get("project") or "default"),
        start_time_unix_nano=trace_start,
        duration_ms=(trace_end - trace_start) / _NS_PER_MS,
        totals=_totals([s for s in spans if not s.synthetic]),
        spans=spans,
    )


def _break_cycles(by_id: dict[str, dict[str, Any]], children: dict[str, list[str]], tops: list[str]) -> list[str]:
    """Spans unreachable from the top rows (their parent links form a cycle): the earliest of each cycle
    is cut from its parent and returned, to be shown as an orphan, so every span is shown once."""
    seen: set[str] = set()

    def mark(start: str) -> None:
        stack = [start]
        while stack:
            span_id = stack.pop()
            if span_id not in seen:
                seen.add(span_id)
                stack.extend(children.get(span_id, ()))

    for top in tops:
        mark(top)
    detached: list[str] = []
    for span_id in sorted(by_id, key=lambda s: (by_id[s]["start_ns"], s)):
        if span_id not in seen:
            children[by_id[span_id]["parent_span_id"]].remove(span_id)
            detached.append(span_id)
            mark(span_id)
    return detached


def _synthetic_root(trace_id: str, orphans: list[dict[str, Any]]) -> dict[str, Any]:
    """The row shown in place of the missing parent(s), spanning the orphans."""
    return {
        "trace_id": trace_id,
        "span_id": SYNTHETIC_ROOT_ID,
        "parent_span_id": None,
        "name": "(missing parent span)",
        "kind": "INTERNAL",
        "status_code": "UNSET",
        "start_ns": min(o["start_ns"] for o in orphans),
        "end_ns": max(o["end_ns"] for o in orphans),
        "synthetic": True,
    }


def _waterfall_span(
    row: dict[str, Any],
    depth: int,
    kids: list[str],
    trace_start: int,
    by_id: dict[str, dict[str, Any]],
    critical: bool,
    real: dict[str, dict[str, Any]],
    orphan: bool,
) -> WaterfallSpan:
    start, end = row["start_ns"], row["end_ns"]
    clipped = [(max(start, by_id[k]["start_ns"]), min(end, by_id[k]["end_ns"])) for k in kids]
    covered = _union_ns([(lo, hi) for lo, hi in clipped if hi > lo])
    parent = row["parent_span_id"]
    ttft = row.get("ttft_s")
    events, exceptions = _events(row.get("events"), trace_start)
    return WaterfallSpan(
        span_id=row["span_id"],
        parent_span_id=parent,
        name=row["name"],
        kind=row["kind"],
        status_code=row["status_code"],
        status_message=row.get("status_message"),
        service_name=row.get("service_name"),
        start_offset_ms=(start - trace_start) / _NS_PER_MS,
        duration_ms=max(0, end - start) / _NS_PER_MS,
        self_time_ms=max(0, end - start - covered) / _NS_PER_MS,
        depth=depth,
        children=kids,
        critical_path=critical,
        orphan=orphan,
        synthetic=bool(row.get("synthetic")),
        ttft_ms=None if ttft is None else ttft * 1000.0,
        cost_usd=None if row.get("cost_usd") is None else float(row["cost_usd"]),
        counted=_counted(row, real),
        events=events,
        exceptions=exceptions,
        content=[ContentRef(kind=c["kind"], bytes=c["bytes"] or 0) for c in row.get("content") or ()],
        **{name: row.get(name) for name in _COPIED},
    )


_COPIED = tuple(c.name for c in waterfall_copied(SPAN_COLUMNS))  # served as stored
LLM_OPERATIONS = frozenset(LLM_OPERATION_NAMES)
_json = msgspec.json.Decoder()


def _counted(row: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> bool | None:
    """None for non-LLM spans; False for an LLM span nested in an LLM span (the same call, counted once)."""
    if row.get("operation") not in LLM_OPERATIONS:
        return None
    parent = by_id.get(row["parent_span_id"] or "")
    nested = parent is not None and parent is not row and parent.get("operation") in LLM_OPERATIONS
    # (A parent marked a duplicate is a wrapper without usage around this call: this one is counted.)
    return not ((nested and not parent.get("llm_dup")) or row.get("llm_dup"))  # type: ignore[union-attr]


def _events(raw: str | None, trace_start: int) -> tuple[list[SpanEvent], list[SpanException]]:
    if not raw:
        return [], []
    try:
        decoded = _json.decode(raw)
    except msgspec.DecodeError:
        return [], []
    events: list[SpanEvent] = []
    exceptions: list[SpanException] = []
    for event in decoded if isinstance(decoded, list) else ():
        attrs = event.get("attributes") or {}
        offset = (int(event.get("time_ns") or trace_start) - trace_start) / _NS_PER_MS
        if event.get("name") == "exception":
            exceptions.append(
                SpanException(
                    type=attrs.get("exception.type"),
                    message=attrs.get("exception.message"),
                    stacktrace=attrs.get("exception.stacktrace"),
                    offset_ms=offset,
                )
            )
        events.append(SpanEvent(name=str(event.get("name")), offset_ms=offset, attributes=attrs))
    return events, exceptions


def _totals(spans: list[WaterfallSpan]) -> TraceTotals:
    """Trace totals over counted LLM spans only: an LLM span nested directly in another LLM span (e.g.
    a client library's own span under an instrumentation's span for the same call) is not counted twice."""
    llm = [s for s in spans if s.counted]
    known = [s.cost_usd for s in llm if s.cost_known and s.cost_usd is not None]
    return TraceTotals(
        span_count=len(spans),
        llm_calls=len(llm),
        error_count=sum(1 for s in spans if s.status_code == "ERROR"),
        cost_usd=sum(known) if known or not llm else None,
        cost_unknown=len(llm) - len(known),
        **{name: sum(getattr(s, name) or 0 for s in llm) for name in TOKEN_COLUMNS},
    )
