"""Feeds the ClickHouse tables from the stored Parquet objects, each object exactly once.

An object is named by its key in the dataset layout (`<dataset>/project=<p>/date=<d>/<name>`, the
same in a data dir, a bucket and a bucket's mirror), and that key is everything the load needs:

1. `INSERT … SELECT … FROM file(…)` / `s3(…)` with `insert_deduplication_token` = the key, so a load
   retried after a crash (the rows stored, the record below not) is dropped by the table;
2. then the key is recorded in `loaded_objects`.

A refresh loads the keys listed and not recorded, so a crash at any point loads nothing twice and
skips nothing. Objects are immutable: a key never changes content. A compacted file of a data dir
(its metadata names the files it replaced) whose inputs were all loaded is recorded without a load.
Objects that disappear (retention, deletion) are not removed from the tables: retention there is
the tables' TTL (docs/scale.md).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pyarrow.parquet as pq

from llmscope_collector.query.clickhouse import sql
from llmscope_collector.query.clickhouse.client import ClickHouseClient
from llmscope_collector.storage.layout import partition_of_key

log = logging.getLogger(__name__)
COMPACTED_FROM = b"llmscope.compacted_from"


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

    def replaced(self, key: str) -> set[str] | None:
        """The keys a compacted object replaced, or None for a plain object."""
        ...

    def payload(self, key: str) -> bytes | None:
        """The object's bytes when the reader is `input()` (sent with the statement), else None."""
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

    def replaced(self, key: str) -> set[str] | None:
        try:
            meta = pq.read_metadata(self._root / key).metadata or {}
        except OSError:
            return None
        raw = meta.get(COMPACTED_FROM)
        if raw is None:
            return None
        names = json.loads(raw)
        if not isinstance(names, list):  # span compaction records only how many files it merged
            return None  # inputs unknown: load it (its spans collapse with their earlier copies, same key)
        directory = key.rsplit("/", 1)[0]
        return {f"{directory}/{name}" for name in names}

    def payload(self, key: str) -> bytes | None:
        return None


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
        self._base = f"{endpoint.rstrip('/')}/{bucket}/" + (f"{prefix.strip('/')}/" if prefix.strip("/") else "")
        self._key_id, self._secret = key_id, secret

    def list_keys(self) -> Iterator[str]:
        for dataset in sql.TABLES:
            for info in self._objects.list(f"{dataset}/"):
                yield info.key

    def reader(self, key: str, structure: str) -> tuple[str, dict[str, Any]]:
        text = "s3({url:String}, {key_id:String}, {secret:String}, 'Parquet', {structure:String})"
        return text, {"url": self._base + key, "key_id": self._key_id, "secret": self._secret, "structure": structure}

    def replaced(self, key: str) -> set[str] | None:
        return None  # no compaction in cluster mode

    def payload(self, key: str) -> bytes | None:
        return None


def _subdirs(path: Path, prefix: str) -> list[Path]:
    return [Path(e.path) for e in _entries(path) if e.name.startswith(prefix) and e.is_dir()]


def _entries(path: Path | str) -> list[os.DirEntry[str]]:
    try:
        return list(os.scandir(path))
    except FileNotFoundError:
        return []


class Loader:
    """Owns the tables of one ClickHouse database; `refresh()` loads what the source holds and they do not."""

    def __init__(self, client: ClickHouseClient, source: ObjectSource, *, ttl_days: int = 0) -> None:
        self._client = client
        self._source = source
        self._lock = threading.Lock()
        for statement in sql.create_tables(ttl_days):
            client.command(statement, {})
        self._loaded = {r["key"] for r in client.rows(sql.LOADED_KEYS, {})}
        self.objects_loaded = 0

    @property
    def loaded(self) -> frozenset[str]:
        return frozenset(self._loaded)

    def refresh(self) -> None:
        with self._lock:
            listed = map(stored_object, self._source.list_keys())
            new = [o for o in listed if o is not None and o.key not in self._loaded]
            order = {name: n for n, name in enumerate(sql.LOAD_ORDER)}
            for obj in sorted(new, key=lambda o: (order[o.dataset], o.key)):
                self._load(obj)

    def _load(self, obj: StoredObject) -> None:
        replaced = self._source.replaced(obj.key)
        if replaced is None or not replaced <= self._loaded:
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
