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

A task's results go back packed (`storage.batch.DecodedList`: an Arrow IPC stream per schema) and, when
large, through a reused file of a private directory the pool makes in `/dev/shm` rather than the pool's
pipe (`_Results`: the pool's result thread ~2.9 → ~1.5 µs of CPU a span under the ingest bench); a large
task's payloads go to its worker the same way (`_Inputs`: the workers' input ~210 → ~95 µs of CPU a task).
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import pickle
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from llmscope_collector.file_modes import PRIVATE_FILE
from llmscope_collector.processors.decode import DecodedBatch, decode_bytes
from llmscope_collector.processors.decode_worker import init_worker
from llmscope_collector.processors.limits import DEFAULT_LIMITS, SpanLimits
from llmscope_collector.processors.pricing import PricesNeeded, PriceTable
from llmscope_collector.storage.batch import Decoded, DecodedList, PackedResults, pack, unpack

if TYPE_CHECKING:
    import pyarrow as pa

    from llmscope_collector.processors.cost import PriceBook

log = logging.getLogger(__name__)

_POOL_MIN_RECORDS = 8
_POOL_MIN_BYTES = 512 * 1024
_OFFLOAD_MIN_BYTES = 64 * 1024
# A read's records go to the workers in about one task per worker (`_chunks`), none smaller than this much
# payload or this many records: a task costs the collector a pickled call, an input file written, a
# result message, its Arrow streams opened and a future's wake-ups, on its GIL, the same for a 20 KB
# request as for a 2 MB one. One task per worker keeps them all busy (the consumer has several reads in
# flight); more only adds that cost: measured with the ingest bench's reads (12 requests, 4.2 MB) on a pool
# of two workers (reads 3 in flight), the collector's CPU for the pool ~2.2 → ~1.8 µs a span with 2 tasks
# a read instead of 4 (tasks of 1 MB).
_TASK_BYTES = 1024 * 1024
_TASK_RECORDS = 32
# A task's inputs or results of at least this many bytes go through a file (`_Inputs`, `_Results`): a pipe
# holds 64 KiB.
_FILE_MIN_BYTES = 64 * 1024
_FREE = ".free"  # the suffix of a task file its reader has read: the next writer (inputs or results) claims it
_SHM = "/dev/shm"  # where the pool's task files go when it exists (memory, not disk), else the temporary directory
P = ParamSpec("P")
R = TypeVar("R")


@dataclasses.dataclass(frozen=True)
class _WorkerContext:
    """What a worker decodes with: its server's price table (sent with each task), span limits and wire
    decoder (set by `init_worker`)."""

    prices: PriceTable | None = None  # None outside a worker: `decode.default_prices()`
    limits: SpanLimits = DEFAULT_LIMITS
    native: bool = True
    results_dir: str | None = None  # its pool's directory of task files (`_Results`, `_Inputs`); None: all by the pipe


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


def decode_payloads(items: Sequence[tuple[str, bytes]] | ResultsLost, table: TableState | None = None) -> list[Decoded]:
    """One worker task: each item's batch, or the exception that stopped it (so one bad record
    does not fail the others of its task); `table`: the collector's price table, if newer than the worker's;
    `items` a `ResultsLost` when the file they came by could not be read (`_read_inputs`): raised.
    Returned as `_Results`: all the task's tables go back in one buffer, through a file when large."""
    global _worker
    if isinstance(items, ResultsLost):  # its inputs' file could not be read (`_read_inputs`)
        raise items
    if table is not None and (_worker.prices is None or table[0] != _worker.prices.version):
        _worker = dataclasses.replace(_worker, prices=pickle.loads(table[1]))
    out = _Results()
    for project, payload in items:
        try:
            out.append(decode_payload(project, payload))
        except Exception as exc:  # without its traceback, which holds the record's decoded rows until the task ends
            out.append(exc.with_traceback(None))  # (and is not sent back: a pickled exception has none)
    return out


def set_worker_context(limits: SpanLimits, native: bool, results_dir: str | None = None) -> None:
    """This worker's span limits, wire decoder and task files' directory (its initializer:
    `decode_worker.init_worker`); its prices come with its tasks."""
    global _worker
    _worker = _WorkerContext(PriceTable(), limits, native, results_dir)


class _Results(DecodedList):
    """A task's results as a worker sends them back: packed (`DecodedList`), and when large, their streams in
    a file of the pool's results directory, the pipe carrying only its name and the small parts.

    The pool's pipe moves a message 64 KiB at a time, and its result thread reads each piece, then joins
    and copies them, taking the collector's GIL back after every read: measured, ~800 us of that thread's
    CPU per 1.3 MB result (a task of the ingest bench) against ~200 us to read the same bytes from a file
    in one call. Files are reused, not deleted (deleting 1.3 MB of tmpfs costs ~200 us, writing into new
    pages ~600): the collector renames one it has read to `*.free`, and the next worker to write results
    claims it. The directory holds about as many files as results in flight; the pool removes it when it
    closes, and a worker whose collector died without closing it does."""

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        streams, packed = pack(self)
        directory = _worker.results_dir
        sizes = [stream.size for stream in streams]
        if directory is not None and sum(sizes) >= _FILE_MIN_BYTES:
            path = _write_file(directory, streams)
            if path is not None:
                return _read_results, (path, sizes, packed)
        return unpack, ([stream.to_pybytes() for stream in streams], packed)


class ResultsLost(Exception):
    """A task's file could not be read back (its results in the collector, or its inputs in a worker): its
    records are decoded again, by the collector."""


class _Inputs:
    """A task's records as the collector sends them: when large, their payloads in a file of the pool's
    directory (`_write_file`, as `_Results` sends results back), the pipe carrying only its name, the
    projects and the sizes; unpickled (`_read_inputs`), a plain list of `(project, payload)` again.

    By the pipe, the pool's feeder thread pickles a task (a copy of its payloads) and writes it 64 KiB at a
    time, each write waking the worker for a read, and the worker joins the pieces and copies the payloads
    out of them. Measured with the ingest bench's tasks (0.37-1.1 MB) and a task that only takes its
    records (benchmarks/decode_transport.py): the worker's CPU ~210 → ~95 µs a task (~0.25 µs a span less),
    the collector's ~205 → ~190 (the file written in one call instead of the pickle and the pipe writes).
    Written as the feeder thread pickles the task; read, then freed for the next writer, as the worker
    unpickles it: a file it cannot read fails its task (`ResultsLost`) and the collector decodes the records."""

    __slots__ = ("directory", "items")

    def __init__(self, items: Sequence[tuple[str, bytes]], directory: str | None) -> None:
        self.items = items
        self.directory = directory

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        payloads = [payload for _, payload in self.items]
        sizes = [len(payload) for payload in payloads]
        if self.directory is not None and sum(sizes) >= _FILE_MIN_BYTES:
            path = _write_file(self.directory, payloads)
            if path is not None:
                return _read_inputs, (path, [project for project, _ in self.items], sizes)
        return list, (list(self.items),)


def _write_file(directory: str, buffers: Sequence[bytes | pa.Buffer]) -> str | None:
    """`buffers` one after another in a file of the pool's directory (one a reader has freed, else a new one);
    None if it cannot be written (the directory gone with its pool, a full tmpfs): they then go by the pipe.

    A reused file is not truncated to what it now holds (its reader reads the sizes it is sent): inputs and
    results of ~0.4-1.5 MB share the files, and a file cut short then grown again gets its tmpfs pages freed,
    then allocated and zeroed again (measured: writing then reading 1.1 and 0.37 MB alternately in one file,
    ~400 µs a write and read with truncation, ~245 without). A file keeps the largest it held: a few MB for
    the whole directory."""
    path = _claim(directory)
    size = sum(len(buffer) for buffer in buffers)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE)
        try:
            if os.writev(fd, buffers) != size:
                raise OSError(f"short write to {path}")
        finally:
            os.close(fd)
    except OSError:
        _remove(path)
        return None
    return path


def _claim(directory: str) -> str:
    """A fresh name for a file to write (a worker's results, the collector's task inputs): a freed file renamed
    to it when there is one (other processes may claim the same one: the first rename wins)."""
    path = os.path.join(directory, secrets.token_hex(8))
    try:
        entries = [entry.path for entry in os.scandir(directory) if entry.name.endswith(_FREE)]
    except OSError:
        return path
    for free in entries:
        try:
            os.rename(free, path)
        except OSError:
            continue
        return path
    return path


def _read_file(path: str, sizes: Sequence[int]) -> list[bytes]:
    """The buffers `_write_file` wrote to `path`, a bytes object each, the file then freed (renamed `*.free`)
    for the next writer to claim; raises `OSError` if it is gone or not what was written."""
    fd = os.open(path, os.O_RDONLY)
    try:
        buffers = [os.read(fd, size) for size in sizes]  # a call each: a regular file gives all it has
    finally:
        os.close(fd)
    os.rename(path, path + _FREE)
    if [len(buffer) for buffer in buffers] != sizes:
        raise OSError(f"{path}: {sum(map(len, buffers))} bytes of {sum(sizes)}")
    return buffers


def _read_results(path: str, sizes: list[int], packed: PackedResults) -> list[Decoded] | ResultsLost:
    """In the collector (the pool's result thread): the results a worker wrote to `path`; `ResultsLost` if
    they cannot be read (never raised here: an exception while unpickling a result would break the pool)."""
    try:
        return unpack(_read_file(path, sizes), packed)
    except Exception as exc:
        return ResultsLost(f"decode results lost ({exc})")


def _read_inputs(path: str, projects: list[str], sizes: list[int]) -> list[tuple[str, bytes]] | ResultsLost:
    """In a worker, as it unpickles a task: the records the collector wrote to `path`; `ResultsLost` if they
    cannot be read (never raised here: an exception while unpickling a task would break the pool), which
    the task raises back so that the collector decodes its records itself."""
    try:
        return list(zip(projects, _read_file(path, sizes), strict=True))
    except Exception as exc:
        return ResultsLost(f"decode inputs lost ({exc})")


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def results_directory() -> str | None:
    """A new private directory for a pool's task files (large results, `_Results`, and inputs, `_Inputs`), in
    memory where the system has one; None when none can be made (all then goes by the pipe)."""
    if not hasattr(os, "writev"):  # not on Windows
        return None
    base = _SHM if os.path.isdir(_SHM) and os.access(_SHM, os.W_OK) else None
    try:
        return tempfile.mkdtemp(prefix="llmscope-decode-", dir=base)
    except OSError:
        return None


def remove_results_directory(directory: str | None) -> None:
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)


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
        self._results_dir: str | None = None  # the running pool's (`_Results`)
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
            return [_Task(self._send(pool, chunk, state), chunk, state[0]) for chunk in _chunks(items, self._workers)]
        except (BrokenProcessPool, RuntimeError, OSError) as exc:
            self._broken(exc)
            return None

    def _send(
        self, pool: ProcessPoolExecutor, items: Sequence[tuple[str, bytes]], state: TableState
    ) -> Future[list[Decoded]]:
        """A task decoding `items` in a worker, its payloads sent through a file when large (`_Inputs`)."""
        return pool.submit(decode_payloads, _Inputs(items, self._results_dir), state)  # type: ignore[arg-type]

    def _executor(self) -> ProcessPoolExecutor | None:
        """The worker pool, started on first use (None if it cannot start: callers then work inline)."""
        with self._lock:  # the WAL consumer and the OTLP/HTTP threads both submit
            if self._pool is None:
                context = multiprocessing.get_context("spawn")  # fork is unsafe in a process running gRPC
                self._results_dir = results_directory()
                try:
                    self._pool = ProcessPoolExecutor(
                        self._workers,
                        mp_context=context,
                        initializer=init_worker,
                        initargs=(os.getpid(), self._limits, self.native, self._results_dir),
                    )
                except (RuntimeError, OSError) as exc:
                    log.error("decode worker pool cannot start (%s); working inline", exc)
                    remove_results_directory(self._results_dir)
                    return None
            return self._pool

    def results(self, task: _Task) -> list[Decoded]:
        """A task's results in order; if the task itself failed (the pool broke, a result that could
        not be pickled), its records are decoded here instead."""
        try:
            return self._priced(task.items, _received(task.future), task.version)
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
                again = _received(self._send(pool, [items[i] for i in redo], state))
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
            directory, self._results_dir = self._results_dir, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        remove_results_directory(directory)  # a worker still writing sends its results by the pipe

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
            directory, self._results_dir = self._results_dir, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        remove_results_directory(directory)


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


def _received(future: Future[list[Decoded]]) -> list[Decoded]:
    """A task's results; raises `ResultsLost` if its file could not be read back (`_read_results`)."""
    results: list[Decoded] | ResultsLost = future.result()
    if isinstance(results, ResultsLost):
        raise results
    return results


def _large(items: Sequence[tuple[str, bytes]]) -> bool:
    return len(items) >= _POOL_MIN_RECORDS or sum(len(p) for _, p in items) >= _POOL_MIN_BYTES


def _chunks(items: Sequence[tuple[str, bytes]], parts: int) -> list[Sequence[tuple[str, bytes]]]:
    """Consecutive runs of items, in order: at most `parts` runs of about equal payload, each of about
    `_TASK_BYTES` at least (a run ends at the record nearest its share of the payload; the last takes the rest,
    never under half a share), and of at most `_TASK_RECORDS` records, or a `parts`-th of them when more (a run
    also ends there: then there can be more runs)."""
    sizes = [len(payload) for _, payload in items]
    total = sum(sizes)
    step = max(_TASK_BYTES, total / parts)
    most = max(_TASK_RECORDS, -(-len(items) // parts))
    chunks: list[Sequence[tuple[str, bytes]]] = []
    start = done = 0
    for i, size in enumerate(sizes):
        done += size
        share_end = step * (len(chunks) + 1)
        if (done + size / 2 >= share_end and share_end + step / 2 <= total) or i + 1 - start >= most:
            chunks.append(items[start : i + 1])
            start = i + 1
    if start < len(items):
        chunks.append(items[start:])
    return chunks
