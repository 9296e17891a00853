"""Object storage (S3 and compatibles) as the system of record, through `obstore`.

Why obstore: it is a maintained client (Rust `object_store`, used by many Arrow-based engines) that
sends a create-only PUT (`If-None-Match: *`, `mode="create"`) and reads the standard `AWS_*`
variables. Measured against the Ceph RADOS Gateway on loopback (200 kB objects, docs/scale.md):
a PUT took 6.7 ms with obstore, 51 ms with boto3 and 154 ms with pyarrow's S3FileSystem, which has
no conditional PUT at all.

Keys mirror the on-disk layout under the store's prefix (`spans/project=<p>/date=<d>/<name>`), so
the objects the manifests show (storage.manifests) copied to a disk are a data dir: the query side
reads such a local mirror with the same code (storage.mirror).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from llmscope_collector.durable_io import DEFAULT_ENCODING, Encoding, write_parquet

if TYPE_CHECKING:
    from obstore import PutMode
    from obstore.store import S3Store

_URL_RE = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(?P<prefix>[A-Za-z0-9._/=-]*))?$")


class StorageUrlError(ValueError):
    """The storage setting is not an `s3://bucket[/prefix]` URL."""


@dataclasses.dataclass(frozen=True)
class StorageUrl:
    """`s3://bucket/prefix`: where every dataset of a cluster lives."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> StorageUrl:
        match = _URL_RE.match(url)
        if match is None:
            raise StorageUrlError(f"storage must look like s3://bucket/prefix, got {url!r}")
        return cls(match["bucket"], (match["prefix"] or "").strip("/"))

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


@dataclasses.dataclass(frozen=True)
class Versioned:
    """An object's content and the ETag a conditional write must name to replace it."""

    data: bytes
    etag: str


def _bare_etag(etag: str | None) -> str:
    if not etag:
        raise RuntimeError("the object store returned no ETag: conditional writes need one")
    return etag.strip('"')


@dataclasses.dataclass(frozen=True)
class ObjectInfo:
    key: str  # relative to the store's prefix
    size: int


class ObjectStore:
    """The few operations the collector needs: create-only PUT, GET, LIST, DELETE (thread-safe)."""

    def __init__(self, url: StorageUrl, store: S3Store | None = None) -> None:
        self.url = url
        self._store = store or _s3_store(url)

    def put_new(self, key: str, data: bytes) -> bool:
        """Create `key` with `data` unless it exists; True when this call created it.

        The conditional PUT is what makes a replayed flush a no-op: the object is either absent
        (this PUT stores it, whole) or present (from an earlier attempt with the same key)."""
        import obstore
        from obstore.exceptions import AlreadyExistsError, PreconditionError

        try:
            obstore.put(self._store, key, data, mode="create")
        except (AlreadyExistsError, PreconditionError):
            return False
        return True

    def put(self, key: str, data: bytes) -> None:
        """Overwrite `key` (only for objects a single writer owns, such as a collector's cursor)."""
        import obstore

        obstore.put(self._store, key, data)

    def get(self, key: str) -> bytes:
        import obstore

        return bytes(obstore.get(self._store, key).bytes())

    def get_versioned(self, key: str) -> Versioned | None:
        """The object's bytes and ETag, or None when it does not exist (for `put_if`)."""
        import obstore

        try:
            result = obstore.get(self._store, key)
        except FileNotFoundError:
            return None
        return Versioned(bytes(result.bytes()), _bare_etag(result.meta["e_tag"]))

    def put_if(self, key: str, data: bytes, etag: str | None) -> str | None:
        """Compare-and-swap: write `data` if the object is still at `etag` (absent when None).

        Returns the new ETag, or None when another writer got there first (HTTP 412, or the object
        exists on a create). The ETag is sent without its quotes: the Ceph RADOS Gateway compares
        `If-Match` with the bare value and refuses the quoted form; S3 and MinIO accept both."""
        import obstore
        from obstore.exceptions import AlreadyExistsError, PreconditionError

        mode: PutMode = "create" if etag is None else {"e_tag": etag}
        try:
            result = obstore.put(self._store, key, data, mode=mode)
        except (AlreadyExistsError, PreconditionError):
            return None
        return _bare_etag(result["e_tag"])

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object under `prefix` (relative to the store's prefix), in key order per page."""
        import obstore

        for page in obstore.list(self._store, prefix or None, chunk_size=1000):
            for meta in page:
                yield ObjectInfo(meta["path"], int(meta["size"]))

    def delete(self, key: str) -> None:
        import obstore

        obstore.delete(self._store, key)


def _s3_store(url: StorageUrl) -> S3Store:
    """A store configured from the standard AWS variables (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...);
    plain-HTTP endpoints (a gateway on loopback) are allowed when the endpoint says http://."""
    import os

    from obstore.store import S3Store

    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or ""
    return S3Store(
        url.bucket,
        prefix=url.prefix or None,
        client_options={"allow_http": endpoint.startswith("http://"), "timeout": "30s"},
    )


def parquet_bytes(table: pa.Table, *, row_group_size: int, encoding: Encoding = DEFAULT_ENCODING) -> bytes:
    """The Parquet file of `table` as bytes (the same encoding as the files on disk)."""
    return parquet_bytes_of([table], table.schema, row_group_size=row_group_size, encoding=encoding)


def parquet_bytes_of(
    parts: Iterable[pa.Table], schema: pa.Schema, *, row_group_size: int, encoding: Encoding = DEFAULT_ENCODING
) -> bytes:
    """`parquet_bytes` of the concatenation of `parts`, each encoded as it comes (only the encoded
    file is held whole)."""
    sink = pa.BufferOutputStream()
    write_parquet(parts, schema, sink, row_group_size=row_group_size, encoding=encoding)
    return bytes(sink.getvalue())


def read_parquet(data: bytes, schema: pa.Schema | None = None) -> pa.Table:
    """A Parquet object's rows; with `schema`, read as `pq.read_table` reads a data dir's file with it (its
    columns only, in its types: a span file of a later version carries derived columns a reader may not ask for)."""
    return pq.read_table(pa.BufferReader(data), schema=schema)
