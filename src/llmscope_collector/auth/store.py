"""Projects and API keys (as digests), durable in one small JSON document.

Why a JSON document: a handful of records, written only by admin calls, read into an in-memory
index that every ingest request checks without I/O. On a data dir it is a file replaced
atomically (temp file, fsync, rename), so a crash leaves either the old or the new state, never
half of one. In cluster mode it is an object in the bucket that every replica shares
(`control/auth.json`, changed with conditional writes: control.document) and re-reads every
`control_refresh_s`. `last_used_at` changes on every request, so it is kept in memory and
persisted with the next admin change and at shutdown rather than on the ingest path.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

import msgspec

from llmscope_collector.auth import keys
from llmscope_collector.file_modes import make_private_dir
from llmscope_collector.storage.layout import valid_project

DEFAULT_PROJECT = "default"
_FORMAT_VERSION = 1
R = TypeVar("R")


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


class StoreFile(msgspec.Struct, kw_only=True):
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


class AuthBackend(Protocol):
    """Where the document lives: `update` applies a change to the latest version and stores it."""

    def load(self) -> StoreFile: ...

    def update(self, change: Callable[[StoreFile], R]) -> tuple[StoreFile, R]: ...


class FileBackend:
    """The document as one file under the data dir (the embedded default; one process owns it)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> StoreFile:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return StoreFile()
        try:
            return msgspec.json.decode(raw, type=StoreFile)
        except msgspec.ValidationError as exc:
            raise ValueError(f"{self.path} is not a valid llmscope auth file: {exc}") from None

    def update(self, change: Callable[[StoreFile], R]) -> tuple[StoreFile, R]:
        state = self.load()
        result = change(state)
        self._save(state)
        return state, result

    def _save(self, state: StoreFile) -> None:
        """Atomic replace: temp file, fsync, rename, fsync the directory."""
        make_private_dir(self.path.parent)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, msgspec.json.format(msgspec.json.encode(state)))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _project_in(state: StoreFile, name: str) -> ProjectRecord:
    record = next((p for p in state.projects if p.name == name), None)
    if record is None:
        raise UnknownProject(f"project {name!r} does not exist")
    return record


class AuthStore:
    """Thread-safe projects/keys registry; `verify` is the hot path and does no I/O.

    Every change is a function of the stored document (`_change`), so the same code serves one
    process with a file and many replicas sharing a bucket object (where it may run again on a
    newer version when another replica wrote first)."""

    def __init__(self, path: Path | None = None, *, backend: AuthBackend | None = None) -> None:
        if backend is None:
            assert path is not None, "AuthStore needs a file path or a backend"
            backend = FileBackend(path)
        self._backend = backend
        self._lock = threading.Lock()
        self._last_used: dict[str, dt.datetime] = {}
        self._changes = 0  # this store's own writes: a reload read before one of them is stale
        self._install(backend.load())
        if DEFAULT_PROJECT not in self._projects:
            self._change(_ensure_default)

    def _install(self, state: StoreFile) -> None:
        """Make `state` the in-memory index (new dicts bound at once: `verify` reads them unlocked)."""
        self._merge_last_used(state)
        self._state = state
        self._projects = {p.name: p for p in state.projects}
        self._active = {k.id: k for k in state.keys if k.revoked_at is None}

    def _merge_last_used(self, state: StoreFile) -> None:
        for record in state.keys:
            seen = self._last_used.get(record.id)
            if seen is not None and (record.last_used_at is None or seen > record.last_used_at):
                record.last_used_at = seen

    def _change(self, change: Callable[[StoreFile], R]) -> R:
        def apply(state: StoreFile) -> R:
            self._merge_last_used(state)
            return change(state)

        with self._lock:
            state, result = self._backend.update(apply)
            self._changes += 1
            self._install(state)
        return result

    def reload(self) -> None:
        """Re-read the document (cluster mode: other replicas' changes become visible here). A copy
        read while this store wrote is dropped: it may predate that write (the next reload has it)."""
        changes = self._changes
        state = self._backend.load()
        with self._lock:
            if changes == self._changes:
                self._install(state)

    # -- projects ---------------------------------------------------------------------------

    def create_project(
        self, name: str, *, rate_limit_spans_per_s: float | None = None, rate_limit_burst: int | None = None
    ) -> ProjectRecord:
        if not valid_project(name):
            raise InvalidName(f"project name {name!r} must be 1-64 characters of A-Z a-z 0-9 _ -")

        def create(state: StoreFile) -> ProjectRecord:
            if any(p.name == name for p in state.projects):
                raise AlreadyExists(f"project {name!r} already exists")
            record = ProjectRecord(
                name=name,
                created_at=_now(),
                rate_limit_spans_per_s=rate_limit_spans_per_s,
                rate_limit_burst=rate_limit_burst,
            )
            state.projects.append(record)
            return record

        return self._change(create)

    def set_rate_limit(self, name: str, spans_per_s: float | None, burst: int | None) -> ProjectRecord:
        def change(state: StoreFile) -> ProjectRecord:
            record = _project_in(state, name)
            record.rate_limit_spans_per_s = spans_per_s
            record.rate_limit_burst = burst
            return record

        return self._change(change)

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

        def create(state: StoreFile) -> tuple[KeyRecord, str]:
            _project_in(state, project)
            taken = {k.id for k in state.keys}
            key_id, key = keys.new_api_key()
            while key_id in taken:
                key_id, key = keys.new_api_key()
            record = KeyRecord(id=key_id, project=project, name=name, digest=keys.digest(key), created_at=_now())
            state.keys.append(record)
            return record, key

        return self._change(create)

    def keys_of(self, project: str) -> list[KeyRecord]:
        with self._lock:
            self._project(project)
            return [k for k in self._state.keys if k.project == project]

    def revoke_key(self, project: str, key_id: str) -> KeyRecord:
        """Revocation takes effect for the next request on every receiver sharing this index (in
        cluster mode, on other replicas at their next refresh)."""

        def revoke(state: StoreFile) -> KeyRecord:
            _project_in(state, project)
            record = next((k for k in state.keys if k.id == key_id and k.project == project), None)
            if record is None:
                raise UnknownKey(f"project {project!r} has no key {key_id!r}")
            if record.revoked_at is None:
                record.revoked_at = _now()
            return record

        with self._lock:
            self._project(project)
            known = any(k.id == key_id and k.project == project for k in self._state.keys)
            if known and self._active.get(key_id) is None:
                return next(k for k in self._state.keys if k.id == key_id)  # already revoked: no write
        return self._change(revoke)

    def verify(self, key: str) -> str | None:
        """The project of an active key, else None. Constant-time digest comparison."""
        key_id = keys.key_id_of(key)
        record = self._active.get(key_id) if key_id else None
        if record is None or not keys.same_digest(key, record.digest):
            return None
        now = _now()
        record.last_used_at = now
        self._last_used[record.id] = now
        return record.project

    def close(self) -> None:
        """Persist in-memory `last_used_at` values."""
        self._change(lambda _state: None)


def _ensure_default(state: StoreFile) -> None:
    if not any(p.name == DEFAULT_PROJECT for p in state.projects):
        state.projects.append(ProjectRecord(name=DEFAULT_PROJECT, created_at=_now()))
