"""A packed trace window is the window it was: the stitcher decides exactly as if it never packed.

Between flushes the stitcher holds each trace whose spans are all written as one string
(`stitch._Trace.pack`). The model is the same stitcher with packing turned off: on arbitrary traces,
arrival orders, flush cuts, dates, failed writes and spans sent again, both give the same `llm_dup` marks, the same
trace deltas and `llm_dups` rows, and the same count of duplicates.
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmscope_collector.processors import stitch
from llmscope_collector.storage.layout import LLM_DUPS_DIR, TRACES_DIR, wal_range_of
from tests.collector.golden.outputs import MEMORY_FS
from tests.collector.model.test_stitch import _DATES, _table, _traces

_IDS = st.one_of(st.none(), st.text(max_size=20))
_BLOBS = st.binary(min_size=1, max_size=64)
_HEADS = st.one_of(st.sampled_from(stitch._STATES), _BLOBS)
_VALUES = st.one_of(
    st.sampled_from(stitch._STATES),
    _BLOBS,
    st.tuples(_HEADS, st.lists(st.text(max_size=20), max_size=5)).map(lambda box: (box[0], *box[1])),
)


@given(st.lists(st.tuples(_IDS, _VALUES), max_size=12))
def test_a_packed_trace_unpacks_to_the_same_entries_in_order_with_the_same_states(
    entries: list[tuple[Any, Any]],
) -> None:
    trace = stitch._Trace(entries)
    trace.project, trace.unwritten, trace.packed = "acme", None, None
    before = list(trace.items())
    trace.pack()
    assert len(trace) == 0 and trace.packed is not None
    trace.unpack()
    assert trace.packed is None
    after = list(trace.items())
    assert after == before
    for (_, old), (_, new) in zip(before, after, strict=True):  # states are compared by identity
        old_head, new_head = (old[0], new[0]) if type(old) is tuple else (old, new)
        assert (type(old_head) is stitch._State) == (type(new_head) is stitch._State)
        if type(old_head) is stitch._State:
            assert new_head is old_head


def _run(data_dir: Path, flushes: list[list[dict[str, Any]]], dates: dict[str, str], lost: set[tuple[int, int]]) -> Any:
    """The flushes through a stitcher as the writer calls it (the partitions in `lost` are not written);
    every output: rows as marked, the deltas and llm_dups written, the duplicates counted."""
    stitcher = stitch.Stitcher(data_dir)
    marks: list[Any] = []
    for n, flush in enumerate(flushes):
        for d, date in enumerate(_DATES):
            part = [s for s in flush if dates[s["span_id"]] == date]
            if not part:
                continue
            marked = stitcher.before_write(("acme", date), _table(part))
            marks.append(marked.column("llm_dup").to_pylist())
            if (n, d) not in lost:
                stitcher.after_write(("acme", date), marked, n, n + 1)
        stitcher.after_flush(n, n + 1)
    written = {}
    for name, clock in ((TRACES_DIR, "updated_ns"), (LLM_DUPS_DIR, "marked_ns")):
        paths = sorted((data_dir / name).rglob("*.parquet"))
        written[name] = [
            (p.parent.relative_to(data_dir), wal_range_of(p.name), pq.read_table(p).drop_columns([clock]).to_pylist())
            for p in paths
        ]
    return marks, written, stitcher.dups_marked


FLUSH_PLAN = {
    "spans": _traces(),
    "order": st.randoms(use_true_random=False),
    "cuts": st.lists(st.integers(0, 30), max_size=4),
    "lost": st.sets(st.tuples(st.integers(0, 5), st.integers(0, 1)), max_size=2),
    "repeat": st.lists(st.integers(0, 30), max_size=6),
}
"""The draws of a stitcher run (`flush_plan`; `lost`: the (flush, file) writes that fail, for `_run`)."""


def flush_plan(
    spans: list[dict[str, Any]], order: Any, cuts: list[int], repeat: list[int]
) -> tuple[list[list[dict[str, Any]]], dict[str, str]]:
    """The spans in `order`'s arrival order cut into flushes at `cuts`, then a flush of `repeat`'s spans sent
    again (packed by then), and each span's partition date."""
    arrival = list(spans)
    order.shuffle(arrival)
    bounds = [0, *sorted(min(c, len(arrival)) for c in cuts), len(arrival)]
    flushes = [arrival[a:b] for a, b in itertools.pairwise(bounds)]
    flushes.append([spans[i % len(spans)] for i in repeat] if spans else [])
    return flushes, {s["span_id"]: order.choice(_DATES) for s in spans}


@settings(max_examples=40, deadline=None)
@given(**FLUSH_PLAN)
def test_the_stitcher_decides_as_it_would_without_packing(
    spans: list[dict[str, Any]], order: Any, cuts: list[int], lost: set[tuple[int, int]], repeat: list[int]
) -> None:
    flushes, dates = flush_plan(spans, order, cuts, repeat)
    with tempfile.TemporaryDirectory(dir=MEMORY_FS) as packed_dir:
        packed = _run(Path(packed_dir), flushes, dates, lost)
    with pytest.MonkeyPatch.context() as patch, tempfile.TemporaryDirectory(dir=MEMORY_FS) as plain_dir:
        patch.setattr(stitch._Trace, "pack", lambda self: None)
        patch.setattr(stitch, "_native_window", None)  # (its pack loop packs without `_Trace.pack`)
        plain = _run(Path(plain_dir), flushes, dates, lost)
    assert packed == plain
