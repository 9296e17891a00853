"""Deterministic span store for query benchmarks, in the collector's own layout, written by its own code.

    python benchmarks/gen_store.py --data-dir /tmp/store --spans 1000000 [--seed 1] [--days 30]
    python benchmarks/gen_store.py --data-dir /tmp/store --compact-only   # an existing store, this release's layout

Traces from `otlp_traces` (same seed → same spans) go through the collector's decode
(`decode_request`: normalization, content split, pricing), its Parquet writer (content store) with
the stitcher hook (nested-duplicate marks, trace summary deltas) in flushes of `--flush-rows` spans,
then one compaction pass — what a collector that ingested this traffic and compacted in the
background leaves on disk. Trace start times are spread evenly over `--days` days ending at
`--end` (UTC), so partitions are per day.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from otlp_traces import NS_PER_S, TraceShape, requests

from llmscope_collector.processors.decode import decode_request
from llmscope_collector.processors.stitch import Stitcher
from llmscope_collector.storage.compaction import CompactionOptions, Compactor
from llmscope_collector.storage.dedupe import RecentSpanIds
from llmscope_collector.storage.parquet_writer import ParquetSpanWriter

DEFAULT_END = "2026-11-01"
SPANS_PER_TRACE = 5.5  # average of TraceShape's defaults (measured)
_LSN_PER_DAY = 1 << 32  # each day's writer gets its own WAL-range space, so file names never collide


@dataclasses.dataclass(frozen=True)
class _DayJob:
    data_dir: Path
    seed: int
    day: int
    start_ns: int
    traces: int
    flush_rows: int


def _generate_day(job: _DayJob, fsync: bool = False) -> tuple[int, int]:
    """One day's traces (seeded by seed and day, so the store does not depend on the worker count)."""
    if not fsync:
        os.fsync = _no_fsync  # a worker of a generator: durability of these files does not matter
    stitcher = Stitcher(job.data_dir)
    writer = ParquetSpanWriter(job.data_dir, RecentSpanIds(200_000), hook=stitcher)
    base = lsn = flushed_at = job.day * _LSN_PER_DAY
    for request, _n in requests(job.seed * 100_003 + job.day, job.traces, 20, job.start_ns, 86400.0, TraceShape()):
        writer.add(decode_request(request, "default"), lsn)
        lsn += 1
        if writer.buffered_rows >= job.flush_rows:
            writer.flush(flushed_at, lsn)
            flushed_at = lsn
    writer.flush(flushed_at, max(lsn, base + 1))
    return writer.rows_written, stitcher.deltas_written


def _no_fsync(fd: int) -> None:
    return None


def _compact(data_dir: Path) -> tuple[int, int]:
    stats = Compactor(data_dir, CompactionOptions(), committed_lsn=lambda: 1 << 62).run_once()
    return stats.files_in, stats.files_out


def generate(
    data_dir: Path,
    spans: int,
    *,
    seed: int = 1,
    days: int = 30,
    end: str = DEFAULT_END,
    flush_rows: int = 50_000,
    compact: bool = True,
    workers: int = 2,
) -> dict[str, object]:
    """Write about `spans` spans under `data_dir` (which must not hold spans yet); returns what was written."""
    started = time.perf_counter()
    end_day = dt.datetime.fromisoformat(end).replace(tzinfo=dt.timezone.utc)
    per_day = max(1, round(spans / SPANS_PER_TRACE / days))
    jobs = [
        _DayJob(
            data_dir, seed, d, int((end_day - dt.timedelta(days=days - d)).timestamp()) * NS_PER_S, per_day, flush_rows
        )
        for d in range(days)
    ]
    ctx = multiprocessing.get_context("spawn")
    if workers <= 0:  # in this process (tests); os.fsync is left alone here
        results = [_generate_day(job, fsync=True) for job in jobs]
    else:
        with ctx.Pool(workers) as pool:
            results = pool.map(_generate_day, jobs, chunksize=1)
    generated_s = time.perf_counter() - started
    files = _compact(data_dir) if compact else None
    return {
        "spans": sum(r[0] for r in results),
        "traces": per_day * days,
        "trace_deltas": sum(r[1] for r in results),
        "seed": seed,
        "days": days,
        "end": end,
        "generate_s": round(generated_s, 1),
        "compact_s": round(time.perf_counter() - started - generated_s, 1),
        "compaction_files_in_out": files,
        "bytes": dir_bytes(data_dir),
    }


def dir_bytes(data_dir: Path) -> dict[str, int]:
    """Bytes on disk per dataset (spans, content, traces, ...) under the data dir."""
    out: dict[str, int] = {}
    if not data_dir.is_dir():
        return out
    for child in sorted(data_dir.iterdir()):
        if child.is_dir():
            out[child.name] = sum(
                os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(child) for f in files
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--end", default=DEFAULT_END, help="UTC date the generated time range ends at")
    parser.add_argument("--flush-rows", type=int, default=50_000)
    parser.add_argument("--no-compact", action="store_true")
    parser.add_argument("--workers", type=int, default=2, help="processes (the output does not depend on it)")
    parser.add_argument(
        "--compact-only",
        action="store_true",
        help="only run compaction on an existing store (what a collector of this release does at start: "
        "e.g. span files written with an older row group size are rewritten in the current one)",
    )
    args = parser.parse_args(argv)
    if args.compact_only:
        started = time.perf_counter()
        files = _compact(args.data_dir)
        print(json.dumps({"compaction_files_in_out": files, "compact_s": round(time.perf_counter() - started, 1)}))
        return 0
    if (args.data_dir / "spans").exists():
        parser.error(f"{args.data_dir} already holds spans")
    result = generate(
        args.data_dir,
        args.spans,
        seed=args.seed,
        days=args.days,
        end=args.end,
        flush_rows=args.flush_rows,
        compact=not args.no_compact,
        workers=args.workers,
    )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
