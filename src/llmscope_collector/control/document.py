"""A small JSON document in the bucket that every replica reads and changes with compare-and-swap.

Why the bucket and conditional writes (and not the query engine): control state (projects, key
digests, alert rules, rule states) is a few kilobytes changed a few times a minute at most, every
replica already reaches the bucket, and a conditional PUT (`If-Match: <ETag>`, `If-None-Match: *`
for the first version) is all it takes to make concurrent changes safe: a change is read, applied
to what was read and written only if nobody wrote in between; otherwise it is applied again to the
newer version. No change is lost and no extra service is run.

Each write bumps `revision`, so two versions never have the same bytes (hence never the same ETag,
which is an MD5 of the content on S3 and the gateway): an old ETag can never match a newer version.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import msgspec

from llmscope_collector.storage.objects import ObjectStore

log = logging.getLogger(__name__)

CONTROL_PREFIX = "control/"
"""Where control state lives under the storage prefix; the query mirror never lists it."""

T = TypeVar("T")
R = TypeVar("R")

_MAX_ATTEMPTS = 30


class Envelope(msgspec.Struct, Generic[T], kw_only=True):
    revision: int
    writer: str
    body: T


class UpdateConflict(RuntimeError):
    """The document changed under every attempt (a storm of writers); the change was not applied."""


class SharedDocument(Generic[T]):
    """`load()` the current body; `update(change)` applies `change` to the latest body atomically.

    `change` receives a fresh copy of the stored body, mutates it and returns a value; it may run
    more than once (once per conflict), so it must depend only on its argument. Raising inside it
    aborts the update and nothing is written."""

    def __init__(
        self, objects: ObjectStore, key: str, body_type: type[T], empty: Callable[[], T], *, writer: str
    ) -> None:
        self.key = CONTROL_PREFIX + key
        self._objects = objects
        self._empty = empty
        self._writer = writer
        envelope_type: Any = Envelope[body_type]  # type: ignore[valid-type]
        self._decoder: msgspec.json.Decoder[Envelope[T]] = msgspec.json.Decoder(envelope_type)
        self._lock = threading.Lock()
        self.conflicts = 0  # updates that had to be applied again to a newer version

    def load(self) -> T:
        """The stored body (an empty one when the document was never written)."""
        return self._fetch()[0].body

    def update(self, change: Callable[[T], R]) -> tuple[T, R]:
        """Apply `change` to the stored body and write it back unless someone wrote meanwhile
        (then retry on their version). Returns the body as written and what `change` returned."""
        for attempt in range(_MAX_ATTEMPTS):
            envelope, etag = self._fetch()
            result = change(envelope.body)
            written = Envelope(revision=envelope.revision + 1, writer=self._writer, body=envelope.body)
            if self._objects.put_if(self.key, msgspec.json.encode(written), etag) is not None:
                return written.body, result
            with self._lock:
                self.conflicts += 1
            log.debug("%s changed while being updated (attempt %d); applying the change again", self.key, attempt)
            time.sleep(random.uniform(0, min(0.5, 0.005 * 2**attempt)))  # spread contending writers
        raise UpdateConflict(f"{self.key}: {_MAX_ATTEMPTS} conflicting writes in a row; try again")

    def _fetch(self) -> tuple[Envelope[T], str | None]:
        stored = self._objects.get_versioned(self.key)
        if stored is None:
            return Envelope(revision=0, writer="", body=self._empty()), None
        return self._decoder.decode(stored.data), stored.etag


class Refresher:
    """Calls `reload` every `interval_s` in a daemon thread until `stop()`; failures are logged and
    retried at the next interval (replicas keep serving their last copy while the bucket is away)."""

    def __init__(self, name: str, interval_s: float, reload: Callable[[], object]) -> None:
        self._name = name
        self._interval_s = interval_s
        self._reload = reload
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"llmscope-{self._name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self._reload()
            except Exception:
                log.exception("%s: refresh from the bucket failed; retrying in %.0f s", self._name, self._interval_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
