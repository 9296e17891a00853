"""Waterfall construction: tree order, offsets, self-time, critical path, orphans, dedup of totals."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from llmscope_collector.query.waterfall import build_waterfall

MS = 1_000_000


def row(span_id: str, parent: str | None, start_ms: int, end_ms: int, **extra: Any) -> dict[str, Any]:
    base = {
        "project": "default",
        "span_id": span_id,
        "parent_span_id": parent,
        "name": span_id,
        "kind": "INTERNAL",
        "status_code": "UNSET",
        "start_ns": start_ms * MS,
        "end_ns": end_ms * MS,
    }
    base.update(extra)
    return base


def test_tree_order_depth_offsets_and_self_time() -> None:
    rows = [
        row("c2", "root", 60, 90),
        row("root", None, 0, 100),
        row("c1", "root", 10, 50),
        row("g1", "c1", 20, 30),
    ]
    wf = build_waterfall("t" * 32, rows)
    assert [(s.span_id, s.depth) for s in wf.spans] == [("root", 0), ("c1", 1), ("g1", 2), ("c2", 1)]
    by = {s.span_id: s for s in wf.spans}
    assert by["root"].children == ["c1", "c2"]
    assert by["g1"].start_offset_ms == 20.0 and by["g1"].duration_ms == 10.0
    assert by["root"].self_time_ms == 30.0  # 100 - (40 + 30)
    assert by["c1"].self_time_ms == 30.0
    assert wf.duration_ms == 100.0


def test_self_time_uses_union_of_overlapping_children() -> None:
    rows = [row("root", None, 0, 100), row("a", "root", 10, 60), row("b", "root", 40, 80)]
    by = {s.span_id: s for s in build_waterfall("t" * 32, rows).spans}
    assert by["root"].self_time_ms == 30.0  # children cover 10..80


def test_critical_path_follows_last_finishing_chain() -> None:
    rows = [
        row("root", None, 0, 100),
        row("early", "root", 0, 20),
        row("overlap", "root", 10, 70),  # ends after 'mid' starts: not on the path
        row("mid", "root", 25, 60),
        row("late", "root", 60, 95),
    ]
    by = {s.span_id: s for s in build_waterfall("t" * 32, rows).spans}
    # Back from root's end: 'late' finished last; then the last child ending by late's start (60) is
    # 'mid'; then 'early' ends before mid starts. 'overlap' runs through that gap and is off the path.
    assert {k for k, s in by.items() if s.critical_path} == {"root", "late", "mid", "early"}


def test_orphans_are_flagged_under_a_synthetic_root() -> None:
    rows = [row("root", None, 0, 10), row("lost-child", "missing-parent", 5, 8)]
    wf = build_waterfall("t" * 32, rows)
    orphan = next(s for s in wf.spans if s.span_id == "lost-child")
    synthetic = next(s for s in wf.spans if s.synthetic)
    assert orphan.orphan and orphan.depth == 1 and synthetic.children == ["lost-child"] and synthetic.depth == 0
    assert not next(s for s in wf.spans if s.span_id == "root").orphan
    assert wf.totals.span_count == 2


def test_parent_cycles_still_show_every_span_once() -> None:
    rows = [row("root", None, 0, 100), row("a", "b", 10, 20), row("b", "a", 15, 30), row("c", "b", 16, 18)]
    wf = build_waterfall("t" * 32, rows)
    ids = [s.span_id for s in wf.spans if not s.synthetic]
    assert sorted(ids) == ["a", "b", "c", "root"] and wf.totals.span_count == 4
    by = {s.span_id: s for s in wf.spans}
    assert by["a"].orphan and by["a"].depth == 1 and by["b"].depth == 2 and by["c"].depth == 3
    assert not by["b"].orphan and by["0" * 16].children == ["a"]


def test_nested_llm_span_is_not_counted_twice() -> None:
    llm = {"operation": "chat", "input_tokens": 10, "output_tokens": 5}
    rows = [
        row("root", None, 0, 100),
        row("ours", "root", 10, 90, **llm),
        row("client-lib", "ours", 11, 89, **llm),  # e.g. anthropic 2.x's own span under ours
    ]
    totals = build_waterfall("t" * 32, rows).totals
    assert (totals.llm_calls, totals.input_tokens, totals.output_tokens) == (1, 10, 5)


@st.composite
def random_trees(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = draw(st.integers(1, 40))
    rows = []
    for i in range(n):
        parent = None if i == 0 else f"s{draw(st.integers(0, i - 1))}"
        if draw(st.booleans()) and i and draw(st.integers(0, 9)) == 0:
            parent = "missing"
        elif draw(st.integers(0, 19)) == 0:  # any span, later ones too: parent links may form cycles
            parent = f"s{draw(st.integers(0, n - 1))}"
        start = draw(st.integers(0, 1000))
        rows.append(row(f"s{i}", parent, start, start + draw(st.integers(0, 500))))
    return draw(st.permutations(rows))


@settings(max_examples=150, deadline=None)
@given(random_trees())
def test_every_span_appears_once_children_follow_parents(rows: list[dict[str, Any]]) -> None:
    wf = build_waterfall("t" * 32, rows)
    ids = [s.span_id for s in wf.spans if not s.synthetic]
    assert sorted(ids) == sorted(r["span_id"] for r in rows)
    assert len(wf.spans) - len(ids) == (1 if any(s.orphan for s in wf.spans) else 0)
    position = {s.span_id: i for i, s in enumerate(wf.spans)}
    for s in wf.spans:
        assert 0 <= s.self_time_ms <= s.duration_ms
        for kid in s.children:
            assert position[kid] > position[s.span_id]
            assert next(k for k in wf.spans if k.span_id == kid).depth == s.depth + 1
    assert any(s.critical_path for s in wf.spans)
