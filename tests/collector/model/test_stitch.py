"""The stitcher marks each nested duplicate LLM span exactly once and trace totals never count it.

The anthropic client's own span under the SDK's span for the same call is one model call: an LLM
span whose parent is an LLM span of the same trace is a duplicate. Spans arrive in any order and
flush (a parent after its child is written: the child is then recorded in `llm_dups` and the
parent's delta subtracts it). Whatever the order, the sum of a trace's deltas counts each call
once. The golden file `golden/stitch.jsonl` pins the exact outputs on odder sequences (repeats,
failed writes, window evictions).
"""

from __future__ import annotations

import itertools
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from llmscope_collector.processors import stitch
from llmscope_collector.storage.schema import SPAN_SCHEMA
from tests.collector.golden.outputs import MEMORY_FS

_TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")
_DATES = ("2025-06-01", "2025-06-02")


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist([{**dict.fromkeys(SPAN_SCHEMA.names), **r} for r in rows], schema=SPAN_SCHEMA)


@st.composite
def _traces(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Spans of a few traces, each under an earlier span of its trace or a root (or a parent never sent)."""
    spans: list[dict[str, Any]] = []
    for trace_id in ("t1", "t2", "t3"):
        ids: list[str] = []
        for n in range(draw(st.integers(0, 7))):
            span_id = f"{trace_id}-s{n}"
            parent = draw(st.one_of(st.sampled_from([None, "", "missing"]), st.sampled_from(ids or [None])))
            llm = draw(st.booleans())
            spans.append(
                {
                    "trace_id": trace_id,
                    "span_id": span_id,
                    "parent_span_id": parent,
                    "operation": draw(st.sampled_from(["chat", "embeddings"])) if llm else "execute_tool",
                    "start_ns": n,
                    "end_ns": 100,
                    **{f: draw(st.integers(0, 10_000)) for f in _TOKENS},
                    "total_tokens": draw(st.integers(0, 20_000)),
                    "cost_known": (known := draw(st.booleans())),
                    "cost_usd": Decimal(draw(st.integers(0, 10**9))).scaleb(-12) if known else None,
                }
            )
            ids.append(span_id)
    return spans


def _nested(spans: list[dict[str, Any]]) -> set[str]:
    llm = {s["span_id"] for s in spans if s["operation"] in stitch._LLM}
    return {s["span_id"] for s in spans if s["span_id"] in llm and s["parent_span_id"] in llm}


def _flush_all(data_dir: Path, flushes: list[list[dict[str, Any]]], dates: dict[str, str]) -> tuple[Any, Any]:
    """Run the flushes through a stitcher as the writer does; the stitcher and the final row of each span."""
    stitcher = stitch.Stitcher(data_dir)
    rows: dict[str, Any] = {}
    for n, flush in enumerate(flushes):
        for date in _DATES:
            part = [s for s in flush if dates[s["span_id"]] == date]
            if not part:
                continue
            marked = stitcher.before_write(("acme", date), _table(part))
            stitcher.after_write(("acme", date), marked, n, n + 1)
            rows.update((r["span_id"], r) for r in marked.to_pylist())
        stitcher.after_flush(n, n + 1)
    return stitcher, rows


def _dataset(data_dir: Path, name: str) -> list[dict[str, Any]]:
    return [r for path in sorted((data_dir / name).rglob("*.parquet")) for r in pq.read_table(path).to_pylist()]


@settings(max_examples=60, deadline=None)
@given(spans=_traces(), order=st.randoms(use_true_random=False), cuts=st.lists(st.integers(0, 30), max_size=4))
def test_nested_duplicates_are_marked_once_and_never_counted_in_trace_totals(
    spans: list[dict[str, Any]], order: Any, cuts: list[int]
) -> None:
    with tempfile.TemporaryDirectory(dir=MEMORY_FS) as tmp:
        _check_marks_and_totals(Path(tmp), spans, order, cuts)


def _check_marks_and_totals(data_dir: Path, spans: list[dict[str, Any]], order: Any, cuts: list[int]) -> None:
    arrival = list(spans)
    order.shuffle(arrival)
    bounds = [0, *sorted(min(c, len(arrival)) for c in cuts), len(arrival)]
    flushes = [arrival[a:b] for a, b in itertools.pairwise(bounds)]
    dates = {s["span_id"]: order.choice(_DATES) for s in spans}
    stitcher, rows = _flush_all(data_dir, flushes, dates)

    nested = _nested(spans)
    corrected = [r["span_id"] for r in _dataset(data_dir, stitch.LLM_DUPS_DIR)]
    assert len(corrected) == len(set(corrected))
    for s in spans:
        marked_in_row = rows[s["span_id"]]["llm_dup"]
        if s["operation"] not in stitch._LLM:
            assert marked_in_row is None and s["span_id"] not in corrected
        else:  # marked in its row (parent seen first) or recorded later (parent arrived after): never both
            assert [marked_in_row, s["span_id"] in corrected].count(True) == (s["span_id"] in nested)
    assert stitcher.dups_marked == len(nested)

    totals: dict[str, dict[str, Any]] = {}
    for delta in _dataset(data_dir, stitch.TRACES_DIR):
        total = totals.setdefault(delta["trace_id"], {})
        for field in (*_TOKENS, "total_tokens", "llm_calls", "cost_unknown", "cost_usd", "span_count"):
            total[field] = total.get(field, 0) + delta[field]
    for trace_id in {s["trace_id"] for s in spans}:
        trace = [s for s in spans if s["trace_id"] == trace_id]
        counted = [s for s in trace if s["operation"] in stitch._LLM and s["span_id"] not in nested]
        expected = {f: sum(s[f] for s in counted) for f in (*_TOKENS, "total_tokens")}
        expected["llm_calls"] = len(counted)
        expected["cost_unknown"] = sum(not s["cost_known"] for s in counted)
        expected["cost_usd"] = sum((s["cost_usd"] for s in counted if s["cost_known"]), Decimal(0))
        expected["span_count"] = len(trace)
        assert totals[trace_id] == expected, trace_id


# --- cases the old equivalence tests pinned (now on the stitcher alone) ----------------------------


def _llm(span_id: str | None, parent: str | None, tokens: int = 7, known: bool | None = True) -> dict[str, Any]:
    return {"trace_id": "t1", "span_id": span_id, "parent_span_id": parent, "operation": "chat", "start_ns": 1,
            "end_ns": 2, "input_tokens": tokens, "total_tokens": tokens, "cost_known": known,
            "cost_usd": Decimal(tokens).scaleb(-12)}  # fmt: skip


def _dups_after(tmp_path: Path, *flushes: list[tuple[str, list[dict[str, Any]], bool]]) -> tuple[int, list[Any]]:
    """Run (date, rows, written) partitions of project acme; the dups marked and the `llm_dups` rows by partition."""
    stitcher = stitch.Stitcher(tmp_path)
    for n, flush in enumerate(flushes):
        for date, rows, written in flush:
            marked = stitcher.before_write(("acme", date), _table(rows))
            if written:
                stitcher.after_write(("acme", date), marked, n, n + 1)
        stitcher.after_flush(n, n + 1)
    files = sorted((tmp_path / stitch.LLM_DUPS_DIR).rglob("*.parquet"))
    return stitcher.dups_marked, [(str(p.parent.relative_to(tmp_path)), pq.read_table(p).num_rows) for p in files]


_D1, _D2 = "2025-06-01", "2025-06-02"


def test_late_parent_corrects_written_children(tmp_path: Path) -> None:
    children = [_llm("c1", "p", 2**40, None), _llm("c2", "p", 5, False), _llm("c3", "p")]
    marked, files = _dups_after(tmp_path, [(_D1, children, True)], [(_D2, [_llm("p", None)], True)])
    assert marked == 3 and files == [(f"llm_dups/project=acme/date={_D1}", 3)]


def test_child_keeps_first_date_and_parent_but_takes_new_numbers(tmp_path: Path) -> None:
    again = [_llm("c", "other", 11)]
    flushes = [(_D1, [_llm("c", "p")], True)], [(_D2, again, True)], [(_D2, [_llm("p", None)], True)]
    marked, files = _dups_after(tmp_path, *flushes)
    assert marked == 1 and files == [(f"llm_dups/project=acme/date={_D1}", 1)]


def test_unwritten_child_is_not_corrected(tmp_path: Path) -> None:
    assert _dups_after(tmp_path, [(_D1, [_llm("c", "p")], False)], [(_D1, [_llm("p", None)], True)]) == (0, [])


def test_null_and_empty_parents_match_null_and_empty_span_ids(tmp_path: Path) -> None:
    roots = [_llm("a", None), _llm("b", "")]
    flushes = [(_D1, roots, True)], [(_D1, [_llm(None, "x"), _llm("", "x")], True)], [(_D1, roots, True)]
    marked, files = _dups_after(tmp_path, *flushes)
    assert marked == 2 and not files  # duplicates on their second rows, never corrected


def test_blob_dates_round_trip(tmp_path: Path) -> None:
    """Blobs store a partition date as a day number, or (not in ISO form) as an index: both come back."""
    stitcher = stitch.Stitcher(tmp_path)
    for date in ("2025-06-01", "1677-09-21", "2025-6-1", "20250601", "2025-06-01", "x"):
        assert stitcher._date_of(stitch._HEADER.pack(4, stitcher._date_code(date))) == date
