"""Reads that meet a file just removed: list again, within one patience shared by every reader.

Compaction and retention delete files while the API reads. A reader that listed a file just before its
removal fails to open it; the data is in the replacement file by then, so listing again succeeds. A
compaction retires its inputs one by one after renaming its output in, and a trace read opens the listed
files in the same (name) order: on a loaded host each of four attempts over ~60 ms met the next input just
unlinked (HTTP 500 on GET /v1/traces/{id} in the 40-kill crash test, 3 runs of 5). So a reader lists again
for as long as the files keep vanishing, bounded by `VANISHED_FILE_PATIENCE_S` (a listed file that never
opens fails then), not a fixed number of tries; every read of the query layer goes through `until_read`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import duckdb

T = TypeVar("T")

VANISHED_FILE_PATIENCE_S = 2.0
"""How long a read keeps listing again while the files it listed vanish (the end of a compaction's or a
retention pass's removals, on a loaded host, is well within it)."""

_VANISHED_MESSAGES = ("No such file", "No files found", "Cannot open file")
"""How DuckDB says a file it was given or globbed is not there (an `IOException`)."""


def is_vanished_file(exc: BaseException) -> bool:
    """Whether `exc` says a listed file was not there: Python's and pyarrow's `FileNotFoundError`, or DuckDB's
    `IOException` naming a missing file (other I/O errors, such as a corrupt file, are not retried)."""
    if isinstance(exc, FileNotFoundError):
        return True
    return isinstance(exc, duckdb.IOException) and any(m in str(exc) for m in _VANISHED_MESSAGES)


def until_read(read: Callable[[], T]) -> T:
    """`read()`, called again (after 10, 20 ... up to 50 ms) while it fails on a vanished file
    (`is_vanished_file`), until `VANISHED_FILE_PATIENCE_S` has passed; `read` lists its files anew each time.
    Any other error, or a vanished file past the patience, is raised as it came."""
    deadline = time.monotonic() + VANISHED_FILE_PATIENCE_S
    attempt = 0
    while True:
        try:
            return read()
        except Exception as exc:
            if not is_vanished_file(exc) or time.monotonic() >= deadline:
                raise
        attempt += 1
        time.sleep(min(0.01 * attempt, 0.05))
