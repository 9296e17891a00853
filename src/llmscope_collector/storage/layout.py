"""Where every dataset and the WAL live under the data dir: the folder names are declared here only.

Paths and globs are built here only, from the data dir and validated partition values, so that
no request value can ever reach a file path or the SQL text. The datasets (`DATASETS`, columns in
`storage.schema`) share one partition layout, so a span's content, summary delta and duplicate mark
are in the same (project, date) partition as the span, and retention drops them together.

```
<data_dir>/spans/project=<p>/date=<YYYY-MM-DD>/part-<walstart>-<walend>-<rand>.parquet   one WAL flush
    (in object storage: part-<walstart>-<walend>-<collector id>.parquet, a deterministic key)
<data_dir>/spans/project=<p>/date=<YYYY-MM-DD>/compact-<rand>.parquet                   compaction output
<data_dir>/content/project=<p>/date=<YYYY-MM-DD>/part-*.parquet          captured content, by hash
<data_dir>/traces/project=<p>/date=<YYYY-MM-DD>/part-<walstart>-<walend>-*.parquet  trace summary deltas
<data_dir>/llm_dups/project=<p>/date=<YYYY-MM-DD>/part-*.parquet         LLM spans found duplicates late
<data_dir>/wal/<base lsn>.wal, wal/cursor, wal/LOCK, wal/quarantine/                     write-ahead log
<data_dir>/compaction/<id>.json                                                         compaction intents
```
"""

from __future__ import annotations

import dataclasses
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from llmscope_collector.durable_io import DEFAULT_ENCODING, Encoding
from llmscope_collector.storage.schema import (
    CONTENT_COLUMNS,
    DERIVED_SPAN_COLUMNS,
    LLM_DUP_COLUMNS,
    SCORE_COLUMNS,
    SPAN_COLUMNS,
    TRACE_COLUMNS,
    Column,
)

SPANS_DIR = "spans"
CONTENT_DIR = "content"
TRACES_DIR = "traces"
LLM_DUPS_DIR = "llm_dups"
SCORES_DIR = "scores"
DATASETS = (SPANS_DIR, CONTENT_DIR, TRACES_DIR, LLM_DUPS_DIR, SCORES_DIR)  # the partitioned Parquet datasets
WAL_DIR = "wal"
COMPACTION_DIR = "compaction"
_PROJECT_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_PART_RE = re.compile(r"^part-([0-9a-f]{16})-([0-9a-f]{16})-([0-9a-z]{1,32})\.parquet$")
_COLLECTOR_ID_RE = re.compile(r"^[0-9a-z]{1,32}$")
_SKIP_DATASETS = frozenset({WAL_DIR, COMPACTION_DIR})

SPAN_ROW_GROUP_ROWS = 16_384
"""Rows per row group of a span file (flush and compaction outputs). Span files are sorted by trace id,
so one trace's rows sit in one row group (two at a boundary), found by its trace_id min/max; but DuckDB
then decodes that row group's columns whole (it skips no pages), so a waterfall costs about its row
group's size: with 100k-row groups the waterfall at 10M spans took 2.5x its time at 1M (33k-row files).
At 16k rows a day's file of 333k spans is ~5% larger and its footer (parsed by every query) 5x longer,
~1 ms; 8k-row groups cost more in footer parsing than they saved in decoding (2k-row groups: a waterfall
took twice as long)."""

SPAN_PAGE_ROWS = 1_024
"""Rows per data page of a span file: with the page index (`SPAN_ENCODING`) DuckDB reads only the pages of
a row group whose trace_id range holds the looked-up trace, a sixteenth of the row group."""


def _declared_encoding(
    columns: tuple[Column, ...], *, page_rows: int | None = None, page_index: bool = False
) -> Encoding:
    """A dataset's encoding as its columns declare it: no dictionary on those declared without one
    (`Column.dictionary`), no statistics on those declared without them (`Column.statistics`)."""
    return Encoding(
        plain=frozenset(c.name for c in columns if not c.dictionary),
        unsummarized=frozenset(c.name for c in columns if not c.statistics),
        page_rows=page_rows,
        page_index=page_index,
    )


SPAN_ENCODING = _declared_encoding((*SPAN_COLUMNS, *DERIVED_SPAN_COLUMNS), page_rows=SPAN_PAGE_ROWS, page_index=True)
"""How span files are written (flushes, compaction, in a data dir or a bucket): the page index, small
pages, the columns' declared dictionaries and statistics. A waterfall at 10M spans then skips pages
instead of decoding its row group's dictionaries whole."""

_LZ4 = pa.Codec.is_available("lz4")  # in every pyarrow wheel; zstd where a build lacks it

_ENCODINGS = {
    SPANS_DIR: SPAN_ENCODING,
    CONTENT_DIR: _declared_encoding(CONTENT_COLUMNS),
    TRACES_DIR: _declared_encoding(TRACE_COLUMNS),
    LLM_DUPS_DIR: _declared_encoding(LLM_DUP_COLUMNS),
    SCORES_DIR: _declared_encoding(SCORE_COLUMNS),
}


FLUSH_SPAN_ENCODING = dataclasses.replace(SPAN_ENCODING, compression="lz4" if _LZ4 else SPAN_ENCODING.compression)
"""How the writer's flush thread writes a span file: `SPAN_ENCODING` in lz4 (LZ4_RAW) instead of zstd. Its
Parquet encoding is the flush thread's largest cost: zstd ~2.4 us a span of that thread's ~10, lz4 ~1.45
(docs/collector.md, "What the flush thread costs"). A flush file is short-lived: compaction rewrites every
one (`compaction._needs_rewrite`, also in a bucket) in `SPAN_ENCODING`, within a compaction interval of its
WAL range being committed, so the bytes on disk after compaction are unchanged; until then a flush file is
~1.65 times its zstd size. Content, trace deltas and duplicate marks stay zstd: on a data dir they are
never compacted."""


def encoding_of(dataset: str) -> Encoding:
    """The page layout of a dataset's files (only span files are read by point lookups: the others keep
    pyarrow's pages and no page index)."""
    return _ENCODINGS.get(dataset, DEFAULT_ENCODING)


def flush_encoding_of(dataset: str) -> Encoding:
    """The page layout of a dataset's files as a flush writes them (`storage.tables.TableSink`): as
    `encoding_of`, but span files in lz4 (`FLUSH_SPAN_ENCODING`)."""
    return FLUSH_SPAN_ENCODING if dataset == SPANS_DIR else encoding_of(dataset)


def valid_project(project: str) -> bool:
    """Project names become directory names, so only a safe alphabet is allowed."""
    return bool(_PROJECT_RE.match(project))


def valid_collector_id(collector_id: str) -> bool:
    """Collector ids end object keys (and are matched by `wal_range_of`): lowercase letters and digits."""
    return bool(_COLLECTOR_ID_RE.match(collector_id))


def partition_key(project: str, date: str, dataset: str = SPANS_DIR) -> str:
    """`<dataset>/project=<p>/date=<d>`: a partition's place, on disk and in object storage alike."""
    if not valid_project(project):
        raise ValueError(f"invalid project name {project!r}")
    if not _DATE_RE.match(date):
        raise ValueError(f"invalid partition date {date!r}")
    return f"{dataset}/project={project}/date={date}"


def partition_of_key(key: str) -> tuple[str, str, str, str] | None:
    """(dataset, project, date, name) of an object key laid out as `partition_key(...)/name`, else None."""
    parts = key.split("/")
    if len(parts) != 4 or not parts[1].startswith("project=") or not parts[2].startswith("date="):
        return None
    project, date = parts[1].removeprefix("project="), parts[2].removeprefix("date=")
    if not valid_project(project) or not _DATE_RE.match(date):
        return None
    return parts[0], project, date, parts[3]


def partition_dir(data_dir: Path, project: str, date: str, dataset: str = SPANS_DIR) -> Path:
    return data_dir / partition_key(project, date, dataset)


def part_name(wal_start: int, wal_end: int, suffix: str = "") -> str:
    """The file name of one flush's file: the WAL range `[wal_start, wal_end)` it holds, then `suffix`
    (a collector id: a deterministic object key) or, on disk, a random one."""
    return f"part-{wal_start:016x}-{wal_end:016x}-{suffix or uuid.uuid4().hex[:12]}.parquet"


def new_part_path(data_dir: Path, project: str, date: str, wal_start: int, wal_end: int) -> Path:
    """A unique file name for one flush that says which WAL range `[wal_start, wal_end)` it holds."""
    return partition_dir(data_dir, project, date) / part_name(wal_start, wal_end)


COMPACTED_PREFIX = "compact-"


def compacted_part_path(partition: Path) -> Path:
    return partition / f"{COMPACTED_PREFIX}{uuid.uuid4().hex[:12]}.parquet"


def wal_range_of(name: str) -> tuple[int, int] | None:
    """The WAL range encoded in a flush file's name; None for compacted or older files."""
    match = _PART_RE.match(name)
    if match is None:
        return None
    return int(match.group(1), 16), int(match.group(2), 16)


def part_suffix(name: str) -> str | None:
    """The last field of a flush file's name (random on disk, the writer's collector id in a bucket)."""
    match = _PART_RE.match(name)
    return match.group(3) if match else None


def spans_glob(data_dir: Path) -> str:
    return str(data_dir / SPANS_DIR / "project=*" / "date=*" / "*.parquet")


# Datasets the query layer may glob (an allowlist: the name becomes part of a path).
QUERY_DATASETS = frozenset(DATASETS)


def project_glob(data_dir: Path, dataset: str, project: str, date: str = "*") -> str | None:
    """The glob of one project's files in `dataset` (one date, or all), or None when it has none yet."""
    if dataset not in QUERY_DATASETS or not valid_project(project) or (date != "*" and not _DATE_RE.match(date)):
        raise ValueError(f"invalid dataset/project/date {dataset!r}/{project!r}/{date!r}")
    root = data_dir / dataset / f"project={project}"
    if not any(root.glob(f"date={date}/*.parquet")):
        return None
    return str(root / f"date={date}" / "*.parquet")


def project_date_globs(data_dir: Path, dataset: str, project: str, dates: list[str]) -> list[str]:
    """The globs of the given dates' partitions of one project that hold files (a narrow query then
    opens only those files: DuckDB reads every globbed file's schema before it prunes partitions)."""
    globs = []
    for date in dates:
        glob = project_glob(data_dir, dataset, project, date)
        if glob is not None:
            globs.append(glob)
    return globs


def has_span_files(data_dir: Path) -> bool:
    root = data_dir / SPANS_DIR
    return root.is_dir() and any(root.glob("project=*/date=*/*.parquet"))


def wal_dir(data_dir: Path, configured: str = "") -> Path:
    """The WAL directory: `configured` when set (e.g. a faster disk), else `<data_dir>/wal`."""
    return Path(configured) if configured else data_dir / WAL_DIR


@dataclasses.dataclass(frozen=True)
class Partition:
    dataset: str
    project: str
    date: str
    path: Path


def iter_partitions(data_dir: Path, dataset: str | None = SPANS_DIR) -> Iterator[Partition]:
    """Every `<dataset>/project=*/date=*` directory (all datasets when `dataset` is None), sorted."""
    if not data_dir.is_dir():
        return
    datasets = [dataset] if dataset else sorted(p.name for p in data_dir.iterdir() if p.is_dir())
    for name in datasets:
        if name in _SKIP_DATASETS:
            continue
        yield from _dataset_partitions(data_dir / name, name)


def _dataset_partitions(root: Path, dataset: str) -> Iterator[Partition]:
    if not root.is_dir():
        return
    for project_dir in sorted(root.glob("project=*")):
        project = project_dir.name.removeprefix("project=")
        if not project_dir.is_dir() or not valid_project(project):
            continue
        for date_dir in sorted(project_dir.glob("date=*")):
            date = date_dir.name.removeprefix("date=")
            if date_dir.is_dir() and _DATE_RE.match(date):
                yield Partition(dataset, project, date, date_dir)


def parquet_files(partition: Path) -> list[Path]:
    """The visible Parquet files of a partition (temporary files excluded), sorted by name."""
    try:
        return sorted(Path(e.path) for e in os.scandir(partition) if e.name.endswith(".parquet") and e.is_file())
    except FileNotFoundError:
        return []
