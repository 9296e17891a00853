"""The stitcher's window loops in C (`_stitch_window`) decide exactly as their Python twins.

`stitch._register` and `Stitcher._mark` run in C when the extension is built. The model is the same
stitcher with the extension off (`stitch._native_window = None`): on arbitrary traces, arrival orders,
flush cuts, dates, failed writes and spans sent again, both give the same `llm_dup` marks, the same
trace deltas and `llm_dups` rows and the same count of duplicates; and on arbitrary windows (states,
blobs, boxes) a batch leaves the same window entries, in the same order, with the same states.
"""

from __future__ import annotations

import os
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmscope_collector.processors import stitch
from tests.collector.golden.outputs import MEMORY_FS
from tests.collector.model.test_stitch_packing import _VALUES, FLUSH_PLAN, _run, flush_plan

NATIVE = stitch._native_window
if os.environ.get("LLMSCOPE_REQUIRE_NATIVE") and NATIVE is None:  # CI builds it: a failed build fails
    raise RuntimeError("LLMSCOPE_REQUIRE_NATIVE is set but the C extension _stitch_window is not built")
pytestmark = pytest.mark.skipif(NATIVE is None, reason="the C extension _stitch_window is not built")

_SPAN_IDS = st.sampled_from([None, "", "a", "b", "c", "d"])


@settings(max_examples=60, deadline=None)
@given(**FLUSH_PLAN)
def test_the_stitcher_decides_as_it_does_without_the_extension(
    spans: list[dict[str, Any]], order: Any, cuts: list[int], lost: set[tuple[int, int]], repeat: list[int]
) -> None:
    flushes, dates = flush_plan(spans, order, cuts, repeat)
    with tempfile.TemporaryDirectory(dir=MEMORY_FS) as native_dir:
        native = _run(Path(native_dir), flushes, dates, lost)
    with pytest.MonkeyPatch.context() as patch, tempfile.TemporaryDirectory(dir=MEMORY_FS) as plain_dir:
        patch.setattr(stitch, "_native_window", None)
        plain = _run(Path(plain_dir), flushes, dates, lost)
    assert native == plain


def _window(entries: dict[str, list[tuple[Any, Any]]]) -> dict[str, stitch._Trace]:
    traces = {}
    for trace_id, items in entries.items():
        trace = traces[trace_id] = stitch._Trace(items)
        trace.project, trace.unwritten, trace.packed = "acme", None, None
    return traces


def _entries(traces: dict[str, stitch._Trace]) -> list[Any]:
    """The window's entries in order, each state by identity (as the stitcher compares them)."""

    def held(value: Any) -> Any:
        head = value[0] if type(value) is tuple else value
        return (value, type(head) is int and head in stitch._STATES and any(head is s for s in stitch._STATES))

    return [(trace_id, [(k, held(v)) for k, v in trace.items()]) for trace_id, trace in traces.items()]


@settings(max_examples=300, deadline=None)
@given(
    entries=st.dictionaries(st.sampled_from(["t1", "t2"]), st.lists(st.tuples(_SPAN_IDS, _VALUES), max_size=6)),
    rows=st.lists(st.tuples(st.sampled_from(["t1", "t2"]), _SPAN_IDS, _SPAN_IDS, st.binary(min_size=5, max_size=9))),
    scanned=st.booleans(),
)
def test_a_batch_leaves_the_same_window_with_and_without_the_extension(
    entries: dict[str, list[tuple[Any, Any]]], rows: list[tuple[str, Any, Any, bytes]], scanned: bool
) -> None:
    """Any window (also states no batch leaves, e.g. `_NEW` or a box of `_NEW`), any rows: the same
    window, marks, known spans, errors and parent-scan cache, row by row through `Stitcher._mark_known`."""
    columns = [list(c) for c in zip(*rows, strict=True)] if rows else [[], [], [], []]
    for trace_id in {r[0] for r in rows} - entries.keys():
        entries[trace_id] = []
    outcomes = []
    for native in (NATIVE, None):
        with pytest.MonkeyPatch.context() as patch, tempfile.TemporaryDirectory(dir=MEMORY_FS) as tmp:
            patch.setattr(stitch, "_native_window", native)
            stitcher = stitch.Stitcher(Path(tmp))
            traces = _window(entries)
            if scanned:  # a parent scan cached for each trace: a new box drops it
                stitcher._parents.update((id(t), {}) for t in traces.values())
            try:
                known = stitch._register(traces, columns[0], columns[1])
                outcome: Any = (known, stitcher._mark("acme", traces, *columns), stitcher.dups_marked)
            except Exception as exc:  # (a window no batch leaves may fail): the same error, the same window
                outcome = (type(exc), str(exc))
            cached = sorted(n for n, t in enumerate(traces.values()) if id(t) in stitcher._parents)
            outcomes.append((outcome, _entries(traces), cached, stitcher._pending))
    assert outcomes[0] == outcomes[1]


@given(st.lists(st.tuples(_SPAN_IDS, _VALUES), max_size=8), st.booleans())
def test_a_trace_packs_to_the_same_string(entries: list[tuple[Any, Any]], waiting: bool) -> None:
    """`pack_written` packs as `_Trace.pack` does (same bytes), and only a trace with nothing unwritten."""
    native, plain = _window({"t": entries})["t"], _window({"t": entries})["t"]
    native.unwritten = plain.unwritten = {"x"} if waiting else set()
    NATIVE.pack_written({"t": native})
    if not waiting:
        plain.unwritten = None
        plain.pack()
    assert (native.packed, native.unwritten, dict(native)) == (plain.packed, plain.unwritten, dict(plain))


_KEYS = st.one_of(
    st.sampled_from(["t1", "t2", "t3"]),
    st.tuples(st.sampled_from(["acme", "globex"]), st.sampled_from(["t1", "t2", "t3"])),
)


@settings(max_examples=300, deadline=None)
@given(
    windows=st.lists(st.tuples(_KEYS, st.sampled_from(["acme", "globex"]), st.booleans()), max_size=6),
    trace_ids=st.lists(st.sampled_from(["t1", "t2", "t3", "t4"]), max_size=10),
    project=st.sampled_from(["acme", "globex"]),
)
def test_a_touch_leaves_the_same_windows_with_and_without_the_extension(
    windows: list[tuple[Any, str, bool]], trace_ids: list[str], project: str
) -> None:
    """Any windows (by trace id or (project, trace id), of either project, packed or not): the same traces
    found, in the same order, the same windows in the same LRU order, unpacked and touched alike."""
    outcomes = []
    for native in (NATIVE, None):
        with pytest.MonkeyPatch.context() as patch, tempfile.TemporaryDirectory(dir=MEMORY_FS) as tmp:
            patch.setattr(stitch, "_native_window", native)
            stitcher = stitch.Stitcher(Path(tmp))
            made: OrderedDict[Any, stitch._Trace] = OrderedDict()
            for n, (key, owner, packed) in enumerate(windows):
                trace = made[key] = stitch._Trace.new(owner)
                trace.update({f"s{n}": stitch._NO_PARENT})
                trace.touched = -1.0
                if packed:
                    trace.pack()
            stitcher._windows = made
            found = stitcher._touch(project, trace_ids, 5.0)
            held = {id(t): k for k, t in stitcher._windows.items()}
            outcomes.append((
                [(k, held.get(id(t))) for k, t in found.items()],  # each found window, by where it is held
                [(k, t.project, t.touched, t.packed, dict(t)) for k, t in stitcher._windows.items()],
            ))  # fmt: skip
    assert outcomes[0] == outcomes[1]


_COUNTS = st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.integers(-(2**31) - 2, 2**31 + 1))
_COSTS = st.one_of(st.none(), st.decimals(min_value=-(10**6) + 1, max_value=10**6 - 1, places=12, allow_nan=False))


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.lists(_COUNTS, min_size=len(stitch._TOKEN_FIELDS), max_size=len(stitch._TOKEN_FIELDS)),
            st.one_of(st.none(), st.booleans()),
            _COSTS,
        ),
        min_size=1,
        max_size=12,
    ),
    cut=st.integers(0, 3),
    date_code=st.integers(-(2**31), 2**31 - 1),
)
def test_blobs_are_the_same_bytes_with_and_without_the_extension(
    rows: list[tuple[list[Any], Any, Any]], cut: int, date_code: int
) -> None:
    """Any counts (nulls, beyond int32, negative), cost flags and costs, in sliced and chunked columns (a
    batch has LLM rows: `before_write` returns before without)."""
    columns: dict[str, Any] = {f: [r[0][n] for r in rows] for n, f in enumerate(stitch._TOKEN_FIELDS)}
    columns["cost_known"] = [r[1] for r in rows]
    columns["cost_usd"] = [r[2] for r in rows]
    schema = pa.schema([stitch.SPAN_SCHEMA.field(name) for name in columns])
    table = pa.Table.from_pydict(columns, schema=schema)
    chunks = pa.concat_tables([table.slice(0, cut), table.slice(cut)])  # two chunks (one may be empty)
    table = chunks.slice(min(cut, 1, len(rows) - 1))  # an offset
    native = stitch._blobs(table, date_code)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stitch, "_native_window", None)
        assert native == stitch._blobs(table, date_code)
