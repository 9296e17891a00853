"""The stitcher's per-trace window: CPU per LLM span and memory held, current vs a git revision's.

Feeds the same realistic flushes through `llmscope_collector.processors.stitch` (and with `--baseline
REV`, stitch.py as committed at REV: `4ebbcfb~1` is the stitcher before the compact window), each on
its own temporary data dir:
50k traces over two projects, each an agent root, 6 tool spans and 5 LLM spans (3 calls under the
agent, 2 of them with the client library's nested span under them); 30k spans per flush, a trace's
spans split over two consecutive flushes, 5% of the nested spans one flush ahead of their parent (so
they are written, then corrected). Reports, per LLM span:

* `hook`: before_write + after_write + after_flush as the writer calls them (trace deltas and llm_dups
  Parquet files written to tmpfs/disk included);
* `window`: the same with the delta computation stubbed out (what the window bookkeeping costs);
* `memory`: bytes tracemalloc sees held by the stitcher after all flushes (50k traces remembered,
  the default `max_traces`), divided by the LLM spans remembered.

Run: `python -m benchmarks.stitch_window [--traces N] [--repeat R] [--baseline REV]` (best of R runs;
~35 s at the defaults with a baseline).
"""

from __future__ import annotations

import argparse
import gc
import random
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from benchmarks.baseline import module_at

from llmscope_collector.processors import stitch
from llmscope_collector.storage.schema import SPAN_SCHEMA

Flush = list[tuple[tuple[str, str], pa.Table]]
_SPANS_PER_FLUSH = 30_000
_DATE = "2025-06-01"


def _hex(rng: random.Random, digits: int) -> str:
    return f"{rng.getrandbits(digits * 4):0{digits}x}"


def _trace_rows(rng: random.Random) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One trace's spans as (first part, second part): the second goes to the next flush."""
    trace_id = _hex(rng, 32)
    root = _hex(rng, 16)

    def span(parent: str | None, operation: str | None, **fields: Any) -> dict[str, Any]:
        return {
            "trace_id": trace_id,
            "span_id": _hex(rng, 16),
            "parent_span_id": parent,
            "operation": operation,
            "name": operation or "tool",
            "start_ns": rng.getrandbits(40),
            **fields,
        }

    def llm(parent: str) -> dict[str, Any]:
        inp, out = rng.randint(200, 30_000), rng.randint(20, 2_000)
        known = rng.random() < 0.9
        return span(
            parent,
            "chat",
            input_tokens=inp,
            output_tokens=out,
            total_tokens=inp + out,
            cache_read_tokens=rng.choice([0, 0, rng.randint(0, inp)]),
            cache_write_tokens=0,
            reasoning_tokens=0,
            cost_known=known,
            cost_usd=Decimal(rng.randint(1, 10**9)).scaleb(-12) if known else None,
        )

    first: list[dict[str, Any]] = [span(None, None), *(span(root, None) for _ in range(3))]
    first[0]["span_id"] = root
    second: list[dict[str, Any]] = [span(root, None) for _ in range(3)]
    for n in range(3):
        call = llm(root)
        nested = llm(call["span_id"])
        if n < 2 and rng.random() < 0.05:  # the nested span a flush ahead of its parent: a late dup
            first.append(nested)
            second.append(call)
        elif n == 0:
            first += [call, nested]
        elif n == 1:
            first.append(call)
            second.append(nested)
        else:
            second.append(call)
    return first, second


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    present = set().union(*rows)
    columns = {
        field.name: pa.array([r.get(field.name) for r in rows], field.type)
        if field.name in present
        else pa.nulls(len(rows), field.type)
        for field in SPAN_SCHEMA
    }
    return pa.table(columns, schema=SPAN_SCHEMA)


def realistic_flushes(traces: int, seed: int = 1) -> list[Flush]:
    """`traces` traces over two projects as writer flushes of ~30k spans each."""
    rng = random.Random(seed)
    flushes: list[Flush] = []
    current: dict[str, list[dict[str, Any]]] = {}
    carried: dict[str, list[dict[str, Any]]] = {}
    size = 0
    for n in range(traces):
        project = ("acme", "globex")[n % 2]
        first, second = _trace_rows(rng)
        current.setdefault(project, []).extend(first)
        carried.setdefault(project, []).extend(second)
        size += len(first) + len(second)
        if size >= _SPANS_PER_FLUSH or n == traces - 1:
            flushes.append([((p, _DATE), _table(rows)) for p, rows in current.items()])
            current, carried, size = carried, {}, 0
    if any(current.values()):
        flushes.append([((p, _DATE), _table(rows)) for p, rows in current.items() if rows])
    return flushes


def _feed(stitcher: Any, flushes: list[Flush]) -> float:
    """Seconds spent in the hook for all flushes, called as `ParquetSpanWriter.flush` does."""
    spent = 0.0
    for n, flush in enumerate(flushes):
        for key, table in flush:
            t0 = time.perf_counter()
            marked = stitcher.before_write(key, table)
            spent += time.perf_counter() - t0
            written = marked.sort_by([("trace_id", "ascending"), ("start_ns", "ascending")])
            t0 = time.perf_counter()
            stitcher.after_write(key, written, n, n + 1)
        stitcher.after_flush(n, n + 1)
        spent += time.perf_counter() - t0
    return spent


@contextmanager
def _no_deltas(module: ModuleType) -> Iterator[None]:
    """The module's trace delta computation replaced by an empty table (bookkeeping cost only)."""
    original = module.trace_deltas
    empty = pa.table({f.name: pa.array([], f.type) for f in stitch.TRACE_DELTA_SCHEMA})
    module.trace_deltas = lambda *args, **kwargs: empty  # (any signature a revision's hook calls it with)
    try:
        yield
    finally:
        module.trace_deltas = original


def _timed(make: Callable[[Path], Any], flushes: list[Flush], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            stitcher = make(Path(tmp))
            gc.collect()
            best = min(best, _feed(stitcher, flushes))
    return best


def _held(make: Callable[[Path], Any], flushes: list[Flush]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            stitcher = make(Path(tmp))
            _feed(stitcher, flushes)
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert len(stitcher._windows) > 0
        return held


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--traces", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--baseline", metavar="REV", help="also feed stitch.py as committed at this git revision")
    args = parser.parse_args(argv)
    flushes = realistic_flushes(args.traces)
    llm_spans = sum(pc.sum(stitch.llm_mask(t)).as_py() for f in flushes for _, t in f)
    spans = sum(t.num_rows for f in flushes for _, t in f)
    print(f"{len(flushes)} flushes, {spans} spans, {llm_spans} LLM spans, {args.traces} traces")
    modules = [("current", stitch)]
    if args.baseline:
        modules.insert(0, (args.baseline, module_at(args.baseline, "src/llmscope_collector/processors/stitch.py")))
    for label, module in modules:
        make: Callable[[Path], Any] = module.Stitcher
        hook = _timed(make, flushes, args.repeat)
        with _no_deltas(module):
            window = _timed(make, flushes, args.repeat)
            held = _held(make, flushes)
        print(
            f"{label:>9}: hook {hook / llm_spans * 1e6:6.2f} us/LLM span, window {window / llm_spans * 1e6:6.2f}"
            f" us/LLM span, memory {held / 2**20:6.1f} MiB = {held / llm_spans:5.0f} B/LLM span"
        )


if __name__ == "__main__":
    main()
