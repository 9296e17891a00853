from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StoredObject(_message.Message):
    __slots__ = ("key", "dataset", "project", "date", "rows", "bytes", "sha256")
    KEY_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    DATE_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    key: str
    dataset: str
    project: str
    date: str
    rows: int
    bytes: int
    sha256: bytes
    def __init__(self, key: _Optional[str] = ..., dataset: _Optional[str] = ..., project: _Optional[str] = ..., date: _Optional[str] = ..., rows: _Optional[int] = ..., bytes: _Optional[int] = ..., sha256: _Optional[bytes] = ...) -> None: ...

class FlushManifest(_message.Message):
    __slots__ = ("collector_id", "wal_start", "wal_end", "schema_version", "objects", "created_unix_ns")
    COLLECTOR_ID_FIELD_NUMBER: _ClassVar[int]
    WAL_START_FIELD_NUMBER: _ClassVar[int]
    WAL_END_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    collector_id: str
    wal_start: int
    wal_end: int
    schema_version: str
    objects: _containers.RepeatedCompositeFieldContainer[StoredObject]
    created_unix_ns: int
    def __init__(self, collector_id: _Optional[str] = ..., wal_start: _Optional[int] = ..., wal_end: _Optional[int] = ..., schema_version: _Optional[str] = ..., objects: _Optional[_Iterable[_Union[StoredObject, _Mapping]]] = ..., created_unix_ns: _Optional[int] = ...) -> None: ...

class CompactionManifest(_message.Message):
    __slots__ = ("replaces", "objects", "schema_version", "node", "created_unix_ns")
    REPLACES_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    replaces: _containers.RepeatedScalarFieldContainer[str]
    objects: _containers.RepeatedCompositeFieldContainer[StoredObject]
    schema_version: str
    node: str
    created_unix_ns: int
    def __init__(self, replaces: _Optional[_Iterable[str]] = ..., objects: _Optional[_Iterable[_Union[StoredObject, _Mapping]]] = ..., schema_version: _Optional[str] = ..., node: _Optional[str] = ..., created_unix_ns: _Optional[int] = ...) -> None: ...

class LegacyObject(_message.Message):
    __slots__ = ("object", "collector_id", "wal_start", "wal_end")
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    COLLECTOR_ID_FIELD_NUMBER: _ClassVar[int]
    WAL_START_FIELD_NUMBER: _ClassVar[int]
    WAL_END_FIELD_NUMBER: _ClassVar[int]
    object: StoredObject
    collector_id: str
    wal_start: int
    wal_end: int
    def __init__(self, object: _Optional[_Union[StoredObject, _Mapping]] = ..., collector_id: _Optional[str] = ..., wal_start: _Optional[int] = ..., wal_end: _Optional[int] = ...) -> None: ...

class LegacyAdoption(_message.Message):
    __slots__ = ("objects", "created_unix_ns")
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    objects: _containers.RepeatedCompositeFieldContainer[LegacyObject]
    created_unix_ns: int
    def __init__(self, objects: _Optional[_Iterable[_Union[LegacyObject, _Mapping]]] = ..., created_unix_ns: _Optional[int] = ...) -> None: ...

class SessionTombstone(_message.Message):
    __slots__ = ("project", "session_sha256", "trace_ids", "deleted_unix_ns", "node", "reopens")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    SESSION_SHA256_FIELD_NUMBER: _ClassVar[int]
    TRACE_IDS_FIELD_NUMBER: _ClassVar[int]
    DELETED_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    REOPENS_FIELD_NUMBER: _ClassVar[int]
    project: str
    session_sha256: bytes
    trace_ids: _containers.RepeatedScalarFieldContainer[str]
    deleted_unix_ns: int
    node: str
    reopens: str
    def __init__(self, project: _Optional[str] = ..., session_sha256: _Optional[bytes] = ..., trace_ids: _Optional[_Iterable[str]] = ..., deleted_unix_ns: _Optional[int] = ..., node: _Optional[str] = ..., reopens: _Optional[str] = ...) -> None: ...

class Rewrite(_message.Message):
    __slots__ = ("replaces", "object")
    REPLACES_FIELD_NUMBER: _ClassVar[int]
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    replaces: str
    object: StoredObject
    def __init__(self, replaces: _Optional[str] = ..., object: _Optional[_Union[StoredObject, _Mapping]] = ...) -> None: ...

class RemovedContent(_message.Message):
    __slots__ = ("project", "date", "hashes")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    DATE_FIELD_NUMBER: _ClassVar[int]
    HASHES_FIELD_NUMBER: _ClassVar[int]
    project: str
    date: str
    hashes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, project: _Optional[str] = ..., date: _Optional[str] = ..., hashes: _Optional[_Iterable[str]] = ...) -> None: ...

class DeletionManifest(_message.Message):
    __slots__ = ("project", "session_sha256", "trace_ids", "deleted_unix_ns", "rewrites", "removed_content", "spans_deleted", "content_items_deleted", "scores_deleted", "schema_version", "node", "created_unix_ns")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    SESSION_SHA256_FIELD_NUMBER: _ClassVar[int]
    TRACE_IDS_FIELD_NUMBER: _ClassVar[int]
    DELETED_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    REWRITES_FIELD_NUMBER: _ClassVar[int]
    REMOVED_CONTENT_FIELD_NUMBER: _ClassVar[int]
    SPANS_DELETED_FIELD_NUMBER: _ClassVar[int]
    CONTENT_ITEMS_DELETED_FIELD_NUMBER: _ClassVar[int]
    SCORES_DELETED_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    project: str
    session_sha256: bytes
    trace_ids: _containers.RepeatedScalarFieldContainer[str]
    deleted_unix_ns: int
    rewrites: _containers.RepeatedCompositeFieldContainer[Rewrite]
    removed_content: _containers.RepeatedCompositeFieldContainer[RemovedContent]
    spans_deleted: int
    content_items_deleted: int
    scores_deleted: int
    schema_version: str
    node: str
    created_unix_ns: int
    def __init__(self, project: _Optional[str] = ..., session_sha256: _Optional[bytes] = ..., trace_ids: _Optional[_Iterable[str]] = ..., deleted_unix_ns: _Optional[int] = ..., rewrites: _Optional[_Iterable[_Union[Rewrite, _Mapping]]] = ..., removed_content: _Optional[_Iterable[_Union[RemovedContent, _Mapping]]] = ..., spans_deleted: _Optional[int] = ..., content_items_deleted: _Optional[int] = ..., scores_deleted: _Optional[int] = ..., schema_version: _Optional[str] = ..., node: _Optional[str] = ..., created_unix_ns: _Optional[int] = ...) -> None: ...
