"""CPU per span of the WAL consumer thread's own work, in-process: `ParquetSpanWriter.add` + `flush`.

    python benchmarks/writer_thread.py [--requests 200] [--repeat 5] [--flush-rows 10000] [--out DIR] [--inputs FILE]
                                       [--profile FILE]

The ingest bench's requests (`ingest.build_templates`, each made unique as its senders do) are decoded
once with the native decoder and pickled; each pass unpickles them and ships them as the decode pool does
(`DecodedList`, 32 a task: the tables read zero-copy from one stream per schema, their sizes known; not
timed) and feeds them, in order, to a fresh writer with the collector's stitcher hook, content
store and dedupe window over a temp data dir, flushing every 10,000 spans as the consumer does
(`--flush-rows`: the consumer's `flush_rows`).
Reported: this thread's CPU time per span (best of `--repeat` passes; the Parquet encoding and the
Arrow kernels count, fsync waits do not), with the server's garbage-collector settings (`tune_gc`), and
of it the flushes' (`ParquetSpanWriter.flush`: what the consumer's flush thread does) per flush and per span.
A flush's fixed cost (what it costs whatever its size) is the difference of the per-flush CPU of two
`--flush-rows` over the difference of their flushes' spans. `--profile FILE` saves cProfile's stats of
the last pass's flushes (`python -m pstats FILE`).
`--out DIR` keeps the last pass's files, e.g. to compare the
tables two revisions write: the requests carry the current time, so give both `--inputs FILE` (the
pickled requests, made and saved there by the first run, read by the next), and their span files are
then equal byte for byte (content and delta files differ only in their wall-clock stamps).
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import pickle
import sys
import tempfile
import time
from multiprocessing.reduction import ForkingPickler
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from ingest import build_templates  # noqa: E402
from otlp_traces import CONTENT_MARKER, TRACE_MARKER  # noqa: E402

from llmscope_collector.process_memory import tune_gc  # noqa: E402
from llmscope_collector.processors.decode import decode_bytes, default_prices  # noqa: E402
from llmscope_collector.processors.stitch import Stitcher  # noqa: E402
from llmscope_collector.storage.batch import DecodedList  # noqa: E402
from llmscope_collector.storage.dedupe import RecentSpanIds  # noqa: E402
from llmscope_collector.storage.parquet_writer import ParquetSpanWriter  # noqa: E402

FLUSH_ROWS = 10_000  # the consumer's default `flush_rows`
TASK_RECORDS = 32  # a decode task's records (`decode_pool._TASK_RECORDS`; the bench's are ~40 KB)
WINDOW = 250_000  # the default dedupe window (`Settings.dedupe_window_spans`)


def decoded_requests(count: int, templates: int = 32, seed: int = 3) -> list[bytes]:
    """`count` unique requests of the ingest bench, decoded and pickled (as a worker returns them)."""
    protos, _, _ = build_templates(templates, 40, seed)
    prices = default_prices()
    out = []
    for n in range(1, count + 1):
        unique = n.to_bytes(8, "big")
        body = protos[(n - 1) % len(protos)].replace(TRACE_MARKER, unique)
        body = body.replace(CONTENT_MARKER.encode(), unique.hex().encode())
        out.append(pickle.dumps(decode_bytes(body, "default", prices)))
    return out


@dataclasses.dataclass
class Pass:
    """One pass's thread CPU seconds (all; of the flushes), its spans and its flushes."""

    cpu: float
    flush_cpu: float
    spans: int
    flushes: int


def one_pass(
    pickled: list[bytes], data_dir: Path, flush_rows: int = FLUSH_ROWS, profile: cProfile.Profile | None = None
) -> Pass:
    """Add and flush every request into a fresh writer (`profile`: enabled around the flushes only)."""
    stitcher = Stitcher(data_dir)
    writer = ParquetSpanWriter(data_dir, RecentSpanIds(WINDOW), hook=stitcher)
    requests = [pickle.loads(p) for p in pickled]
    batches = [
        batch
        for n in range(0, len(requests), TASK_RECORDS)
        for batch in pickle.loads(ForkingPickler.dumps(DecodedList(requests[n : n + TASK_RECORDS])))
    ]
    spans = start = flushes = 0
    flush_cpu = 0.0

    def flush(end: int) -> None:
        nonlocal flush_cpu, flushes
        if profile is not None:
            profile.enable()
        began = time.thread_time()
        writer.flush(start, end)
        flush_cpu += time.thread_time() - began
        if profile is not None:
            profile.disable()
        flushes += 1

    began = time.thread_time()
    for lsn, batch in enumerate(batches):
        spans += writer.add(batch, lsn)
        if writer.buffered_rows >= flush_rows:
            flush(lsn + 1)
            start = lsn + 1
    flush(len(batches))
    return Pass(time.thread_time() - began, flush_cpu, spans, flushes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200, help="requests of 40 traces (~217 spans each)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, help="write the last pass here (an empty or new directory)")
    parser.add_argument("--inputs", type=Path, help="the pickled requests: read if the file exists, else saved there")
    parser.add_argument("--flush-rows", type=int, default=FLUSH_ROWS, help="flush once this many spans are buffered")
    parser.add_argument("--profile", type=Path, help="save cProfile's stats of the last pass's flushes here")
    args = parser.parse_args(argv)
    if args.inputs is not None and args.inputs.exists():
        pickled = pickle.loads(args.inputs.read_bytes())
    else:
        pickled = decoded_requests(args.requests)
        if args.inputs is not None:
            args.inputs.write_bytes(pickle.dumps(pickled))
    tune_gc()  # as `llmscope serve` runs once started: without it, collections the server does not make count here
    passes = []
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            last = i == args.repeat - 1
            data_dir = args.out if last and args.out is not None else Path(tmp)
            data_dir.mkdir(parents=True, exist_ok=True)
            profile = cProfile.Profile(time.thread_time) if last and args.profile is not None else None
            passes.append(one_pass(pickled, data_dir, args.flush_rows, profile))
            if profile is not None:
                profile.dump_stats(str(args.profile))
    best = min(passes, key=lambda p: p.cpu)
    flushes = min(passes, key=lambda p: p.flush_cpu)
    print(
        f"{best.spans} spans: {best.cpu / best.spans * 1e6:.2f} us CPU a span on the writer's thread (add + flush,"
        f" best of {args.repeat}); the flushes' {flushes.flush_cpu / flushes.spans * 1e6:.2f} us a span,"
        f" {flushes.flush_cpu / flushes.flushes * 1e3:.2f} ms a flush ({flushes.flushes} of ~{args.flush_rows} rows)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
