"""The dedupe window's memory and CPU per key: the pure-Python `PureKeyWindow` against the C extension.

    python benchmarks/key_window.py [--capacity 250000] [--batch 1000] [--project default]

Memory: each implementation in a child process of its own fills a window of `--capacity` with new span
keys (b"h" + 24 id bytes + the project, as `storage.dedupe.span_keys` makes them) in batches, up to
its peak (1.25x capacity held, just before a roll), then reports the bytes tracemalloc sees
allocated (the window is all that is left) and the RSS growth from before the first key.
CPU: the writer's call per batch (`add_batch` of new keys; a batch in ten repeated as a client
retry), and the content store's (`first_unknown`, then `remember_new` of those), CPU µs per key,
best of `--repeat` passes of a window filled to its steady state, the two alternating.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from llmscope_collector.storage import key_window_native
from llmscope_collector.storage.dedupe import KeyWindow, PureKeyWindow

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _window(kind: str) -> Callable[[int], KeyWindow]:
    if kind == "pure":
        return PureKeyWindow
    if key_window_native.NATIVE is None:
        raise SystemExit("the C extension _key_window is not built (python setup.py build_ext --inplace)")
    return key_window_native.NATIVE


def _keys(n: int, tail: bytes) -> list[bytes]:
    ids = os.urandom(24 * n)
    return [b"h" + ids[i : i + 24] + tail for i in range(0, 24 * n, 24)]


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def memory(kind: str, capacity: int, batch: int, tail: bytes) -> dict[str, float]:
    """In this process: fill a window to its peak, report what it holds (run once per child process)."""
    make = _window(kind)
    rss0 = _rss()
    tracemalloc.start()
    window = make(capacity)
    peak = capacity + -(-capacity // 4) - 1  # four full generations and the current one, one key short of a roll
    while len(window) < peak:
        window.add_batch(_keys(min(batch, peak - len(window)), tail))
    held = len(window)
    traced = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return {"keys_held": held, "traced_mib": traced / 2**20, "rss_growth_mib": (_rss() - rss0) / 2**20}


def _cpu_per_key(run: Callable[[], int], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        keys = run()
        best = min(best, (time.process_time() - start) / keys)
    return best * 1e6


def cpu(capacity: int, batch: int, tail: bytes, repeat: int) -> dict[str, dict[str, float]]:
    kinds = ["pure", "native"] if key_window_native.AVAILABLE else ["pure"]
    batches = [_keys(batch, tail) for _ in range(2 * capacity // batch)]  # new keys: the usual batch
    retried = [b[: batch // 10] + b for b in batches]  # a tenth sent again (a client retry)
    results: dict[str, dict[str, float]] = {kind: {} for kind in kinds}
    for _ in range(2):  # alternating, best kept
        for kind in kinds:
            make = _window(kind)
            for name, data in (("add_batch", batches), ("add_batch_retry", retried)):
                window = make(capacity)

                def writer(window: KeyWindow = window, data: list[list[bytes]] = data) -> int:
                    for keys in data:
                        window.add_batch(keys)
                    return sum(map(len, data))

                got = _cpu_per_key(writer, repeat)
                results[kind][name] = min(results[kind].get(name, got), got)
            window = make(capacity)

            def content(window: KeyWindow = window) -> int:
                for keys in retried:
                    first = window.first_unknown(keys)
                    window.remember_new([k for k, new in zip(keys, first, strict=True) if new])
                return sum(map(len, retried))

            got = _cpu_per_key(content, repeat)
            results[kind]["first_unknown+remember"] = min(results[kind].get("first_unknown+remember", got), got)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--capacity", type=int, default=250_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--project", default="default")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory-of", choices=["pure", "native"], help=argparse.SUPPRESS)  # the child's part
    args = parser.parse_args()
    tail = args.project.encode()
    if args.memory_of:
        print(json.dumps(memory(args.memory_of, args.capacity, args.batch, tail)))
        return
    for kind in ["pure", "native"] if key_window_native.AVAILABLE else ["pure"]:
        argv = [sys.executable, __file__, "--memory-of", kind, "--capacity", str(args.capacity)]
        out = subprocess.run(
            [*argv, "--batch", str(args.batch), "--project", args.project], capture_output=True, text=True, check=True
        )
        got = json.loads(out.stdout)
        print(
            f"memory {kind:6}: {got['keys_held']} keys held: {got['traced_mib']:.1f} MiB traced "
            f"({got['traced_mib'] * 2**20 / got['keys_held']:.0f} B/key), RSS +{got['rss_growth_mib']:.1f} MiB"
        )
    for kind, timings in cpu(args.capacity, args.batch, tail, args.repeat).items():
        print(f"cpu    {kind:6}: " + ", ".join(f"{name} {us:.3f} µs/key" for name, us in timings.items()))


if __name__ == "__main__":
    main()
