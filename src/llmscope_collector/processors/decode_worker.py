"""What a decode worker process runs first: the collector's allocator and import settings, before pyarrow.

The pool starts its workers with `spawn`, and a worker imports its initializer's module when it
unpickles it, before calling it. With the initializer in `decode_pool` (which imports pyarrow through
the decoder), a worker loaded pyarrow, and with it numpy and pyarrow's remote filesystems, before
`tune_process_memory` could refuse them: ~20 MB of each worker's RSS (measured: docs/memory.md). So this
module imports nothing but `process_memory` and the standard library; the decoder comes after the tuning.
"""

from __future__ import annotations

import os
import shutil
import threading
import time

from llmscope_collector.process_memory import refuse_openssl_hashes, tune_gc, tune_process_memory
from llmscope_collector.processors.limits import DEFAULT_LIMITS, SpanLimits

_PARENT_CHECK_S = 1.0


def init_worker(
    parent_pid: int, limits: SpanLimits = DEFAULT_LIMITS, native: bool = True, results_dir: str | None = None
) -> None:
    """Worker initializer: allocator and import settings (no OpenSSL hashes either), then the collector's span
    limits, wire decoder and directory of task files, large inputs and results (its prices come with its tasks:
    `pricing.PriceTable`), and exit when the collector is gone."""
    tune_process_memory()
    refuse_openssl_hashes()  # before `decode_pool` imports `secrets` (hence hashlib): libcrypto stays unmapped
    from llmscope_collector.processors import decode_pool  # pyarrow: only now

    decode_pool.set_worker_context(limits, native, results_dir)
    tune_gc()
    exit_with_parent(parent_pid, results_dir)


def exit_with_parent(parent_pid: int, results_dir: str | None = None) -> None:
    """End this worker when the collector is gone, even after a SIGKILL (or the OOM killer), which
    gives the pool no chance to shut its workers down (nor to remove its task files' directory: done here)."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(_PARENT_CHECK_S)
        if results_dir is not None:
            shutil.rmtree(results_dir, ignore_errors=True)
        os._exit(0)

    threading.Thread(target=watch, name="llmscope-parent-watch", daemon=True).start()
