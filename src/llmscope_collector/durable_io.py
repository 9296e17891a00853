"""Crash-safe file system steps shared by the WAL, the Parquet writer and compaction.

POSIX makes a create, rename or unlink durable only once the containing directory is fsynced;
forgetting that step is how "renamed, then lost after a power cut" happens.
Files are created owner-only (`file_modes`).
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from llmscope_collector.file_modes import PRIVATE_FILE


def fsync_dir(path: Path) -> None:
    """Make a create/rename/unlink in `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_durably(data: bytes, path: Path) -> None:
    """Atomically replace `path` with `data` (temp file + fsync + rename + directory fsync)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with open(fd, "wb") as fh:
        os.fchmod(fd, PRIVATE_FILE)  # a leftover temp file keeps its mode through O_CREAT
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_durably(table: pa.Table, path: Path, *, row_group_size: int) -> None:
    """Write to `<path>.tmp`, fsync, rename into place, fsync the directory: all or nothing, and durable."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        pq.write_table(table, tmp, compression="zstd", row_group_size=row_group_size)
        os.chmod(tmp, PRIVATE_FILE)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
