"""The dedupe windows' key table in flat arrays: the optional C extension `_key_window.c`.

`storage.dedupe.PureKeyWindow` holds each key as a bytes object in a set: ~80 B of object and ~34 B
of set table a key, ~50 MB for the two windows (250k span keys, 200k content keys, each up to 1.25x
that) at the ingest bench's peak, and a Python loop per key in the writer thread, the main process's
GIL holder. The extension holds the same keys by value in an arena per generation with an
open-addressed table of 8-byte slots (the module source says how) and answers a batch in one call.

Measured (benchmarks/key_window.py, 250k span keys of a 7-character project, i.e. the window full:
312.5k keys held): see the figures in storage/dedupe.py's docstring. It answers exactly as the pure
class for any sequence of calls (tests/collector/model/test_key_window_native.py). Without a C compiler
at install time (setup.py), `NATIVE` is None and the windows are `PureKeyWindow`s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmscope_collector.storage.dedupe import KeyWindow


def _load() -> Callable[[int], KeyWindow] | None:
    try:
        from llmscope_collector.storage._key_window import KeyWindow as native  # type: ignore[import-not-found]
    except ImportError:
        return None
    window: Callable[[int], KeyWindow] = native
    return window


NATIVE = _load()
"""`NATIVE(capacity)`: a native window, or None when the extension is not built."""
AVAILABLE = NATIVE is not None
