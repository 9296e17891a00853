"""Reading client objects by shape: request params are dicts, responses are pydantic models."""

from __future__ import annotations

import weakref
from typing import Any


def field(obj: Any, key: str, default: Any = None) -> Any:
    """`obj[key]` for mappings, `obj.key` otherwise; `default` when absent."""
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


def given(value: Any) -> bool:
    """False for None and the clients' NOT_GIVEN/Omit sentinels (detected by type name, not import)."""
    return value is not None and type(value).__name__ not in ("NotGiven", "Omit")


_server_cache: weakref.WeakKeyDictionary[Any, tuple[Any, dict[str, Any]]] = weakref.WeakKeyDictionary()


def server_attributes(instance: Any) -> dict[str, Any]:
    """server.address/port from a resource's client `base_url` (found by shape), cached per client
    until its base_url object changes. The returned dict is shared: callers copy, never mutate."""
    client = getattr(instance, "_client", None)
    url = getattr(client, "base_url", None)
    try:
        cached = _server_cache.get(client)
    except TypeError:
        cached = None
    if cached is not None and cached[0] is url:
        return cached[1]
    attrs: dict[str, Any] = {}
    host = getattr(url, "host", None)
    if host:
        port = getattr(url, "port", None)
        if port is None:
            port = 443 if getattr(url, "scheme", "https") == "https" else 80
        attrs = {"server.address": str(host), "server.port": int(port)}
    try:
        _server_cache[client] = (url, attrs)
    except TypeError:
        pass
    return attrs


_raw_types: dict[type, bool] = {}  # result class -> is it a raw-response wrapper (`with_raw_response`)?


def _is_raw_response(result: Any) -> bool:
    """Decided once per result class: asking a pydantic model for an attribute it lacks raises (and
    formats) an AttributeError inside pydantic, which would cost every call more than its span."""
    cls = type(result)
    raw = _raw_types.get(cls)
    if raw is None:
        raw = callable(getattr(cls, "parse", None)) and getattr(result, "http_response", None) is not None
        if len(_raw_types) < 256:  # a handful of client classes; never grows with traffic
            _raw_types[cls] = raw
    return raw


def parsed_body(result: Any) -> Any:
    """The parsed body behind `with_raw_response` results; the result itself otherwise.

    Read only if the client already read the HTTP body: `with_streaming_response` has not, and
    parsing there would consume the user's stream (then None: no response attributes).
    """
    if not _is_raw_response(result):
        return result
    http = result.http_response
    return result.parse() if getattr(http, "is_stream_consumed", False) is True else None
