"""Crash-safe file system steps shared by the WAL, the Parquet writer and compaction.

POSIX makes a create, rename or unlink durable only once the containing directory is fsynced;
forgetting that step is how "renamed, then lost after a power cut" happens.
Files are created owner-only (`file_modes`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from llmscope_collector.file_modes import PRIVATE_FILE


@dataclasses.dataclass(frozen=True)
class Encoding:
    """How a file's pages are laid out: their codec (`compression`: zstd but for the span files of a
    flush, `storage.layout.FLUSH_SPAN_ENCODING`), which top-level columns are written without a dictionary
    (`plain`) and which without min/max statistics (`unsummarized`: no reader prunes by them, and a long
    string's min/max costs the writer a compare per value), at most how many rows a
    data page holds (`page_rows`; None: pyarrow's byte-sized pages) and whether the footer carries the
    page index (the pages' offsets, and the min/max of the summarized columns' pages, which let a reader
    skip the pages of a row group that a filter excludes)."""

    compression: str = "zstd"
    plain: frozenset[str] = frozenset()
    unsummarized: frozenset[str] = frozenset()
    page_rows: int | None = None
    page_index: bool = False


DEFAULT_ENCODING = Encoding()

WRITE_BUFFER_BYTES = 1 << 20
"""What a Parquet file is written through (`write_durably_parts`): pyarrow writes a file page by page, and
straight to the file that was ~1,400 `write` and ~870 `lseek` calls for one flush's span file (10k
spans), ~0.2 us a span of the flush thread's CPU for its three files (docs/collector.md, "What the flush
thread costs"); the bytes written are the same."""


def write_parquet(
    parts: Iterable[pa.Table],
    schema: pa.Schema,
    where: str | Path | pa.NativeFile,
    *,
    row_group_size: int,
    encoding: Encoding = DEFAULT_ENCODING,
) -> None:
    """The collector's Parquet encoding (`encoding`) of the parts' rows, as `pq.write_table` of
    their concatenation writes it when each part is a whole number of row groups."""
    with pq.ParquetWriter(where, schema, **_writer_options(schema, encoding)) as writer:
        for part in parts:
            writer.write_table(part, row_group_size=row_group_size)


def _writer_options(schema: pa.Schema, encoding: Encoding) -> dict[str, object]:
    """`pq.ParquetWriter`'s options for `encoding` of `schema`'s columns. (Made anew for each file: remembering
    them spared ~0.22 ms of a flush's ~11 ms of fixed CPU, ~0.02 µs a span at 10,000 rows, not worth a
    process-wide cache.)"""
    return {
        "compression": encoding.compression,
        "use_dictionary": _leaf_paths_but(schema, encoding.plain) if encoding.plain else True,
        "write_statistics": _leaf_paths_but(schema, encoding.unsummarized) if encoding.unsummarized else True,
        "max_rows_per_page": encoding.page_rows,
        "write_page_index": encoding.page_index,
    }


def _leaf_paths_but(schema: pa.Schema, left_out: frozenset[str]) -> list[str]:
    """The Parquet leaf column paths of the fields not in `left_out`: pyarrow matches `use_dictionary` and
    `write_statistics` names against leaf paths (`tags.list.element`), so a nested field's name alone
    would turn the option off for it."""
    return [path for field in schema if field.name not in left_out for path in _leaf_paths(field.name, field.type)]


def _leaf_paths(path: str, type_: pa.DataType) -> Iterator[str]:
    """The leaf paths of a column as pyarrow writes it (compliant nested types: `list.element`, `key_value`)."""
    if pa.types.is_map(type_):
        yield from _leaf_paths(f"{path}.key_value.key", type_.key_type)
        yield from _leaf_paths(f"{path}.key_value.value", type_.item_type)
    elif pa.types.is_list(type_) or pa.types.is_large_list(type_) or pa.types.is_fixed_size_list(type_):
        yield from _leaf_paths(f"{path}.list.element", type_.value_type)
    elif pa.types.is_struct(type_):
        for child in type_:
            yield from _leaf_paths(f"{path}.{child.name}", child.type)
    else:
        yield path


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


def write_durably(table: pa.Table, path: Path, *, row_group_size: int, encoding: Encoding = DEFAULT_ENCODING) -> None:
    """Write to `<path>.tmp`, fsync, rename into place, fsync the directory: all or nothing, and durable."""
    write_durably_parts([table], table.schema, path, row_group_size=row_group_size, encoding=encoding)


def write_durably_parts(
    parts: Iterable[pa.Table],
    schema: pa.Schema,
    path: Path,
    *,
    row_group_size: int,
    encoding: Encoding = DEFAULT_ENCODING,
) -> None:
    """`write_durably` of the concatenation of `parts`, each written as it comes (row groups of
    `row_group_size` rows from each part's start): the file as a whole is never held in memory.

    The file is made private and fsynced through the descriptor it was written by, once its bytes are all
    in it (the buffer flushed), before it is closed and renamed: the same steps as a chmod by path and a
    second open to fsync, two syscalls and a Python file object fewer for each of a flush's three files."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with pa.OSFile(str(tmp), "wb") as raw, pa.BufferedOutputStream(raw, WRITE_BUFFER_BYTES) as out:
            write_parquet(parts, schema, out, row_group_size=row_group_size, encoding=encoding)
            out.flush()
            os.fchmod(raw.fileno(), PRIVATE_FILE)
            os.fsync(raw.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
