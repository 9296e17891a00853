"""Retention: drop whole date partitions older than each project's TTL.

Deleting a partition directory is O(files), never a table rewrite or a VACUUM, and it frees the
disk at once. A partition is expired when its whole UTC day ended more than `days` ago, so no span
younger than the TTL is ever removed. Every date-partitioned dataset under the data dir
(`<dataset>/project=*/date=*`) is treated alike, so per-trace summaries go with their spans.

`cleanup(...)` is the one entry point: the scheduled run in the collector, `llmscope cleanup` and
the API routes all call it (`dry_run=True` only reports).
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from pathlib import Path

import msgspec
import pyarrow.parquet as pq

from llmscope_collector.storage.layout import SPANS_DIR, Partition, iter_partitions, parquet_files, valid_project

log = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 30


class RetentionError(ValueError):
    """A retention setting that cannot be understood; the message says how to write it."""


class RetentionPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """TTL in days per project; 0 keeps data forever."""

    default_days: int = DEFAULT_RETENTION_DAYS
    project_days: dict[str, int] = msgspec.field(default_factory=dict)

    @classmethod
    def parse(cls, default_days: int, project_days: str) -> RetentionPolicy:
        return cls(default_days=default_days, project_days=parse_project_days(project_days))

    def days_for(self, project: str) -> int:
        return self.project_days.get(project, self.default_days)


def parse_project_days(text: str) -> dict[str, int]:
    """`"staging=7, audit=365"` → `{"staging": 7, "audit": 365}`."""
    result: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        project, sep, days = item.partition("=")
        project = project.strip()
        if not sep or not valid_project(project) or not days.strip().isdigit():
            raise RetentionError(f"retention override {item!r} must look like project=DAYS, e.g. staging=7")
        result[project] = int(days)
    return result


class PartitionCleanup(msgspec.Struct, frozen=True, kw_only=True):
    dataset: str
    project: str
    date: str
    files: int
    bytes: int
    rows: int


class CleanupReport(msgspec.Struct, kw_only=True):
    """What a cleanup removed (or, with `dry_run`, would remove). `spans` counts rows of the span dataset."""

    dry_run: bool
    partitions: int = 0
    files: int = 0
    bytes: int = 0
    spans: int = 0
    kept_partitions: int = 0
    expired: list[PartitionCleanup] = msgspec.field(default_factory=list)
    errors: list[str] = msgspec.field(default_factory=list)


class DatasetUsage(msgspec.Struct, kw_only=True):
    """What one project keeps in one dataset, and the TTL that applies to it (0: kept forever)."""

    dataset: str
    project: str
    ttl_days: int
    partitions: int = 0
    files: int = 0
    bytes: int = 0
    rows: int = 0
    oldest_date: str | None = None
    newest_date: str | None = None


class RetentionStats(msgspec.Struct, kw_only=True):
    """Storage by dataset and project, the policy, and what a cleanup run now would delete."""

    default_days: int
    project_days: dict[str, int]
    usage: list[DatasetUsage]
    would_delete: CleanupReport


def stats(data_dir: Path, policy: RetentionPolicy, *, now: dt.datetime | None = None) -> RetentionStats:
    """Measure every partition (file metadata only, no data read) and dry-run the policy."""
    usage: dict[tuple[str, str], DatasetUsage] = {}
    for partition in iter_partitions(data_dir, dataset=None):
        key = (partition.dataset, partition.project)
        entry = usage.setdefault(
            key, DatasetUsage(dataset=key[0], project=key[1], ttl_days=policy.days_for(partition.project))
        )
        measured = _measure(partition)
        entry.partitions += 1
        entry.files += measured.files
        entry.bytes += measured.bytes
        entry.rows += measured.rows
        entry.oldest_date = min(entry.oldest_date or partition.date, partition.date)
        entry.newest_date = max(entry.newest_date or partition.date, partition.date)
    return RetentionStats(
        default_days=policy.default_days,
        project_days=dict(policy.project_days),
        usage=[usage[k] for k in sorted(usage)],
        would_delete=cleanup(data_dir, policy, dry_run=True, now=now),
    )


def is_expired(date: str, days: int, now: dt.datetime) -> bool:
    """True when the whole UTC day `date` ended at least `days` days before `now`."""
    if days <= 0:
        return False
    day_end = dt.datetime.strptime(date, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc) + dt.timedelta(days=1)
    return day_end <= now - dt.timedelta(days=days)


def cleanup(data_dir: Path, policy: RetentionPolicy, *, dry_run: bool, now: dt.datetime | None = None) -> CleanupReport:
    """Delete (or only measure) every expired date partition of every dataset."""
    now = now or dt.datetime.now(dt.timezone.utc)
    report = CleanupReport(dry_run=dry_run)
    for partition in iter_partitions(data_dir, dataset=None):
        if not is_expired(partition.date, policy.days_for(partition.project), now):
            report.kept_partitions += 1
            continue
        measured = _measure(partition)
        if not dry_run:
            error = _delete(partition)
            if error:
                report.errors.append(error)
                continue
        report.expired.append(measured)
        report.partitions += 1
        report.files += measured.files
        report.bytes += measured.bytes
        report.spans += measured.rows if partition.dataset == SPANS_DIR else 0
    if not dry_run and report.partitions:
        log.info("retention: deleted %d partitions (%d files, %d bytes)", report.partitions, report.files, report.bytes)
    return report


def _measure(partition: Partition) -> PartitionCleanup:
    files = parquet_files(partition.path)
    size = rows = 0
    for path in files:
        try:
            size += path.stat().st_size
            rows += pq.read_metadata(path).num_rows
        except (OSError, ValueError):
            continue
    return PartitionCleanup(
        dataset=partition.dataset,
        project=partition.project,
        date=partition.date,
        files=len(files),
        bytes=size,
        rows=rows,
    )


def _delete(partition: Partition) -> str | None:
    """Remove the partition directory, then its project directory if that is now empty."""
    try:
        shutil.rmtree(partition.path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{partition.path}: {exc.strerror or exc}"
    try:
        partition.path.parent.rmdir()
    except OSError:
        pass  # other dates remain (or a writer just created one)
    return None
