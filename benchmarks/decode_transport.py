"""CPU of sending decode tasks' records to the worker processes, by the pool's pipe and by a file.

    python benchmarks/decode_transport.py [--rounds 6] [--passes 10]

A real pool of two workers (the decode pool's initializer and task files' directory) is sent the ingest
bench's requests (`ingest.build_templates`) four at a time in tasks of three and one (as the decode pool cut
them when this was measured, a task of ~1 MB then the rest: ~1.1 and ~0.37 MB); each task only takes its
records and returns their size, so what is measured is the transport: the records as a list (pickled and
written to the pipe by the pool's feeder thread) or as `decode_pool._Inputs` (written to a file, its name by
the pipe). Rounds alternate the two routes; reported per round: the workers' CPU (their threads' on-CPU time,
from /proc) and this process's, per task.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "src"))

from ingest import build_templates, process_tree  # noqa: E402

from llmscope_collector.process_memory import tune_gc, tune_process_memory  # noqa: E402


def take(items: Sequence[tuple[str, bytes]] | BaseException) -> int:
    """The task: its records' size (an input file it could not read fails it, as `decode_payloads` does)."""
    if isinstance(items, BaseException):
        raise items
    return sum(len(payload) for _, payload in items)


def _sent(route: str, task: Sequence[tuple[str, bytes]], directory: str | None) -> Sequence[tuple[str, bytes]]:
    """`task` as the route sends it: a list (all by the pipe) or `_Inputs` (its payloads by a file)."""
    from llmscope_collector.processors.decode_pool import _Inputs

    return list(task) if route == "pipe" else _Inputs(task, directory)  # type: ignore[return-value]


def _workers_cpu() -> float:
    """On-CPU seconds of this process's children (`ingest.process_tree`), every thread, at ns resolution
    (/proc/<pid>/task/*/schedstat: a task of this bench takes less than the clock ticks `tree_cpu_s` counts)."""
    total = 0
    for pid in process_tree(os.getpid())[1:]:
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/schedstat") as fh:
                    total += int(fh.read().split()[0])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6, help="rounds, alternately by the pipe and by files")
    parser.add_argument("--passes", type=int, default=10, help="passes over the 32 requests per round")
    args = parser.parse_args()
    tune_process_memory()
    from llmscope_collector.processors import decode_pool
    from llmscope_collector.processors.decode_worker import init_worker
    from llmscope_collector.processors.limits import DEFAULT_LIMITS

    directory = decode_pool.results_directory()
    pool = ProcessPoolExecutor(
        2,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=init_worker,
        initargs=(os.getpid(), DEFAULT_LIMITS, True, directory),
    )
    tune_gc()
    payloads, _, _ = build_templates(32, 40, 1)
    items = [("default", payload) for payload in payloads]
    tasks = [chunk for i in range(0, len(items), 4) for chunk in (items[i : i + 3], items[i + 3 : i + 4])]
    try:
        list(pool.map(take, [_sent("files", task, directory) for task in tasks]))  # workers started, files made
        for n in range(args.rounds):
            route = ("pipe", "files")[n % 2]
            workers, own = _workers_cpu(), _own_cpu()
            for _ in range(args.passes):
                for future in [pool.submit(take, _sent(route, task, directory)) for task in tasks]:
                    future.result()
            time.sleep(0.05)  # the workers' last wake-ups
            count = args.passes * len(tasks)
            workers, own = _workers_cpu() - workers, _own_cpu() - own
            per_task = f"workers {1e6 * workers / count:6.0f} µs/task, collector {1e6 * own / count:6.0f} µs/task"
            print(f"{route:5s}: {per_task}")
    finally:
        pool.shutdown()
        decode_pool.remove_results_directory(directory)


if __name__ == "__main__":
    main()
