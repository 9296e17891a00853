"""Domain errors → HTTP responses with a JSON `ErrorBody`, registered once on the app."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from llmscope_collector.api.schemas import ErrorBody
from llmscope_collector.query.filters import InvalidFilter
from llmscope_collector.query.store import InvalidTraceId

log = logging.getLogger(__name__)


class NotFound(Exception):
    """The requested resource does not exist."""


def _response(status: int, error: str, detail: str) -> Response[bytes]:
    body = msgspec.json.encode(ErrorBody(status_code=status, error=error, detail=detail))
    return Response(content=body, status_code=status, media_type="application/json")


def invalid_trace_id(_: Request[Any, Any, Any], exc: InvalidTraceId) -> Response[bytes]:
    return _response(400, "invalid_trace_id", str(exc))


def invalid_filter(_: Request[Any, Any, Any], exc: InvalidFilter) -> Response[bytes]:
    return _response(400, "invalid_parameter", str(exc))


def _public_name(request: Request[Any, Any, Any], key: str) -> str:
    """The name the client sent (`state`), not the handler's argument name (`trace_state`)."""
    try:
        parameter = request.route_handler.parsed_fn_signature.parameters.get(key)
        for provider in () if parameter is not None else request.route_handler.resolve_dependencies().values():
            parameter = provider.parsed_fn_signature.parameters.get(key)  # a dependency's query parameter
            if parameter is not None:
                break
    except (AttributeError, KeyError):  # pragma: no cover - not a route with a parsed signature
        return key
    kwarg = getattr(parameter, "kwarg_definition", None)
    return str(getattr(kwarg, "name", None) or getattr(kwarg, "query", None) or key)


def invalid_parameter(request: Request[Any, Any, Any], exc: ValidationException) -> Response[bytes]:
    """Litestar's own parameter validation, rephrased to name the parameter(s) at fault."""
    problems = []
    for item in exc.extra if isinstance(exc.extra, list) else ():
        if isinstance(item, dict) and item.get("key"):
            problems.append(f"{_public_name(request, str(item['key']))}: {item.get('message', 'invalid value')}")
    return _response(400, "invalid_parameter", "; ".join(problems) or str(exc.detail))


def not_found(_: Request[Any, Any, Any], exc: NotFound) -> Response[bytes]:
    return _response(404, "not_found", str(exc))


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    if exc.status_code >= 500:  # Litestar wraps its own failures (e.g. a dependency it cannot check): log the cause
        log.error("%s on %s %s", exc.status_code, request.method, request.url.path, exc_info=exc)
    response = _response(exc.status_code, "http_error", str(exc.detail))
    response.headers.update(exc.headers or {})  # e.g. `Allow` on a 405
    return response


def internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _response(500, "internal_error", "the server failed to answer; see its log")


EXCEPTION_HANDLERS = {
    InvalidTraceId: invalid_trace_id,
    InvalidFilter: invalid_filter,
    ValidationException: invalid_parameter,
    NotFound: not_found,
    HTTPException: http_error,
    Exception: internal_error,
}
