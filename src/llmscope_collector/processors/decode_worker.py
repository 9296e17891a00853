"""What a decode worker process runs first: the collector's allocator and import settings, before pyarrow.

The pool starts its workers with `spawn`, and a worker imports its initializer's module when it
unpickles it, before calling it. With the initializer in `decode_pool` (which imports pyarrow through
the decoder), a worker loaded pyarrow, and with it numpy and pyarrow's remote filesystems, before
`tune_process_memory` could refuse them: ~20 MB of each worker's RSS (measured: docs/memory.md). So this
module imports nothing but `process_memory` and the standard library; the decoder comes after the tuning.
"""

from __future__ import annotations

import gc
import os
import threading
import time

from llmscope_collector.process_memory import tune_process_memory
from llmscope_collector.processors.limits import DEFAULT_LIMITS, SpanLimits

_PARENT_CHECK_S = 1.0
GC_GEN0_THRESHOLD = 10_000
"""A decode worker's first-generation GC threshold (CPython's default is 700 net container allocations).
Decoding one request holds a few thousand containers at once (each span's attribute dicts, rows, tuples),
all freed by reference counting when the request is done; at 700 the collector ran ~5 times a request
to find no cycles. At 10,000 it does not run in steady state (the bench's requests, `gc.callbacks`:
~4 µs of a ~45 µs decode per span in collections before, none after)."""


def init_worker(parent_pid: int, limits: SpanLimits = DEFAULT_LIMITS, native: bool = True) -> None:
    """Worker initializer: allocator and import settings, then the collector's span limits and wire decoder
    (its prices come with its tasks: `pricing.PriceTable`), and exit when the collector is gone."""
    tune_process_memory()
    from llmscope_collector.processors import decode_pool  # pyarrow: only now

    decode_pool.set_worker_context(limits, native)
    tune_gc()
    exit_with_parent(parent_pid)


def tune_gc() -> None:
    """Fewer collections in a decode worker: what the imports built is moved out of the collector's
    generations (`gc.freeze`: never garbage, yet traversed by every full collection), and the first
    generation is collected at `GC_GEN0_THRESHOLD` net allocations, not 700."""
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, older, oldest)


def exit_with_parent(parent_pid: int) -> None:
    """End this worker when the collector is gone, even after a SIGKILL (or the OOM killer), which
    gives the pool no chance to shut its workers down."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(_PARENT_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch, name="llmscope-parent-watch", daemon=True).start()
