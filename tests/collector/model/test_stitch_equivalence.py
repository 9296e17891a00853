"""The compact stitcher window behaves exactly like the per-span records it replaced.

`tests/collector/reference/stitch.py` is the stitcher before the compact window. Random flush
sequences (two projects, two dates, a few traces reusing a few span ids so that parents arrive
before, with and after their children, rows repeat, spans files fail to be written, and the clock
jumps past `window_s` or `max_traces` is tiny) go through both, each on its own data dir. Everything
observable must match: the marked tables, the counters, the trace deltas and `llm_dups` rows each
writes (by partition and WAL range; wall-clock columns dropped), and the window's traces in LRU order.
"""

from __future__ import annotations

import dataclasses
import random
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from llmscope_collector.processors import stitch
from llmscope_collector.storage.layout import wal_range_of
from llmscope_collector.storage.schema import SPAN_SCHEMA
from tests.collector.reference import stitch as ref_stitch

_WINDOW_S = 10.0
_SPAN_IDS = ["s1", "s2", "s3", "s4", "s5", "", None]
_PARENTS = [*_SPAN_IDS, "agent"]  # "agent": a parent that is never an LLM span
_WALL_CLOCK = {"traces": "updated_ns", "llm_dups": "marked_ns"}

_tokens = st.one_of(st.none(), st.integers(-3, 3), st.integers(0, 50_000), st.integers(2**31, 2**40))
_cost = st.one_of(st.none(), st.integers(-(10**15), 10**15).map(lambda n: Decimal(n).scaleb(-12)))


_Identity = tuple[str, str, str | None, str | None]  # project, trace, span and (usual) parent ids


def _identities(rng: random.Random) -> st.SearchStrategy[list[_Identity]]:
    """Per trace, a chain of spans each (mostly) under the one before (so nesting is common)."""
    identities: list[_Identity] = []
    for project, trace_id in (("acme", "t1"), ("acme", "t2"), ("globex", "t1")):
        chain = rng.sample(_SPAN_IDS, rng.randint(0, 5))
        parent = rng.choice([None, "", "agent"])
        for span_id in chain:
            identities.append((project, trace_id, span_id, parent))
            parent = span_id if rng.random() < 0.8 else rng.choice(_PARENTS)
    return st.just(identities)


@st.composite
def _row(draw: st.DrawFn, identity: _Identity) -> dict[str, Any]:
    """A row of a span (now and then under another parent), with fresh numbers."""
    _, trace_id, span_id, parent = identity
    tokens = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")
    return {
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": draw(st.sampled_from([parent] * 24 + _PARENTS)),
        "operation": draw(st.sampled_from(["chat"] * 6 + ["embeddings", "tool", None])),
        "start_ns": draw(st.integers(0, 100)),
        "end_ns": 200,
        "llm_dup": draw(st.sampled_from([None, True, False])),
        **{f: draw(_tokens) for f in (*tokens, "total_tokens")},
        "cost_known": draw(st.sampled_from([True, True, False, None])),
        "cost_usd": draw(_cost),
    }


@dataclasses.dataclass
class _Part:
    key: tuple[str, str]
    table: pa.Table
    written: bool  # False: the span file failed, so no `after_write`
    advance: float  # clock seconds before this partition


@st.composite
def _flushes(draw: st.DrawFn) -> list[list[_Part]]:
    """A scenario: each span arrives once or more, each time in a random flush and partition date.

    The arrangement uses a drawn `Random` (uniform: Hypothesis' own draws favour the first flush)."""
    rng = draw(st.randoms(use_true_random=False))
    count = rng.randint(1, 6)
    rows: list[dict[tuple[str, str], list[dict[str, Any]]]] = [{} for _ in range(count)]
    for identity in draw(_identities(rng)):
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            key = (identity[0], rng.choice(["2025-06-01", "2025-06-02"]))
            rows[rng.randrange(count)].setdefault(key, []).append(draw(_row(identity)))
    for flush in rows:
        for part in flush.values():
            rng.shuffle(part)
    return [
        [
            _Part(
                key,
                _table(part),
                rng.random() < 0.8,
                rng.choice([0.0] * 8 + [1.0, _WINDOW_S - 1, _WINDOW_S, _WINDOW_S + 1]),
            )
            for key, part in flush.items()
        ]
        for flush in rows
    ]


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.table(
        {
            f.name: pa.array([r.get(f.name) for r in rows], f.type)
            if f.name in rows[0]
            else pa.nulls(len(rows), f.type)
            for f in SPAN_SCHEMA
        },
        schema=SPAN_SCHEMA,
    )


def _written(data_dir: Path, dataset: str) -> dict[tuple[str, Any], list[dict[str, Any]]]:
    """Each file of a dataset by partition and WAL range, as rows without the wall-clock column."""
    files: dict[tuple[str, Any], list[dict[str, Any]]] = {}
    for path in sorted((data_dir / dataset).rglob("*.parquet")):
        key = (str(path.parent.relative_to(data_dir)), wal_range_of(path.name))
        assert key not in files
        files[key] = pq.read_table(path).drop_columns([_WALL_CLOCK[dataset]]).to_pylist()
    return files


def _window(stitcher: Any) -> list[tuple[tuple[str, str], float]]:
    """The window's traces as (project, trace id) in LRU order, with their touch times."""
    windows = stitcher._windows.items()
    return [((w.project, key) if isinstance(key, str) else key, w.touched) for key, w in windows]


def _run(flushes: list[list[_Part]], max_traces: int, ref_dir: Path, new_dir: Path) -> int:
    """Drive both stitchers through the flushes, comparing as it goes; the duplicates marked."""
    clock = SimpleNamespace(now=1000.0)
    fake_time = SimpleNamespace(monotonic=lambda: clock.now, time_ns=time.time_ns)
    with mock.patch.object(ref_stitch, "time", fake_time), mock.patch.object(stitch, "time", fake_time):
        ref = ref_stitch.Stitcher(ref_dir, window_s=_WINDOW_S, max_traces=max_traces)
        new = stitch.Stitcher(new_dir, window_s=_WINDOW_S, max_traces=max_traces)
        for n, flush in enumerate(flushes):
            for part in flush:
                clock.now += part.advance
                marked = ref.before_write(part.key, part.table)
                assert new.before_write(part.key, part.table).equals(marked)
                if part.written:
                    table = marked.sort_by([("trace_id", "ascending"), ("start_ns", "ascending")])
                    ref.after_write(part.key, table, n, n + 1)
                    new.after_write(part.key, table, n, n + 1)
                assert (new.dups_marked, new.deltas_written) == (ref.dups_marked, ref.deltas_written)
                assert _window(new) == _window(ref)
            ref.after_flush(n, n + 1)
            new.after_flush(n, n + 1)
    for dataset in _WALL_CLOCK:
        assert _written(new_dir, dataset) == _written(ref_dir, dataset)
    return int(ref.dups_marked)


@settings(max_examples=150, deadline=None)
@given(_flushes(), st.sampled_from([100, 2, 1]))
def test_compact_window_equals_reference(flushes: list[list[_Part]], max_traces: int) -> None:
    with tempfile.TemporaryDirectory() as ref_dir, tempfile.TemporaryDirectory() as new_dir:
        _run(flushes, max_traces, Path(ref_dir), Path(new_dir))


def _llm(span_id: str | None, parent: str | None, tokens: int = 7, known: bool | None = True) -> dict[str, Any]:
    return {"trace_id": "t1", "span_id": span_id, "parent_span_id": parent, "operation": "chat", "start_ns": 1,
            "end_ns": 2, "input_tokens": tokens, "total_tokens": tokens, "cost_known": known,
            "cost_usd": Decimal(tokens).scaleb(-12)}  # fmt: skip


def _dups_after(*flushes: list[tuple[str, list[dict[str, Any]], bool]]) -> tuple[int, list[Any]]:
    """Run (date, rows, written) partitions of project acme through both; dups marked, llm_dups files."""
    parts = [[_Part(("acme", date), _table(rows), written, 0.0) for date, rows, written in f] for f in flushes]
    with tempfile.TemporaryDirectory() as ref_dir, tempfile.TemporaryDirectory() as new_dir:
        marked = _run(parts, 100, Path(ref_dir), Path(new_dir))
        return marked, sorted(_written(Path(new_dir), "llm_dups").items())


_D1, _D2 = "2025-06-01", "2025-06-02"


def test_late_parent_corrects_written_children() -> None:
    children = [_llm("c1", "p", 2**40, None), _llm("c2", "p", 5, False), _llm("c3", "p")]
    marked, files = _dups_after([(_D1, children, True)], [(_D2, [_llm("p", None)], True)])
    assert marked == 3 and len(files[0][1]) == 3


def test_child_keeps_first_date_and_parent_but_takes_new_numbers() -> None:
    again = [_llm("c", "other", 11)]
    marked, files = _dups_after([(_D1, [_llm("c", "p")], True)], [(_D2, again, True)], [(_D2, [_llm("p", None)], True)])
    assert marked == 1 and files[0][0][0] == f"llm_dups/project=acme/date={_D1}"


def test_unwritten_child_is_not_corrected() -> None:
    assert _dups_after([(_D1, [_llm("c", "p")], False)], [(_D1, [_llm("p", None)], True)]) == (0, [])


def test_null_and_empty_parents_match_null_and_empty_span_ids() -> None:
    roots = [_llm("a", None), _llm("b", "")]
    marked, files = _dups_after(
        [(_D1, roots, True)], [(_D1, [_llm(None, "x"), _llm("", "x")], True)], [(_D1, roots, True)]
    )
    assert marked == 2 and not files  # duplicates on their second rows, never corrected


def test_blob_dates_round_trip(tmp_path: Path) -> None:
    """Blobs store a partition date as a day number, or (not in ISO form) as an index: both come back."""
    stitcher = stitch.Stitcher(tmp_path)
    for date in ("2025-06-01", "1677-09-21", "2025-6-1", "20250601", "2025-06-01", "x"):
        assert stitcher._date_of(stitch._HEADER.pack(4, stitcher._date_code(date))) == date
