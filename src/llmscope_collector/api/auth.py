"""Who is calling the API: `caller_project` for data routes, `admin_only` for project/key admin.

Both use the collector's `AuthPolicy` (kept in `app.state`), so API keys, revocation and the
loopback rule behave exactly as on the OTLP receivers. Data routes: an API key reads its own
project; without a key (allowed on loopback or with `--auth off`) the caller reads `default` or the
project named in `x-llmscope-project`; the admin token may read any project the same way.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.handlers.base import BaseRouteHandler

from llmscope_collector.api.schemas import ErrorBody
from llmscope_collector.auth.policy import PROJECT_HEADER, AuthPolicy
from llmscope_collector.auth.store import (
    DEFAULT_PROJECT,
    AlreadyExists,
    AuthStoreError,
    InvalidName,
    UnknownKey,
    UnknownProject,
)
from llmscope_collector.errors import Unauthenticated
from llmscope_collector.storage.layout import valid_project

AUTH_POLICY_STATE = "auth_policy"


class Forbidden(Exception):
    """Authenticated, but not allowed to do this."""


def _policy(connection: ASGIConnection[Any, Any, Any, Any]) -> AuthPolicy | None:
    policy: AuthPolicy | None = connection.app.state.get(AUTH_POLICY_STATE)
    return policy


def caller_project(request: Request[Any, Any, Any]) -> str:
    """The project the caller may read; raises `Unauthenticated` (401) otherwise."""
    policy = _policy(request)
    get = request.headers.get
    if policy is None:
        return DEFAULT_PROJECT
    if policy.is_admin(get):
        hint = get(PROJECT_HEADER) or DEFAULT_PROJECT
        if not valid_project(hint):
            raise Unauthenticated(f"{PROJECT_HEADER} {hint!r} is not a valid project name")
        return hint
    return policy.project_for(get)


CALLER_PROJECT = Provide(caller_project, sync_to_thread=False)


def caller_is_admin(request: Request[Any, Any, Any]) -> bool:
    """Whether the caller holds the admin token (or the API runs without an auth store at all):
    who may see operator detail such as delivery errors' hosts and per-project metrics."""
    policy = _policy(request)
    return policy is None or policy.is_admin(request.headers.get)


CALLER_IS_ADMIN = Provide(caller_is_admin, sync_to_thread=False)


def _sees_server_detail(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """Whether the caller may see server-wide detail (every project's counts, WAL state): anyone
    while keys are optional (loopback, `--auth off`); with keys required, the admin token only."""
    policy = _policy(connection)
    return policy is None or policy.mode != "required" or policy.is_admin(connection.headers.get)


def sees_server_detail(request: Request[Any, Any, Any]) -> bool:
    return _sees_server_detail(request)


SEES_SERVER_DETAIL = Provide(sees_server_detail, sync_to_thread=False)


def admin_when_keys_required(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Guard for server-wide routes (`/metrics`): open while keys are optional, else as `admin_only`."""
    if not _sees_server_detail(connection):
        admin_only(connection, handler)


def admin_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: the admin token in `authorization: Bearer …`; 401 without it, 403 with a project key."""
    policy = _policy(connection)
    get = connection.headers.get
    if policy is not None and policy.is_admin(get):
        return
    if policy is None:
        raise Forbidden("project administration needs the collector's auth store; it is not configured")
    if get("authorization") or get("x-llmscope-api-key"):
        try:
            policy.project_for(get)
        except Unauthenticated:
            raise Unauthenticated("invalid admin token") from None
        raise Forbidden("project API keys cannot manage projects; use the admin token")
    raise Unauthenticated("the admin token is required: send 'authorization: Bearer <admin token>'")


def _error(status: int, error: str, detail: str, headers: dict[str, str] | None = None) -> Response[bytes]:
    body = msgspec.json.encode(ErrorBody(status_code=status, error=error, detail=detail))
    return Response(content=body, status_code=status, media_type="application/json", headers=headers)


def _unauthenticated(_: Request[Any, Any, Any], exc: Unauthenticated) -> Response[bytes]:
    return _error(401, "unauthenticated", str(exc), {"www-authenticate": 'Bearer realm="llmscope"'})


def _forbidden(_: Request[Any, Any, Any], exc: Forbidden) -> Response[bytes]:
    return _error(403, "forbidden", str(exc))


_STORE_ERRORS = {InvalidName: (400, "invalid_name"), AlreadyExists: (409, "conflict")}


def _store_error(_: Request[Any, Any, Any], exc: AuthStoreError) -> Response[bytes]:
    if isinstance(exc, (UnknownProject, UnknownKey)):
        return _error(404, "not_found", str(exc))
    status, error = _STORE_ERRORS.get(type(exc), (400, "bad_request"))
    return _error(status, error, str(exc))


AUTH_EXCEPTION_HANDLERS = {Unauthenticated: _unauthenticated, Forbidden: _forbidden, AuthStoreError: _store_error}
