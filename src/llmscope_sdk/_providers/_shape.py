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


def parsed_body(result: Any) -> Any:
    """The parsed body behind `with_raw_response` results; the result itself otherwise.

    Read only if the client already read the HTTP body: `with_streaming_response` has not, and
    parsing there would consume the user's stream (then None: no response attributes).
    """
    http = getattr(result, "http_response", None)
    if http is None or not callable(getattr(result, "parse", None)):
        return result
    return result.parse() if getattr(http, "is_stream_consumed", False) is True else None
