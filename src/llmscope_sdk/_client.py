"""`llmscope.Client`: traces, spans and scores of a running llmscope server as `pyarrow.Table`s.

    client = llmscope.Client("http://127.0.0.1:8000", key="lsk_...")
    traces = client.traces(from_="2026-11-01", model="gpt-4o")   # a pyarrow.Table
    df = client.scores(name="helpfulness").to_pandas()            # pandas, when installed

Each call asks the API for `application/vnd.apache.arrow.stream` (docs/api.md) and reads the record
batches as they arrive. This module is importable in the SDK's base install (it imports `json` and
`datetime` only; urllib when a call is made); pyarrow is imported when a client is made, with the
extra to install when it is missing (`pip install 'llmscope[client]'`). Nothing here runs inside
the instrumented app's calls.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from types import TracebackType
from typing import Any

ARROW_STREAM = "application/vnd.apache.arrow.stream"
INSTALL_CLIENT = "pip install 'llmscope[client]'"
Value = str | int | float | bool | dt.datetime | dt.date


class ClientError(RuntimeError):
    """The server refused a request (`status` is its HTTP status, `detail` what it said) or is unreachable."""

    def __init__(self, status: int | None, detail: str) -> None:
        super().__init__(f"{status}: {detail}" if status is not None else detail)
        self.status = status
        self.detail = detail


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.ipc
    except ImportError:
        raise ImportError(f"llmscope.Client returns pyarrow Tables: install it with {INSTALL_CLIENT}") from None
    return pyarrow


def _text(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


class Client:
    """A read-only client of one llmscope server's API, scoped to the project of `key`.

    `url` is the API's base URL; `key` an API key (or the admin token, with `project`). Filters are
    those of the trace list (docs/api.md): keyword arguments (`model="gpt-4o"`, `from_=...`), and in
    `filters` the ones that are not Python names (`{"attr.app.tier": "gold", "score.quality>": "0.5"}`).
    """

    def __init__(self, url: str, key: str | None = None, *, project: str | None = None, timeout: float = 300.0) -> None:
        self._pa = _pyarrow()
        self._url = url.rstrip("/")
        self._headers = {"accept": ARROW_STREAM}
        if key:
            self._headers["authorization"] = f"Bearer {key}"
        if project:
            self._headers["x-llmscope-project"] = project
        self._timeout = timeout

    def traces(self, *, filters: Mapping[str, Value] | None = None, **params: Value | None) -> Any:
        """The traces the filters select (every one, or at most `limit`), in `sort`/`order`: a pyarrow.Table
        with the columns of the trace list."""
        return self._table("/v1/traces", params, filters)

    def spans(self, *, filters: Mapping[str, Value] | None = None, **params: Value | None) -> Any:
        """The spans of the traces the filters select, each trace's in waterfall order: a pyarrow.Table."""
        return self._table("/v1/spans", params, filters)

    def scores(self, *, filters: Mapping[str, Value] | None = None, **params: Value | None) -> Any:
        """Scores: every one given in `from_`..`to` (of `name`, if given), or those of one `trace_id`,
        `span_id` or `session_id`: a pyarrow.Table with the declared score columns."""
        return self._table("/v1/scores", params, filters)

    def _table(self, path: str, params: Mapping[str, Value | None], filters: Mapping[str, Value] | None) -> Any:
        import urllib.error  # here, not at import: the SDK's import time is the instrumented app's
        import urllib.parse
        import urllib.request

        query = [(k.rstrip("_"), _text(v)) for k, v in params.items() if v is not None]
        query += [(k, _text(v)) for k, v in (filters or {}).items()]
        url = self._url + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        request = urllib.request.Request(url, headers=self._headers)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                return self._pa.ipc.open_stream(response).read_all()
        except urllib.error.HTTPError as exc:
            raise ClientError(exc.code, _detail(exc.read())) from None
        except urllib.error.URLError as exc:
            raise ClientError(None, f"cannot reach {self._url}: {exc.reason}") from None

    def close(self) -> None:
        """Nothing to release (each call is its own connection); for `with` and symmetry with HTTP clients."""

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _detail(body: bytes) -> str:
    try:
        return str(json.loads(body)["detail"])
    except (ValueError, KeyError, TypeError):
        return body.decode(errors="replace")[:500]
