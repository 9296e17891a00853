"""Delivers the outbox on a small thread pool, with retries, backoff and dead letters.

It runs apart from the evaluator: the evaluator only writes outbox rows and calls `wake()`, so a
receiver that hangs or is down costs one pool worker for at most the send timeout and never
delays an evaluation. Delivery is at least once: a crash between sending and recording it resends
after the lease, with the same `id`, which receivers dedupe on.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from llmscope_collector.alerts.channels import DeliveryError
from llmscope_collector.alerts.outbox import Delivery, DeliveryQueue

log = logging.getLogger(__name__)

_PRUNE_EVERY_S = 3600.0


class Dispatcher:
    """`start()` a background loop; `wake()` after enqueueing; `stop()` waits for sends in progress."""

    def __init__(
        self,
        outbox: DeliveryQueue,
        send: Callable[[Delivery], None],
        *,
        timeout_s: float,
        workers: int = 4,
        max_attempts: int = 6,
        retry_base_s: float = 2.0,
        retry_max_s: float = 600.0,
        poll_s: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._outbox = outbox
        self._send = send
        self._lease_s = 2 * timeout_s + 30  # a send ends by its timeout; the lease outlasts it
        self._workers = workers
        self._max_attempts = max_attempts
        self._retry_base_s = retry_base_s
        self._retry_max_s = retry_max_s
        self._poll_s = poll_s
        self._clock = clock
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._pool: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="llmscope-alert-send")
        self._thread = threading.Thread(target=self._run, name="llmscope-alert-dispatch", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Stop claiming; wait for sends in progress (each bounded by its timeout)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _run(self) -> None:
        pruned_at = 0.0
        while not self._stopping.is_set():
            try:
                if self._clock() - pruned_at >= _PRUNE_EVERY_S:
                    pruned_at = self._clock()
                    self._outbox.prune(pruned_at)
                self._dispatch_due()
            except Exception:
                log.exception("alert dispatcher: could not read the outbox; retrying")
            self._wake.wait(self._sleep_s())
            self._wake.clear()

    def _sleep_s(self) -> float:
        next_due = self._outbox.next_due_at()
        if next_due is None:
            return self._poll_s
        return min(max(next_due - self._clock(), 0.0), self._poll_s)

    def _dispatch_due(self) -> None:
        pool = self._pool
        with self._lock:
            free = self._workers - len(self._in_flight)
            exclude = set(self._in_flight)
        if pool is None or free <= 0:
            return
        now = self._clock()
        for delivery in self._outbox.claim(now, now + self._lease_s, exclude=exclude, limit=free):
            with self._lock:
                self._in_flight.add(delivery.id)
            pool.submit(self._deliver, delivery)

    def _deliver(self, delivery: Delivery) -> None:
        attempts = delivery.attempts + 1
        try:
            self._send(delivery)
        except DeliveryError as err:
            self._failed(delivery, attempts, (str(err), err.public), err.retryable)
        except Exception as err:  # a bug in rendering or sending: keep the row, say so, retry later
            log.exception("alert delivery %s failed unexpectedly", delivery.id)
            self._failed(delivery, attempts, (f"internal error: {err!r}", "internal error in the collector"), True)
        else:
            self._outbox.delivered(delivery.id, attempts, self._clock())
        finally:
            with self._lock:
                self._in_flight.discard(delivery.id)
            self._wake.set()

    def _failed(self, delivery: Delivery, attempts: int, errors: tuple[str, str], retryable: bool) -> None:
        """`errors`: the detail (admin, log) and the public sentence (project keys)."""
        error, public = errors
        now = self._clock()
        if not retryable or attempts >= self._max_attempts:
            log.warning("alert delivery %s dead after %d attempt(s): %s", delivery.id, attempts, error)
            self._outbox.dead(delivery.id, attempts, error, now, public)
            return
        self._outbox.retry_later(delivery.id, attempts, now + self.backoff_s(attempts), error, now, public)

    def backoff_s(self, attempts: int) -> float:
        """Exponential from `retry_base_s`, capped, with jitter so many failing rows do not retry in step."""
        delay = min(self._retry_max_s, self._retry_base_s * 2.0 ** (attempts - 1))
        return delay * random.uniform(0.5, 1.0)  # jitter, not security
