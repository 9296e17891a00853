"""Per-project span rate limit: a token bucket that refuses with a retryable error, never drops.

The bucket is charged after an export with the spans it actually held, so the receiver never has to
parse a request twice to count them; a request is admitted while the bucket is positive and may take
it below zero, and the project then waits until the deficit is paid back. Over time the accepted rate
is exactly the configured one; a single burst can exceed `burst` by one request (per concurrent call).
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable

from llmscope_collector.errors import RateLimited

# (spans/s, burst) a project overrides the global limit with; None = follow the global value.
Overrides = Callable[[str], "tuple[float | None, int | None]"]


@dataclasses.dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets by project; rate 0 means unlimited."""

    def __init__(
        self,
        spans_per_s: float,
        burst: int,
        overrides: Overrides = lambda _project: (None, None),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate = spans_per_s
        self._burst = burst
        self._overrides = overrides
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def limit_for(self, project: str) -> tuple[float, float]:
        """(rate, capacity) in force for `project`; rate 0 = unlimited."""
        rate, burst = self._overrides(project)
        rate = self._rate if rate is None else rate
        burst = self._burst if burst is None else burst
        return rate, float(burst) if burst else max(rate, 1.0)

    def admit(self, project: str) -> None:
        """Raise `RateLimited` (with the wait) while the project's bucket is empty or in deficit."""
        rate, capacity = self.limit_for(project)
        if rate <= 0:
            return
        with self._lock:
            bucket = self._refill(project, rate, capacity)
            if bucket.tokens > 0:
                return
            wait = (-bucket.tokens + 1) / rate
        raise RateLimited(
            f"project {project!r} is over its rate limit of {rate:g} spans/s; retry in {math.ceil(wait)} s", wait
        )

    def charge(self, project: str, spans: int) -> None:
        """Take `spans` tokens after they were accepted."""
        rate, capacity = self.limit_for(project)
        if rate <= 0 or spans <= 0:
            return
        with self._lock:
            self._refill(project, rate, capacity).tokens -= spans

    def _refill(self, project: str, rate: float, capacity: float) -> _Bucket:
        now = self._clock()
        bucket = self._buckets.get(project)
        if bucket is None:
            bucket = self._buckets[project] = _Bucket(capacity, now)
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        return bucket
