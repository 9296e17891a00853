"""Decoding OTLP requests in worker processes, so it does not compete with the receivers for the GIL.

Decoding a span into columns is pure Python (~15-30 µs); done on the consumer thread it halves
what the gRPC/HTTP threads can acknowledge. Under load the consumer hands whole WAL batches to a
process pool and gets `DecodedBatch`es back in order (unpickling costs ~1 µs per span). Small
batches (light traffic) are decoded inline, so an idle collector never starts a process. If the
pool breaks, decoding falls back to inline and the pool is recreated on the next large batch.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from llmscope_collector.processors.decode import DecodedBatch, decode_request

log = logging.getLogger(__name__)

_POOL_MIN_RECORDS = 8
_POOL_MIN_BYTES = 512 * 1024


def decode_payload(project: str, payload: bytes) -> DecodedBatch:
    """Raw `ExportTraceServiceRequest` bytes → columns (runs in a worker process or inline)."""
    request = ExportTraceServiceRequest()
    request.ParseFromString(payload)
    return decode_request(request, project)


Decoded = DecodedBatch | BaseException
_PARENT_CHECK_S = 1.0


def exit_with_parent(parent_pid: int) -> None:
    """Worker initializer: end this worker when the collector is gone, even after a SIGKILL (or the
    OOM killer), which gives the pool no chance to shut its workers down."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(_PARENT_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch, name="llmscope-parent-watch", daemon=True).start()


class DecodePool:
    """Decodes `(project, payload)` pairs in order; exceptions are returned per item, not raised."""

    def __init__(self, workers: int) -> None:
        self._workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def decode(self, items: Sequence[tuple[str, bytes]]) -> list[Decoded]:
        if self._workers > 0 and _large(items):
            futures = self._submit(items)
            if futures is not None:
                return [self._result(future, item) for future, item in zip(futures, items, strict=True)]
        return [_inline(project, payload) for project, payload in items]

    def _submit(self, items: Sequence[tuple[str, bytes]]) -> list[Future[DecodedBatch]] | None:
        try:
            if self._pool is None:
                context = multiprocessing.get_context("spawn")  # fork is unsafe in a process running gRPC
                self._pool = ProcessPoolExecutor(
                    self._workers, mp_context=context, initializer=exit_with_parent, initargs=(os.getpid(),)
                )
            return [self._pool.submit(decode_payload, project, payload) for project, payload in items]
        except (BrokenProcessPool, RuntimeError, OSError) as exc:
            self._broken(exc)
            return None

    def _result(self, future: Future[DecodedBatch], item: tuple[str, bytes]) -> Decoded:
        try:
            return future.result()
        except BrokenProcessPool as exc:
            self._broken(exc)
            return _inline(*item)
        except Exception as exc:
            return exc

    def _broken(self, exc: BaseException) -> None:
        log.error("decode worker pool failed (%s); decoding inline until it is restarted", exc)
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _large(items: Sequence[tuple[str, bytes]]) -> bool:
    return len(items) >= _POOL_MIN_RECORDS or sum(len(p) for _, p in items) >= _POOL_MIN_BYTES


def _inline(project: str, payload: bytes) -> Decoded:
    try:
        return decode_payload(project, payload)
    except Exception as exc:
        return exc
