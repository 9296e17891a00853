"""Decoding OTLP requests in worker processes, so it does not compete with the receivers for the GIL.

Decoding, normalizing and pricing a span is pure Python (~20-40 µs); done on the consumer thread
it would cap ingest at one core and halve what the gRPC/HTTP threads can acknowledge. Under load
the consumer hands WAL records to a process pool and gets `DecodedBatch`es (Arrow tables: cheap to
send back) in order. Small batches (light traffic) are decoded inline, so an idle collector never
starts a process. If the pool breaks, decoding falls back to inline and the pool is recreated on
the next large batch.

The workers price by a `PriceTable` (plain data, no genai-prices: ~17-26 MB less per worker) that the
collector's `PriceBook` fills as it meets new models and sends with each task; a record whose models
the table does not know yet comes back as `PricesNeeded` and is decoded again once the book has
resolved them (by a worker, with the new table; here, when only the book can price it).
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import pickle
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from llmscope_collector.processors.decode import DecodedBatch, decode_bytes
from llmscope_collector.processors.decode_worker import init_worker
from llmscope_collector.processors.limits import DEFAULT_LIMITS, SpanLimits
from llmscope_collector.processors.pricing import PricesNeeded, PriceTable
from llmscope_collector.storage.batch import Decoded, DecodedList

if TYPE_CHECKING:
    from llmscope_collector.processors.cost import PriceBook

log = logging.getLogger(__name__)

_POOL_MIN_RECORDS = 8
_POOL_MIN_BYTES = 512 * 1024
_OFFLOAD_MIN_BYTES = 64 * 1024
# Records go to the workers in tasks of about this much payload (or this many records): a task
# costs the collector a pickled call, a result message and a future's wake-ups on its GIL, the
# same for a 20 KB request as for a 2 MB one.
_TASK_BYTES = 1024 * 1024
_TASK_RECORDS = 32
P = ParamSpec("P")
R = TypeVar("R")


@dataclasses.dataclass(frozen=True)
class _WorkerContext:
    """What a worker decodes with: its server's price table (sent with each task), span limits and wire
    decoder (set by `init_worker`)."""

    prices: PriceTable | None = None  # None outside a worker: `decode.default_prices()`
    limits: SpanLimits = DEFAULT_LIMITS
    native: bool = True


# A worker process belongs to one pool, hence one server: its initializer sets this once.
_worker = _WorkerContext()


def decode_payload(
    project: str,
    payload: bytes,
    prices: PriceBook | PriceTable | None = None,
    limits: SpanLimits | None = None,
    native: bool | None = None,
) -> DecodedBatch:
    """Raw `ExportTraceServiceRequest` bytes → Arrow tables (runs in a worker process or inline);
    without `prices`/`limits`/`native` (the wire decoder: processors/native.py), the worker's (`set_worker_context`)."""
    use_native = _worker.native if native is None else native
    return decode_bytes(payload, project, prices or _worker.prices, limits or _worker.limits, use_native)


TableState = tuple[int, bytes]
"""A `PriceTable` as sent to the workers: its version and its pickle (made once per version)."""


def decode_payloads(items: Sequence[tuple[str, bytes]], table: TableState | None = None) -> list[Decoded]:
    """One worker task: each item's batch, or the exception that stopped it (so one bad record
    does not fail the others of its task); `table`: the collector's price table, if newer than the worker's.
    Returned as a `DecodedList`: all the task's tables go back in one buffer."""
    global _worker
    if table is not None and (_worker.prices is None or table[0] != _worker.prices.version):
        _worker = dataclasses.replace(_worker, prices=pickle.loads(table[1]))
    out = DecodedList()
    for project, payload in items:
        try:
            out.append(decode_payload(project, payload))
        except Exception as exc:  # without its traceback, which holds the record's decoded rows until the task ends
            out.append(exc.with_traceback(None))  # (and is not sent back: a pickled exception has none)
    return out


def set_worker_context(limits: SpanLimits, native: bool) -> None:
    """This worker's span limits and wire decoder (its initializer: `decode_worker.init_worker`); its prices
    come with its tasks."""
    global _worker
    _worker = _WorkerContext(PriceTable(), limits, native)


class DecodePool:
    """Decodes `(project, payload)` pairs in order; exceptions are returned per item, not raised."""

    def __init__(
        self, workers: int, prices_file: str | None = None, limits: SpanLimits = DEFAULT_LIMITS, native: bool = True
    ) -> None:
        self._workers = workers
        self.native = native  # the native wire decoder where built (processors/native.py), else upb
        self._prices_file = prices_file
        self._limits = limits  # handed to each worker by its initializer, used as is inline
        self._prices: PriceBook | None = None  # the price book of inline decodes and of the workers' table
        self._table = PriceTable()
        self._table_state: TableState = (0, pickle.dumps(self._table))
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def decode(self, items: Sequence[tuple[str, bytes]]) -> list[Decoded]:
        return self.submit(items).results()

    def submit(self, items: Sequence[tuple[str, bytes]]) -> PendingDecode:
        """Start decoding `items`; the results come in order from `results()` (inline ones at once)."""
        if self._workers > 0 and _large(items):
            tasks = self._submit(items)
            if tasks is not None:
                return PendingDecode(self, items, tasks)
        return PendingDecode(self, items, None, [self.inline(project, payload) for project, payload in items])

    @property
    def running(self) -> bool:
        """Whether worker processes are up (they start on the first large batch or offloaded call)."""
        return self._pool is not None

    def offload(self, size: int, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """`fn(*args)` in a worker process when the input is large (`size` bytes), else here; its
        exceptions are raised here either way. For CPU-bound receiver work (OTLP/JSON → protobuf)
        that would otherwise hold the receivers' GIL."""
        if self._workers <= 0 or size < _OFFLOAD_MIN_BYTES:
            return fn(*args, **kwargs)
        pool = self._executor()
        if pool is None:
            return fn(*args, **kwargs)
        try:
            return pool.submit(fn, *args, **kwargs).result()
        except BrokenProcessPool as exc:
            self._broken(exc)
            return fn(*args, **kwargs)

    def inline(self, project: str, payload: bytes) -> Decoded:
        try:
            return decode_payload(project, payload, self._book(), self._limits, self.native)
        except Exception as exc:
            return exc

    def _book(self) -> PriceBook:
        """The collector's price book, loaded on first use (an inline decode, or models the workers ask for)."""
        if self._prices is None:
            from llmscope_collector.processors.cost import PriceBook

            self._prices = PriceBook.from_file(self._prices_file)
        return self._prices

    def _learn(self, keys: frozenset[tuple[str | None, str]]) -> TableState:
        """The workers' table with the book's resolution of `keys` added (pickled again only when it grew)."""
        book = self._book()
        with self._lock:
            if self._table.learn(book, keys):
                self._table_state = (self._table.version, pickle.dumps(self._table))
            return self._table_state

    def _submit(self, items: Sequence[tuple[str, bytes]]) -> list[_Task] | None:
        pool = self._executor()
        if pool is None:
            return None
        state = self._table_state
        try:
            return [_Task(pool.submit(decode_payloads, chunk, state), chunk, state[0]) for chunk in _chunks(items)]
        except (BrokenProcessPool, RuntimeError, OSError) as exc:
            self._broken(exc)
            return None

    def _executor(self) -> ProcessPoolExecutor | None:
        """The worker pool, started on first use (None if it cannot start: callers then work inline)."""
        with self._lock:  # the WAL consumer and the OTLP/HTTP threads both submit
            if self._pool is None:
                context = multiprocessing.get_context("spawn")  # fork is unsafe in a process running gRPC
                try:
                    self._pool = ProcessPoolExecutor(
                        self._workers,
                        mp_context=context,
                        initializer=init_worker,
                        initargs=(os.getpid(), self._limits, self.native),
                    )
                except (RuntimeError, OSError) as exc:
                    log.error("decode worker pool cannot start (%s); working inline", exc)
                    return None
            return self._pool

    def results(self, task: _Task) -> list[Decoded]:
        """A task's results in order; if the task itself failed (the pool broke, a result that could
        not be pickled), its records are decoded here instead."""
        try:
            return self._priced(task.items, task.future.result(), task.version)
        except BrokenProcessPool as exc:
            self._broken(exc)
        except Exception as exc:
            log.warning("decode task of %d record(s) failed (%s); decoding them inline", len(task.items), exc)
        return [self.inline(project, payload) for project, payload in task.items]

    def _priced(self, items: Sequence[tuple[str, bytes]], decoded: list[Decoded], version: int) -> list[Decoded]:
        """`decoded` with each `PricesNeeded` decoded again: by a worker with a table that has grown since
        `version` (the models the book has just resolved), else here, by the book."""
        redo = [i for i, result in enumerate(decoded) if isinstance(result, PricesNeeded)]
        if not redo:
            return decoded
        keys = frozenset(key for i in redo for key in decoded[i].keys)  # type: ignore[union-attr]
        state = self._learn(keys)
        again: list[Decoded] | None = None
        pool = self._pool
        if state[0] != version and pool is not None:
            try:
                again = pool.submit(decode_payloads, [items[i] for i in redo], state).result()
            except BrokenProcessPool as exc:
                self._broken(exc)
            except Exception as exc:
                log.warning("decode task of %d record(s) failed (%s); decoding them inline", len(redo), exc)
        out = list(decoded)
        for n, i in enumerate(redo):
            result = None if again is None else again[n]
            out[i] = self.inline(*items[i]) if result is None or isinstance(result, PricesNeeded) else result
        return out

    def _broken(self, exc: BaseException) -> None:
        log.error("decode worker pool failed (%s); decoding inline until it is restarted", exc)
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


@dataclasses.dataclass(frozen=True)
class _Task:
    future: Future[list[Decoded]]
    items: Sequence[tuple[str, bytes]]
    version: int  # of the price table it was sent with


class PendingDecode:
    """Decodes in flight for one WAL read; lets the consumer write earlier ones meanwhile."""

    def __init__(
        self,
        pool: DecodePool,
        items: Sequence[tuple[str, bytes]],
        tasks: list[_Task] | None,
        done: list[Decoded] | None = None,
    ) -> None:
        self._pool = pool
        self._items = items
        self._tasks = tasks
        self._done = done

    def ready(self) -> bool:
        return self._tasks is None or all(t.future.done() for t in self._tasks)

    def results(self) -> list[Decoded]:
        """Per item, its batch or why it could not be decoded (waits for the workers)."""
        if self._done is None:
            assert self._tasks is not None
            self._done = [decoded for task in self._tasks for decoded in self._pool.results(task)]
        return self._done


def _large(items: Sequence[tuple[str, bytes]]) -> bool:
    return len(items) >= _POOL_MIN_RECORDS or sum(len(p) for _, p in items) >= _POOL_MIN_BYTES


def _chunks(items: Sequence[tuple[str, bytes]]) -> list[Sequence[tuple[str, bytes]]]:
    """Consecutive runs of items of about `_TASK_BYTES` (at most `_TASK_RECORDS`), in order."""
    chunks: list[Sequence[tuple[str, bytes]]] = []
    start = size = 0
    for i, (_, payload) in enumerate(items):
        size += len(payload)
        if size >= _TASK_BYTES or i + 1 - start >= _TASK_RECORDS:
            chunks.append(items[start : i + 1])
            start, size = i + 1, 0
    if start < len(items):
        chunks.append(items[start:])
    return chunks
