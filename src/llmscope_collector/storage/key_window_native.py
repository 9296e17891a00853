"""The dedupe windows' key table in flat arrays: the optional C extension `_key_window.c`.

`storage.dedupe.PureKeyWindow` holds each key as a bytes object in a set: ~80 B of object and ~34 B
of set table a key, ~50 MB for the two windows (250k span keys, 200k content keys, each up to 1.25x
that) at the ingest bench's peak, and a batch costs the writer thread (the main process's GIL holder)
a set of the batch, a difference per generation and, for the content store, a Python loop per key.
The extension holds the same keys by value in an arena per generation with an open-addressed table
of 8-byte slots (the module source says how) and answers a batch in one call.

A 250k window at its peak (312,499 span keys held, benchmarks/key_window.py): 14.0 MiB (47 B a key)
against 29.4 MiB for sets (99 B a key; RSS +54.5 MiB with what the rolled generations leave in
pymalloc's arenas, +13.6 MiB here); the writer's `add_batch` 918 instructions a new key against
1,927 (storage/dedupe.py has the rest). It answers exactly as the pure class for any sequence of
calls (tests/collector/model/test_key_window_native.py). Without a C compiler at install time
(setup.py), `NATIVE` is None and the windows are `PureKeyWindow`s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from llmscope_collector.storage.dedupe import KeyWindow


def _load() -> Callable[[int], KeyWindow] | None:
    try:
        from llmscope_collector.storage._key_window import KeyWindow as native  # type: ignore[import-not-found]
    except ImportError:
        return None
    window: Callable[[int], KeyWindow] = native
    return window


class SpanKeysOfBuffers(Protocol):
    """The extension's `span_keys`: `storage.dedupe.span_keys` of `length` rows of two string arrays, read
    from their buffers (int32 offsets, data; `start`: the arrays' common offset; no nulls)."""

    def __call__(
        self,
        project: bytes,
        trace_offsets: object,
        trace_data: object,
        span_offsets: object,
        span_data: object,
        start: int,
        length: int,
        /,
    ) -> list[bytes]: ...


def _load_span_keys() -> SpanKeysOfBuffers | None:
    try:
        from llmscope_collector.storage._key_window import span_keys  # type: ignore[import-not-found]
    except ImportError:
        return None
    native: SpanKeysOfBuffers = span_keys
    return native


NATIVE = _load()
"""`NATIVE(capacity)`: a native window, or None when the extension is not built."""
AVAILABLE = NATIVE is not None
SPAN_KEYS = _load_span_keys()
"""`SPAN_KEYS(...)`: span keys from Arrow buffers (`storage.dedupe.span_keys_of`), or None when not built."""
