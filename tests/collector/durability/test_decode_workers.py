"""Decode worker processes never outlive the collector: killed with SIGKILL (as the OOM killer would),
it leaves no orphan worker behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

_SCRIPT = """
import sys, time
from llmscope_collector.processors.decode_pool import DecodePool
from tests.collector.durability.helpers import payload

pool = DecodePool(1)
items = [("default", payload([(n + 1).to_bytes(8, "big")])) for n in range(16)]  # enough to use the pool
assert all(not isinstance(r, BaseException) for r in pool.decode(items))
print(*pool._pool._processes, flush=True)  # the worker pids
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead too
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[-1][:1] != "Z"
    except FileNotFoundError:
        return False


def test_workers_exit_when_the_collector_is_killed() -> None:
    proc = subprocess.Popen([sys.executable, "-c", _SCRIPT], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        workers = [int(pid) for pid in proc.stdout.readline().split()]
        assert workers and all(_alive(pid) for pid in workers)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [pid for pid in workers if _alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, "decode workers outlived the killed collector"
