"""Decode worker processes never outlive the collector: killed with SIGKILL (as the OOM killer would),
it leaves no orphan worker behind; they price every span as inline decoding does, without genai-prices."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from llmscope_collector.process_memory import GC_GEN0_THRESHOLD
from llmscope_collector.processors.decode_pool import _TASK_BYTES, _TASK_RECORDS, DecodePool, _chunks
from tests import otlp_factory as f

_SCRIPT = """
import sys, time
from llmscope_collector.processors.decode_pool import DecodePool
from tests.collector.durability.helpers import payload

pool = DecodePool(1)
items = [("default", payload([(n + 1).to_bytes(8, "big")])) for n in range(16)]  # enough to use the pool
assert all(not isinstance(r, BaseException) for r in pool.decode(items))
print(pool._results_dir, *pool._pool._processes, flush=True)  # its results directory, the worker pids
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
    """...and remove its results directory (`decode_pool._Results`), which it had no chance to."""
    proc = subprocess.Popen([sys.executable, "-c", _SCRIPT], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        directory, *pids = proc.stdout.readline().split()
        workers = [int(pid) for pid in pids]
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
    assert not os.path.exists(directory), "the killed collector's results directory was left behind"


def test_workers_price_with_the_collectors_price_file_like_inline_decoding(tmp_path: Path) -> None:
    """Pricing runs in the workers: they must load the user's price file, and agree with inline decoding."""
    prices = tmp_path / "prices.json"
    prices.write_text('{"mystery-*": {"input": 2, "output": 8}}')
    now = time.time_ns()
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "mystery-model",
        "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 100,
    }
    items = [
        ("default", _one_span_request(now, attrs))
        for _ in range(16)  # enough records to go to the pool
    ]
    pooled, inline = DecodePool(1, str(prices)), DecodePool(0, str(prices))
    try:
        by_pool, by_inline = pooled.decode(items), inline.decode(items)
        assert pooled.running
    finally:
        pooled.close()
    for a, b in zip(by_pool, by_inline, strict=True):
        assert not isinstance(a, BaseException) and not isinstance(b, BaseException)
        [part_a] = a.partitions.values()
        [part_b] = b.partitions.values()
        assert part_a.spans.equals(part_b.spans)
        row = part_a.spans.select(["cost_usd", "cost_known", "cost_source"]).to_pylist()[0]
        assert row == {"cost_usd": Decimal("0.002800000000"), "cost_known": True, "cost_source": "user:mystery-*"}


_DAY_NS = 86_400 * 10**9
_PRICE_CHANGE_DAY = 20_525  # claude-opus-4-6's dated price in genai-prices changes on this UTC day


def _call(provider: str | None, model: str, start_ns: int, tokens: int = 150_000) -> tuple[int, dict[str, object]]:
    attrs: dict[str, object] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": model,
        "gen_ai.usage.input_tokens": tokens,
        "gen_ai.usage.output_tokens": 900,
        "gen_ai.usage.cache_read.input_tokens": tokens // 3,
    }
    if provider is not None:
        attrs["gen_ai.provider.name"] = provider
    return start_ns, attrs


def test_workers_price_every_kind_of_price_like_inline_decoding_without_loading_genai_prices(tmp_path: Path) -> None:
    """The workers price by the table the collector's price book fills (fixed, tiered and dated prices, user
    prices, unknown and routed models); what only the book can price (a time-of-day price, a dated one within a
    millisecond of midnight) is decoded by the collector. Every stored value is inline decoding's, on the first
    pass (the table still empty) and the next, and a worker never loads genai-prices (nor pydantic)."""
    prices = tmp_path / "prices.json"
    prices.write_text('{"mystery-*": {"input": 2, "output": 8, "cache_read": 0.5}}')
    change = _PRICE_CHANGE_DAY * _DAY_NS
    calls = [
        _call("openai", "gpt-4o-mini", time.time_ns()),
        _call("anthropic", "claude-haiku-5-5", time.time_ns(), 120_000),  # over its tier start
        _call("anthropic", "claude-opus-4-6", change - _DAY_NS // 2),
        _call("anthropic", "claude-opus-4-6", change + _DAY_NS // 2),
        _call("anthropic", "claude-opus-4-6", change - 1000),  # the book's (float rounding at midnight)
        _call("deepseek", "deepseek-chat", time.time_ns()),  # the book's (time-of-day price)
        _call("openai", "mystery-model", time.time_ns()),  # the user's price file
        _call("my-framework", "no-such-model-x", time.time_ns()),
        _call(None, "openai/gpt-4o-mini", time.time_ns()),
    ]
    items = [("default", _one_span_request(start, attrs)) for start, attrs in calls]
    items.append(("default", _spans_request(calls)))
    pooled, inline = DecodePool(1, str(prices)), DecodePool(0, str(prices))
    try:
        by_inline = inline.decode(items)
        for _ in range(2):
            by_pool = pooled.decode(items)
            assert pooled.running
            for a, b in zip(by_pool, by_inline, strict=True):
                assert not isinstance(a, BaseException) and not isinstance(b, BaseException)
                assert a.partitions.keys() == b.partitions.keys()
                for key, part in a.partitions.items():
                    assert part.spans.equals(b.partitions[key].spans)
        worker = pooled.offload(1 << 20, os.getpid)
        maps = Path(f"/proc/{worker}/maps").read_text()
    finally:
        pooled.close()
    assert worker != os.getpid() and "pydantic_core" not in maps
    parts = [part for b in by_inline if not isinstance(b, BaseException) for part in b.partitions.values()]
    sources = {source for part in parts for source in part.spans.column("cost_source").to_pylist()}
    assert {"user:mystery-*", "genai-prices:openai/gpt-4o-mini", "genai-prices:anthropic/claude-opus-4-6"} <= sources
    assert {"genai-prices:deepseek/deepseek-chat", None} <= sources


def _spans_request(calls: list[tuple[int, dict[str, object]]]) -> bytes:
    spans = [f.span(f.new_trace_id(), f.new_span_id(), "chat", now, now + 1, attrs=attrs) for now, attrs in calls]
    return bytes(f.request(spans).SerializeToString())


def _one_span_request(now: int, attrs: dict[str, object]) -> bytes:
    span = f.span(f.new_trace_id(), f.new_span_id(), "chat", now, now + 1, attrs=attrs)
    return bytes(f.request([span]).SerializeToString())


def test_workers_collect_garbage_less_often_than_the_collector() -> None:
    """A worker freezes what its imports built and raises the first GC generation's threshold; the process
    that started it keeps its own settings."""
    pooled = DecodePool(1)
    try:
        threshold = pooled.offload(1 << 20, gc.get_threshold)
        frozen = pooled.offload(1 << 20, gc.get_freeze_count)
    finally:
        pooled.close()
    assert threshold[0] == GC_GEN0_THRESHOLD and threshold[1:] == gc.get_threshold()[1:]
    assert frozen > 10_000  # (pyarrow, protobuf, the decoder's modules)
    assert gc.get_threshold()[0] != GC_GEN0_THRESHOLD


def test_pooled_records_come_back_in_order_and_a_bad_one_fails_alone() -> None:
    """Records go to the workers several to a task: a malformed record is that record's error only,
    and results keep WAL order across tasks (75 records, two workers: two tasks, of 38 and 37)."""
    now = time.time_ns()
    items = [("default", _one_span_request(now + n, {"n": n})) for n in range(75)]
    items[40] = ("default", b"\xff\xff not a protobuf")
    pooled, inline = DecodePool(2), DecodePool(0)
    try:
        by_pool, by_inline = pooled.decode(items), inline.decode(items)
        assert pooled.running
    finally:
        pooled.close()
    assert isinstance(by_pool[40], Exception) and isinstance(by_inline[40], Exception)
    for n, (a, b) in enumerate(zip(by_pool, by_inline, strict=True)):
        if n == 40:
            continue
        assert not isinstance(a, BaseException) and not isinstance(b, BaseException)
        [part_a] = a.partitions.values()
        [part_b] = b.partitions.values()
        assert part_a.spans.equals(part_b.spans)
        assert part_a.spans.column("start_ns").to_pylist() == [now + n]


_SIZES = st.lists(st.integers(0, 3 * _TASK_BYTES) | st.integers(0, 64 * 1024), max_size=2 * _TASK_RECORDS + 8)


@given(sizes=_SIZES, parts=st.integers(1, 8))
def test_a_reads_tasks_keep_its_records_in_order_and_are_one_a_worker_at_most(sizes: list[int], parts: int) -> None:
    """A read goes to `parts` workers in tasks that hold all its records in order; within the record cap, no
    more tasks than workers, nor than `_TASK_BYTES` pieces of its payload (a task costs the collector the
    same whatever its size)."""
    items = [(str(n), bytes(size)) for n, size in enumerate(sizes)]
    chunks = _chunks(items, parts)
    assert [item for chunk in chunks for item in chunk] == items
    assert all(chunks)
    if len(items) <= _TASK_RECORDS:
        assert len(chunks) <= max(1, min(parts, -(-sum(sizes) // _TASK_BYTES)))
    assert all(len(chunk) <= max(_TASK_RECORDS, -(-len(items) // parts)) for chunk in chunks)


@given(
    parts=st.integers(1, 8), extra=st.integers(0, _TASK_RECORDS), size=st.integers(_TASK_BYTES // 4, 3 * _TASK_BYTES)
)
def test_a_read_of_like_records_goes_out_in_one_even_task_a_worker(parts: int, extra: int, size: int) -> None:
    """Records of one size, enough payload for every worker: exactly one task a worker, their record counts
    at most one apart (the ingest bench's reads: 12 requests of ~0.35 MB, two workers, two tasks of 6)."""
    count = min(_TASK_RECORDS, max(parts, -(-parts * _TASK_BYTES // size)) + extra)
    items = [("default", bytes(size))] * count
    lengths = [len(chunk) for chunk in _chunks(items, parts)]
    assert len(lengths) == parts and max(lengths) - min(lengths) <= 1
