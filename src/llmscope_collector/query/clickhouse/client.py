"""Two ways to run ClickHouse SQL with server-side `{name:Type}` parameters: a server over HTTP, or chdb.

Both return result rows as Python values through Arrow (Decimal for decimals, lists, dicts for tuples),
the same types DuckDB's Python client gives, so the rows feed the same response builders.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import re
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from llmscope_collector.query.backend import QueryFailed


class EngineUrlError(ValueError):
    """A `--query-engine` value that names no engine this build can reach."""


class ClickHouseClient(Protocol):
    """Runs one statement; `settings` are per-statement engine settings (e.g. the deduplication token)."""

    def rows(self, query: str, params: Mapping[str, Any]) -> list[dict[str, Any]]: ...

    def command(
        self,
        query: str,
        params: Mapping[str, Any],
        settings: Mapping[str, str] | None = None,
        data: bytes | None = None,
    ) -> None:
        """Run `query`; `data` is the body its `input()` table function reads (a server over HTTP only)."""
        ...

    def use(self, database: str) -> None:
        """Create `database` (a validated name) if needed and run every later statement in it."""
        ...

    def close(self) -> None: ...


_DATABASE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def _py(value: Any) -> Any:
    """NaN (an empty quantile) as None, as DuckDB's NULL; nested values alike."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, list):
        return [_py(v) for v in value]
    return value


def arrow_rows(table: pa.Table) -> list[dict[str, Any]]:
    return [{k: _py(v) for k, v in row.items()} for row in table.to_pylist()]


def _quoted(value: Any) -> str:
    """A value inside an array parameter: ClickHouse literal syntax."""
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return param_text(value)


def _escaped(text: str) -> str:
    """The escaping of a parameter value as sent over HTTP (`param_<name>`): TSV rules."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def param_text(value: Any) -> str:
    """A bound value as the text ClickHouse parses for a `{name:Type}` parameter."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_quoted(v) for v in value) + "]"
    return _escaped(str(value))


class ChdbClient:
    """The ClickHouse engine in this process (chdb): for tests and single-machine use.

    chdb runs one engine per process, so one client per process; a lock serializes statements (the engine
    is not re-entrant through this API). It has no per-statement settings channel, so `command` sets them
    for the session, runs the statement and resets them, all under the lock.
    """

    def __init__(self, path: Path) -> None:
        from chdb import session

        path.mkdir(parents=True, exist_ok=True)
        make_session: Any = session.Session  # chdb is untyped
        self._session: Any = make_session(str(path))
        self._lock = threading.Lock()

    def rows(self, query: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        with self._lock, _engine_errors(RuntimeError):  # chdb's ChdbError is a RuntimeError
            result = self._session.query(query, "ArrowStream", params=_texts(params))
            data = result.bytes()
        if not data:
            return []
        return arrow_rows(pa.ipc.open_stream(data).read_all())

    def command(
        self,
        query: str,
        params: Mapping[str, Any],
        settings: Mapping[str, str] | None = None,
        data: bytes | None = None,
    ) -> None:
        if data is not None:
            raise ValueError("chdb reads files itself (file(), s3()): it takes no uploaded body")
        with self._lock, _engine_errors(RuntimeError):
            for name, value in (settings or {}).items():
                self._session.query(f"SET {name} = {_quoted(value)}")  # names are ours; the value is quoted
            try:
                self._session.query(query, "Null", params=_texts(params))
            finally:
                for name in settings or {}:
                    self._session.query(f"SET {name} = DEFAULT")

    def use(self, database: str) -> None:
        with self._lock:
            self._session.query(f"CREATE DATABASE IF NOT EXISTS {database}")  # validated name (connect)
            self._session.query(f"USE {database}")

    def close(self) -> None:
        self._session.close()


@contextlib.contextmanager
def _engine_errors(kind: type[Exception]) -> Iterator[None]:
    """The engine's own errors (`kind`) as `QueryFailed`, the one failure type of the query seam."""
    try:
        yield
    except kind as exc:
        raise QueryFailed(str(exc)) from exc


def _texts(params: Mapping[str, Any]) -> dict[str, str]:
    return {name: param_text(value) for name, value in params.items()}


class HttpClient:
    """A ClickHouse server over HTTP (`clickhouse-connect`), parameters bound server-side."""

    def __init__(self, host: str, port: int, database: str, username: str, password: str, secure: bool) -> None:
        import clickhouse_connect
        from clickhouse_connect.driver.exceptions import Error

        self._errors: type[Exception] = Error
        self._client = clickhouse_connect.get_client(
            host=host, port=port, database=database, username=username, password=password, secure=secure
        )
        self._lock = threading.Lock()  # a clickhouse-connect client runs one query at a time

    def rows(self, query: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        with self._lock, _engine_errors(self._errors):
            table = self._client.query_arrow(query, parameters=dict(params), use_strings=True)
        return arrow_rows(table)

    def command(
        self,
        query: str,
        params: Mapping[str, Any],
        settings: Mapping[str, str] | None = None,
        data: bytes | None = None,
    ) -> None:
        with self._lock, _engine_errors(self._errors):
            self._client.command(query, parameters=dict(params), data=data, settings=dict(settings or {}))

    def use(self, database: str) -> None:
        with self._lock:
            self._client.command(f"CREATE DATABASE IF NOT EXISTS {database}")  # validated name (connect)
            self._client.database = database

    def close(self) -> None:
        self._client.close()


def connect(url: str, data_dir: Path) -> tuple[ClickHouseClient, str]:
    """The client and database of a `--query-engine` URL.

    - `clickhouse://[user[:password]@]host[:8123]/db` (`clickhouses://` for TLS, port 8443);
    - `chdb://[/absolute/dir]`: the embedded engine, its tables under that dir (default `<data dir>/chdb`).
    """
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme == "chdb":
        path = Path(parsed.path) if parsed.path not in ("", "/") else data_dir / "chdb"
        return ChdbClient(path), "llmscope"
    if parsed.scheme in ("clickhouse", "clickhouses"):
        if not parsed.hostname:
            raise EngineUrlError(f"{url!r}: a ClickHouse URL needs a host (clickhouse://host:8123/db)")
        secure = parsed.scheme == "clickhouses"
        database = parsed.path.strip("/") or "llmscope"
        if not _DATABASE_RE.match(database):
            raise EngineUrlError(f"{url!r}: the database name must be letters, digits and _")
        client = HttpClient(
            parsed.hostname,
            parsed.port or (8443 if secure else 8123),
            "default",
            urllib.parse.unquote(parsed.username or "default"),
            urllib.parse.unquote(parsed.password or ""),
            secure,
        )
        return client, database
    raise EngineUrlError(f"{url!r}: the query engine is duckdb (default), clickhouse://host:8123/db or chdb://")
