"""Crash-safe file system steps shared by the WAL, the Parquet writer and compaction.

POSIX makes a create, rename or unlink durable only once the containing directory is fsynced;
forgetting that step is how "renamed, then lost after a power cut" happens.
Files are created owner-only (`file_modes`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from llmscope_collector.file_modes import PRIVATE_FILE


def write_parquet(
    parts: Iterable[pa.Table], schema: pa.Schema, where: str | Path | pa.NativeFile, *, row_group_size: int
) -> None:
    """The collector's Parquet encoding (zstd) of the parts' rows, as `pq.write_table` of their
    concatenation writes it when each part is a whole number of row groups."""
    with pq.ParquetWriter(where, schema, compression="zstd") as writer:
        for part in parts:
            writer.write_table(part, row_group_size=row_group_size)


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
    write_durably_parts([table], table.schema, path, row_group_size=row_group_size)


def write_durably_parts(parts: Iterable[pa.Table], schema: pa.Schema, path: Path, *, row_group_size: int) -> None:
    """`write_durably` of the concatenation of `parts`, each written as it comes (row groups of
    `row_group_size` rows from each part's start): the file as a whole is never held in memory."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        write_parquet(parts, schema, tmp, row_group_size=row_group_size)
        os.chmod(tmp, PRIVATE_FILE)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
