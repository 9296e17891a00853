"""A leader lease in the bucket: one node at a time runs a job (alert evaluation) in cluster mode.

The lease is one object, `control/leases/<name>.json` (holder, duration, revision), changed only
with conditional writes, so two nodes can never both win the same version.

Time is measured by each node on its own monotonic clock, never by comparing wall clocks between
machines (which may disagree by seconds):

- the holder renews every `duration/3`; it counts itself leader until `duration * 2/3` after the
  start of its last successful write (`held()`), so it stops before anyone may take over;
- a contender takes over when it has seen the same version of the lease, unchanged, for the
  holder's `duration` (or at once when the lease is absent or was released by a clean stop).

Bound (docs/scale.md): a holder killed at time k wrote its last renewal at some w <= k; a contender
polling every `duration/3` first sees that version by w + duration/3 and takes over at its first poll
at least `duration` later: by k + duration * 5/3 (25 s with the default 15 s), plus one request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import msgspec

from llmscope_collector.control.document import CONTROL_PREFIX
from llmscope_collector.storage.objects import ObjectStore

log = logging.getLogger(__name__)

HOLD_FRACTION = 2 / 3
"""Of the duration, how long after its write started a holder still counts itself leader."""


class LeaseRecord(msgspec.Struct, kw_only=True):
    holder: str  # "" once released
    duration_s: float
    revision: int
    written_at: float  # the holder's wall clock: shown to operators, never used to decide


_decoder = msgspec.json.Decoder(LeaseRecord)


class Lease:
    """`poll()` renews, watches or takes the lease (one step); `start()` polls in a thread."""

    def __init__(
        self,
        objects: ObjectStore,
        name: str,
        *,
        holder: str,
        duration_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.key = f"{CONTROL_PREFIX}leases/{name}.json"
        self.holder = holder
        self.duration_s = duration_s
        self._objects = objects
        self._clock = clock
        self._lock = threading.Lock()
        self._held_until = 0.0
        self._etag: str | None = None  # of our own last write, while we hold it
        self._seen: tuple[str, float] | None = None  # (etag, first seen at) of someone else's version
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.takeovers = 0  # how often this node became the holder

    def held(self) -> bool:
        with self._lock:
            return self._clock() < self._held_until

    def poll(self) -> bool:
        """One step: renew if ours, take it if absent, released or unchanged for its duration."""
        now = self._clock()
        stored = self._objects.get_versioned(self.key)
        if stored is None:
            return self._write(None, 1, now)
        record = _decoder.decode(stored.data)
        if record.holder == self.holder:
            return self._write(stored.etag, record.revision + 1, now)
        with self._lock:
            self._held_until = 0.0
        if record.holder == "":
            return self._write(stored.etag, record.revision + 1, now)
        if self._seen is None or self._seen[0] != stored.etag:
            self._seen = (stored.etag, now)
            return False
        if now - self._seen[1] >= record.duration_s:
            log.info("lease %s: %s stopped renewing; taking over", self.key, record.holder)
            return self._write(stored.etag, record.revision + 1, now)
        return False

    def _write(self, etag: str | None, revision: int, started: float) -> bool:
        record = LeaseRecord(holder=self.holder, duration_s=self.duration_s, revision=revision, written_at=time.time())
        new_etag = self._objects.put_if(self.key, msgspec.json.encode(record), etag)
        with self._lock:
            if new_etag is None:  # someone else wrote first: theirs now
                self._held_until = 0.0
                self._seen = None
                return False
            if self._clock() >= self._held_until:
                self.takeovers += 1
            self._held_until = started + self.duration_s * HOLD_FRACTION
            self._etag = new_etag
            return True

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"llmscope-lease-{self.key}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                self.poll()
            except Exception:
                log.exception("lease %s: poll failed; retrying", self.key)
            if self._stop.wait(self.duration_s / 3):
                return

    def stop(self, *, release: bool = True) -> None:
        """Stop polling; `release` hands the lease over at once (a clean stop), instead of after expiry."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if release:
            self.release()

    def release(self) -> None:
        with self._lock:
            etag, held = self._etag, self._clock() < self._held_until
            self._held_until = 0.0
        if etag is None or not held:
            return
        record = LeaseRecord(holder="", duration_s=self.duration_s, revision=0, written_at=time.time())
        try:
            self._objects.put_if(self.key, msgspec.json.encode(record), etag)
        except Exception:
            log.exception("lease %s: release failed; it expires after %.0f s", self.key, self.duration_s)
