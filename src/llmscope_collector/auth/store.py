"""Projects and API keys, durable in one small JSON file under the data dir.

Why a JSON file: a handful of records, written only by admin calls, read once at start into an
in-memory index that every ingest request checks without I/O. Writes go to a temp file that is
fsynced and renamed over the old one, so a crash leaves either the old or the new state, never
half of one. `last_used_at` changes on every request, so it is kept in memory and persisted with
the next admin change and at shutdown rather than on the ingest path.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from pathlib import Path

import msgspec

from llmscope_collector.auth import keys
from llmscope_collector.file_modes import make_private_dir
from llmscope_collector.storage.layout import valid_project

DEFAULT_PROJECT = "default"
_FORMAT_VERSION = 1


class ProjectRecord(msgspec.Struct, kw_only=True):
    name: str
    created_at: dt.datetime
    rate_limit_spans_per_s: float | None = None
    rate_limit_burst: int | None = None


class KeyRecord(msgspec.Struct, kw_only=True):
    id: str
    project: str
    name: str
    digest: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None


class _StoreFile(msgspec.Struct, kw_only=True):
    version: int = _FORMAT_VERSION
    projects: list[ProjectRecord] = msgspec.field(default_factory=list)
    keys: list[KeyRecord] = msgspec.field(default_factory=list)


class AuthStoreError(Exception):
    """Base for store errors the admin API maps to 4xx."""


class InvalidName(AuthStoreError):
    pass


class AlreadyExists(AuthStoreError):
    pass


class UnknownProject(AuthStoreError):
    pass


class UnknownKey(AuthStoreError):
    pass


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class AuthStore:
    """Thread-safe projects/keys registry; `verify` is the hot path and does no I/O."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._state = self._load()
        self._projects = {p.name: p for p in self._state.projects}
        self._active = {k.id: k for k in self._state.keys if k.revoked_at is None}
        if DEFAULT_PROJECT not in self._projects:
            with self._lock:
                self._add_project(ProjectRecord(name=DEFAULT_PROJECT, created_at=_now()))
                self._save()

    def _load(self) -> _StoreFile:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return _StoreFile()
        try:
            return msgspec.json.decode(raw, type=_StoreFile)
        except msgspec.ValidationError as exc:
            raise ValueError(f"{self.path} is not a valid llmscope auth file: {exc}") from None

    def _save(self) -> None:
        """Atomic replace: temp file, fsync, rename, fsync the directory. Caller holds the lock."""
        make_private_dir(self.path.parent)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, msgspec.json.format(msgspec.json.encode(self._state)))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _add_project(self, record: ProjectRecord) -> None:
        self._state.projects.append(record)
        self._projects[record.name] = record

    # -- projects ---------------------------------------------------------------------------

    def create_project(
        self, name: str, *, rate_limit_spans_per_s: float | None = None, rate_limit_burst: int | None = None
    ) -> ProjectRecord:
        if not valid_project(name):
            raise InvalidName(f"project name {name!r} must be 1-64 characters of A-Z a-z 0-9 _ -")
        with self._lock:
            if name in self._projects:
                raise AlreadyExists(f"project {name!r} already exists")
            record = ProjectRecord(
                name=name,
                created_at=_now(),
                rate_limit_spans_per_s=rate_limit_spans_per_s,
                rate_limit_burst=rate_limit_burst,
            )
            self._add_project(record)
            self._save()
            return record

    def set_rate_limit(self, name: str, spans_per_s: float | None, burst: int | None) -> ProjectRecord:
        with self._lock:
            record = self._project(name)
            record.rate_limit_spans_per_s = spans_per_s
            record.rate_limit_burst = burst
            self._save()
            return record

    def get_project(self, name: str) -> ProjectRecord:
        with self._lock:
            return self._project(name)

    def projects(self) -> list[ProjectRecord]:
        with self._lock:
            return sorted(self._projects.values(), key=lambda p: p.name)

    def rate_limit(self, name: str) -> tuple[float | None, int | None]:
        """The project's own limit, `(None, None)` when it follows the global one (or is unknown)."""
        record = self._projects.get(name)
        if record is None:
            return None, None
        return record.rate_limit_spans_per_s, record.rate_limit_burst

    def _project(self, name: str) -> ProjectRecord:
        record = self._projects.get(name)
        if record is None:
            raise UnknownProject(f"project {name!r} does not exist")
        return record

    # -- keys -------------------------------------------------------------------------------

    def create_key(self, project: str, name: str = "") -> tuple[KeyRecord, str]:
        """A new key for `project`; the plain key is returned here once and never again."""
        with self._lock:
            self._project(project)
            key_id, key = keys.new_api_key()
            while key_id in self._active or any(k.id == key_id for k in self._state.keys):
                key_id, key = keys.new_api_key()
            record = KeyRecord(id=key_id, project=project, name=name, digest=keys.digest(key), created_at=_now())
            self._state.keys.append(record)
            self._active[key_id] = record
            self._save()
            return record, key

    def keys_of(self, project: str) -> list[KeyRecord]:
        with self._lock:
            self._project(project)
            return [k for k in self._state.keys if k.project == project]

    def revoke_key(self, project: str, key_id: str) -> KeyRecord:
        """Revocation takes effect for the next request on every receiver (they share this index)."""
        with self._lock:
            self._project(project)
            record = next((k for k in self._state.keys if k.id == key_id and k.project == project), None)
            if record is None:
                raise UnknownKey(f"project {project!r} has no key {key_id!r}")
            if record.revoked_at is None:
                record.revoked_at = _now()
                self._active.pop(key_id, None)
                self._save()
            return record

    def verify(self, key: str) -> str | None:
        """The project of an active key, else None. Constant-time digest comparison."""
        key_id = keys.key_id_of(key)
        record = self._active.get(key_id) if key_id else None
        if record is None or not keys.same_digest(key, record.digest):
            return None
        record.last_used_at = _now()
        return record.project

    def close(self) -> None:
        """Persist in-memory `last_used_at` values."""
        with self._lock:
            self._save()
