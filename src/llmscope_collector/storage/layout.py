"""Where span files live under the data dir.

Paths and globs are built here only, from the data dir and validated partition values, so that
no request value can ever reach a file path or the SQL text.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

SPANS_DIR = "spans"
_PROJECT_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def valid_project(project: str) -> bool:
    """Project names become directory names, so only a safe alphabet is allowed."""
    return bool(_PROJECT_RE.match(project))


def partition_dir(data_dir: Path, project: str, date: str) -> Path:
    if not valid_project(project):
        raise ValueError(f"invalid project name {project!r}")
    return data_dir / SPANS_DIR / f"project={project}" / f"date={date}"


def new_part_path(data_dir: Path, project: str, date: str, start_ns: int) -> Path:
    """A unique, time-sortable file name for one flushed batch."""
    return partition_dir(data_dir, project, date) / f"part-{start_ns:020d}-{uuid.uuid4().hex[:12]}.parquet"


def spans_glob(data_dir: Path) -> str:
    return str(data_dir / SPANS_DIR / "project=*" / "date=*" / "*.parquet")


def has_span_files(data_dir: Path) -> bool:
    root = data_dir / SPANS_DIR
    return root.is_dir() and any(root.glob("project=*/date=*/*.parquet"))
