"""Feeds the ClickHouse tables from the stored Parquet objects, each object exactly once.

An object is named by its key in the dataset layout (`<dataset>/project=<p>/date=<d>/<name>`, the
same in a data dir, a bucket and a bucket's mirror), and that key is everything the load needs:

1. `INSERT … SELECT … FROM file(…)` / `s3(…)` with `insert_deduplication_token` = the key, so a load
   retried after a crash (the rows stored, the record below not) is dropped by the table;
2. then the key is recorded in `loaded_objects`.

A refresh loads the keys listed and not recorded, so a crash at any point loads nothing twice and
skips nothing. Objects are immutable: a key never changes content. A compacted file of a data dir
(its metadata names the files it replaced) whose inputs were all loaded is recorded without a load,
and so is a file a session deletion rewrote (its metadata names the files it is a rewrite of): the
deletion removes the rows from the tables first, while the loader is paused (`paused`). Objects that
disappear by retention are not removed from the tables: retention there is the tables' TTL (docs/scale.md).

In cluster mode a session deletion is a committed `DeletionManifest` (storage.bucket_deletion): each
refresh applies the ones not applied yet (lightweight DELETE of the session's traces from every trace
table, of its orphaned content items from `content`), recorded in `loaded_objects` under the
manifest's key, and each rewritten object is recorded without a load when the object it replaces was
loaded (rewrites are one to one). Every replica's engine applies every deletion, whichever replica
received the request.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping, Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pyarrow.parquet as pq

from llmscope_collector.query.clickhouse import sql
from llmscope_collector.query.clickhouse.client import ClickHouseClient
from llmscope_collector.storage.compaction import COMPACTED_FROM_KEY as COMPACTED_FROM
from llmscope_collector.storage.layout import partition_of_key
from llmscope_collector.storage.manifests import DeletionManifest, ManifestIndex, deletion_key
from llmscope_collector.storage.mirror import DELETIONS_DIR
from llmscope_collector.storage.rewrite import REWRITTEN_FROM

log = logging.getLogger(__name__)
_RETENTION = "retention_ttl"


@dataclass(frozen=True)
class StoredObject:
    key: str  # `<dataset>/project=<p>/date=<d>/<name>`
    dataset: str
    project: str
    date: str


def stored_object(key: str) -> StoredObject | None:
    parts = partition_of_key(key)
    if parts is None or parts[0] not in sql.TABLES or not key.endswith(".parquet"):
        return None
    dataset, project, date, _name = parts
    return StoredObject(key, dataset, project, date)


class ObjectSource(Protocol):
    """Where the objects are, and the table function that reads one."""

    def list_keys(self) -> Iterator[str]: ...

    def reader(self, key: str, structure: str) -> tuple[str, dict[str, Any]]:
        """(table function text with bound parameters, the parameters) reading the object `key`."""
        ...

    def loaded_as(self, key: str, loaded: Set[str]) -> bool:
        """Whether the object's rows are in the tables already, under the keys `loaded`: a compacted object
        whose inputs were all loaded, or a deletion's rewrite of a loaded object (whose removed rows the
        deletion took out of the tables first)."""
        ...

    def payload(self, key: str) -> bytes | None:
        """The object's bytes when the reader is `input()` (sent with the statement), else None."""
        ...

    def deletions(self) -> dict[str, DeletionManifest]:
        """The session deletions committed in cluster mode, by manifest key (none for a data dir)."""
        ...


class DirectorySource:
    """A data dir or a bucket's mirror, read by the engine's `file()` (chdb, or a server on the same host)."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def list_keys(self) -> Iterator[str]:
        for dataset in sql.TABLES:
            base = self._root / dataset
            for project in _subdirs(base, "project="):
                for date in _subdirs(project, "date="):
                    for entry in _entries(date):
                        if entry.name.endswith(".parquet") and entry.is_file():
                            yield f"{dataset}/{project.name}/{date.name}/{entry.name}"

    def reader(self, key: str, structure: str) -> tuple[str, dict[str, Any]]:
        return "file({path:String}, 'Parquet', {structure:String})", {
            "path": str(self._root / key),
            "structure": structure,
        }

    def loaded_as(self, key: str, loaded: Set[str]) -> bool:
        try:
            meta = pq.read_metadata(self._root / key).metadata or {}
        except OSError:
            return False
        directory = key.rsplit("/", 1)[0]
        rewritten = _names(meta.get(REWRITTEN_FROM))
        if rewritten and any(f"{directory}/{name}" in loaded for name in rewritten):
            return True
        compacted = _names(meta.get(COMPACTED_FROM))  # span compaction records only how many files it merged:
        return bool(compacted) and {f"{directory}/{name}" for name in compacted} <= loaded  # then loaded again

    def payload(self, key: str) -> bytes | None:
        return None

    def deletions(self) -> dict[str, DeletionManifest]:
        """The copies a bucket's mirror keeps of the deletion manifests (`storage.mirror`), written after the
        objects they replace were removed from the mirror."""
        found: dict[str, DeletionManifest] = {}
        for entry in _entries(self._root / DELETIONS_DIR):
            if entry.name.endswith(".pb") and entry.is_file():
                manifest = DeletionManifest()
                manifest.ParseFromString(Path(entry.path).read_bytes())
                found[deletion_key(entry.name.removesuffix(".pb"))] = manifest
        return found


class UploadSource(DirectorySource):
    """A data dir whose files are sent to the server with each load statement (`input()`): for a server
    that cannot read them itself (another host, no bucket): the contract tests use it."""

    def reader(self, key: str, structure: str) -> tuple[str, dict[str, Any]]:
        return "input({structure:String}) FORMAT Parquet", {"structure": structure}

    def payload(self, key: str) -> bytes | None:
        return (self._root / key).read_bytes()


class BucketSource:
    """The bucket itself, read by the engine's `s3()` (cluster mode: docs/scale.md); listed by the project's
    object store client. Credentials are bound parameters, never statement text."""

    def __init__(self, objects: Any, endpoint: str, bucket: str, prefix: str, key_id: str, secret: str) -> None:
        self._objects = objects
        self._manifests = ManifestIndex(objects)
        self._base = f"{endpoint.rstrip('/')}/{bucket}/" + (f"{prefix.strip('/')}/" if prefix.strip("/") else "")
        self._key_id, self._secret = key_id, secret

    def list_keys(self) -> Iterator[str]:
        """The objects the flush and compaction manifests show (storage.manifests), that still exist:
        never the leftover of an interrupted flush, nor an input a committed compaction replaced."""
        self._manifests.refresh()
        shown = self._manifests.shown()
        for dataset in sql.TABLES:
            for info in self._objects.list(f"{dataset}/"):
                if info.key in shown:
                    yield info.key

    def reader(self, key: str, structure: str) -> tuple[str, dict[str, Any]]:
        text = "s3({url:String}, {key_id:String}, {secret:String}, 'Parquet', {structure:String})"
        return text, {"url": self._base + key, "key_id": self._key_id, "secret": self._secret, "structure": structure}

    def loaded_as(self, key: str, loaded: Set[str]) -> bool:
        """A compaction output whose inputs (its manifest's `replaces`) were all loaded."""
        replaced = self._manifests.replaced_by(key)
        return replaced is not None and replaced <= loaded

    def payload(self, key: str) -> bytes | None:
        return None

    def deletions(self) -> dict[str, DeletionManifest]:
        return {deletion_key(d): m for d, m in self._manifests.deletions().items()}


def _names(raw: bytes | None) -> list[str]:
    """A metadata value naming files (a JSON list), else none."""
    names = json.loads(raw) if raw is not None else None
    return [str(n) for n in names] if isinstance(names, list) else []


def _subdirs(path: Path, prefix: str) -> list[Path]:
    return [Path(e.path) for e in _entries(path) if e.name.startswith(prefix) and e.is_dir()]


def _entries(path: Path | str) -> list[os.DirEntry[str]]:
    try:
        return list(os.scandir(path))
    except FileNotFoundError:
        return []


class Loader:
    """Owns the tables of one ClickHouse database; `refresh()` loads what the source holds and they do not."""

    def __init__(
        self,
        client: ClickHouseClient,
        source: ObjectSource,
        *,
        retention_days: int = 0,
        project_days: Mapping[str, int] | None = None,
    ) -> None:
        """Creates the tables if needed and sets their retention: `retention_days` (0 keeps), overridden
        per project by `project_days` (the collector's `RetentionPolicy`)."""
        self._client = client
        self._source = source
        self._lock = threading.Lock()
        had_summaries = bool(client.rows(sql.SUMMARY_TABLE_EXISTS, {"name": sql.SUMMARY_TABLE})[0]["n"])
        for statement in sql.create_tables():
            client.command(statement, {})
        if not had_summaries:  # tables made before it: summarize the deltas already loaded, then feed it
            client.command(sql.SUMMARY_BACKFILL, {})
        if self._add_columns():  # the view selects every summary column: made again with the new ones
            client.command(sql.DROP_SUMMARY_FEED, {})
        client.command(sql.SUMMARY_FEED_DDL, {})
        self._add_projections()
        self._set_retention(sql.retention_ttl(retention_days, project_days or {}))
        self._loaded = {r["key"] for r in client.rows(sql.LOADED_KEYS, {})}
        self.objects_loaded = 0
        self.deletions_applied = 0

    def _add_columns(self) -> bool:
        """Add the declared columns the tables lack (made by an earlier version); whether the summaries had any.
        Run at start, before any load; replicas starting together add the same columns (IF NOT EXISTS)."""
        existing = {(r["table"], r["name"]) for r in self._client.rows(sql.TABLE_COLUMNS, {})}
        added_summary = False
        for table, name, kind in sql.declared_columns():
            if (table, name) not in existing:
                self._client.command(sql.add_column(table, name, kind), {})
                added_summary |= table == sql.SUMMARY_TABLE
        return added_summary

    def _add_projections(self) -> None:
        """The projections (`sql.projections`: the spans' hourly sums, the summaries by start) on tables made
        before them, computed for the parts they hold by a mutation (a server runs it in the background;
        until a part has a projection, queries read that part's rows)."""
        for table, name, statements in sql.projections():
            if not self._client.rows(sql.PROJECTION_EXISTS, {"table": table, "name": name})[0]["n"]:
                for statement in statements:
                    self._client.command(statement, {})

    def _set_retention(self, ttl: str) -> None:
        """The tables' TTL, changed only when the policy differs from the one last set (a change rewrites
        the stored parts: ClickHouse applies a modified TTL to the rows it holds)."""
        if self._client.rows(sql.SETTING, {"name": _RETENTION})[0]["value"] == ttl:
            return
        for table in sql.RETAINED_TABLES:
            self._client.command(sql.set_ttl(table, ttl), {})
        self._client.command(sql.RECORD_SETTING, {"name": _RETENTION, "value": ttl, "ns": time.time_ns()})

    @property
    def loaded(self) -> frozenset[str]:
        return frozenset(self._loaded)

    def refresh(self) -> None:
        with self._lock:
            self._refresh()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Everything stored so far loaded, then no load until the block ends (a deletion changes the files
        and the tables in it)."""
        with self._lock:
            self._refresh()
            yield

    def _refresh(self) -> None:
        listed = list(map(stored_object, self._source.list_keys()))
        for key, deletion in sorted(self._source.deletions().items()):
            if key not in self._loaded:
                self._apply_deletion(key, deletion)
        new = [o for o in listed if o is not None and o.key not in self._loaded]
        order = {name: n for n, name in enumerate(sql.LOAD_ORDER)}
        for obj in sorted(new, key=lambda o: (order[o.dataset], o.key)):
            self._load(obj)

    def _apply_deletion(self, key: str, deletion: DeletionManifest) -> None:
        """A session deleted from the bucket: its traces' rows and its orphaned content out of the tables."""
        if deletion.trace_ids:
            traces = {"project": deletion.project, "trace_ids": list(deletion.trace_ids)}
            for table in sql.TRACE_TABLES:
                self._client.command(sql.delete_traces(table), traces)
        for removed in deletion.removed_content:
            params = {
                "project": removed.project,
                "date": dt.date.fromisoformat(removed.date),
                "hashes": list(removed.hashes),
            }
            self._client.command(sql.DELETE_CONTENT, params)
        self._client.command(sql.RECORD_LOADED, {"key": key, "dataset": "deletion", "ns": time.time_ns()})
        self._loaded.add(key)
        self.deletions_applied += 1

    def _load(self, obj: StoredObject) -> None:
        if not self._source.loaded_as(obj.key, self._loaded):
            reader, params = self._source.reader(obj.key, sql.structure(sql.DATASET_COLUMNS[obj.dataset]))
            self._client.command(
                sql.load(obj.dataset, reader),
                {**params, "project": obj.project, "date": obj.date},
                {"insert_deduplication_token": obj.key},
                self._source.payload(obj.key),
            )
            self.objects_loaded += 1
        self._client.command(sql.RECORD_LOADED, {"key": obj.key, "dataset": obj.dataset, "ns": time.time_ns()})
        self._loaded.add(obj.key)
