"""The capture proxy: a plain ASGI app that forwards OpenAI/Anthropic calls and records each as a span.

Why plain ASGI and not a web framework: the proxy must not touch what passes through it. Bodies,
status codes and headers go out as they came in, and a streamed (SSE) answer is sent on chunk by
chunk the moment it arrives; a framework's request parsing, validation and response classes would
only stand in the way. uvicorn does the HTTP; httpx (made for this: streaming, timeouts, pooling)
talks to the upstream. The proxy reads a *copy* of each body with the SDK's own extractors, so a
call through the proxy gives the same span as the same call made with `llmscope.instrument()`.

Keys: the provider's key (`authorization` / `x-api-key`) is forwarded and never read, stored or
logged; llmscope's own headers (`x-llmscope-*`) are read here and never forwarded upstream.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import zlib
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

import anyio
import httpx
from opentelemetry import context as otel_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from llmscope_proxy._headers import (
    Credentials,
    ProxyAuthError,
    credentials_of,
    request_headers_upstream,
    response_headers_downstream,
    scope_attributes_of,
)
from llmscope_proxy._json import JsonView
from llmscope_proxy._routes import Route, Upstream, find_route
from llmscope_proxy._spans import SpanRecorder
from llmscope_proxy._sse import SseEvents, parse_json
from llmscope_sdk._content import ContentPolicy
from llmscope_sdk._errors import handle_internal_errors
from llmscope_sdk._invocation import Invocation
from llmscope_sdk._streams import StreamTelemetry

log = logging.getLogger("llmscope.proxy")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Authorize = Callable[[Credentials], None]
"""Raises `ProxyAuthError` when the request's llmscope credentials may not write spans."""

_PROPAGATOR = TraceContextTextMapPropagator()

# What the provider clients raise for a status, so `error.type` reads as it does with the SDK.
_STATUS_ERRORS = {
    400: "BadRequestError",
    401: "AuthenticationError",
    403: "PermissionDeniedError",
    404: "NotFoundError",
    409: "ConflictError",
    413: "RequestTooLargeError",
    422: "UnprocessableEntityError",
    429: "RateLimitError",
    529: "OverloadedError",
}


@dataclasses.dataclass(frozen=True)
class ProxyConfig:
    """Upstream base URLs are what you would give the provider's client as `base_url`."""

    openai_base_url: str = "https://api.openai.com/v1"
    anthropic_base_url: str = "https://api.anthropic.com"
    capture_content: bool = False
    max_body_bytes: int = 32 * 1024 * 1024
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 600.0

    def upstream_url(self, upstream: Upstream, path: str, query: bytes) -> str:
        """OpenAI-style bases end in `/v1` (the client's convention), Anthropic's do not."""
        if upstream == "openai":
            base, rest = self.openai_base_url.rstrip("/"), path.removeprefix("/v1")
        else:
            base, rest = self.anthropic_base_url.rstrip("/"), path
        url = base + rest
        return f"{url}?{query.decode('latin-1')}" if query else url


@functools.cache
def _error_class(provider: str, name: str) -> type[Exception]:
    """An exception class named like the client's (`openai.RateLimitError`), for `error.type`."""
    return type(name, (Exception,), {"__module__": provider})


# `error.type` "cancelled" (a builtins-module class reads unqualified): the client went away.
_CANCELLED = _error_class("builtins", "cancelled")


def _status_error(provider: str, status: int, body: Any) -> Exception:
    name = _STATUS_ERRORS.get(status) or ("InternalServerError" if status >= 500 else "APIStatusError")
    message = ""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        message = error["message"]
    exc = _error_class(provider, name)(f"Error code: {status} - {message}" if message else f"Error code: {status}")
    exc.status_code = status  # type: ignore[attr-defined]  # read by Invocation.fail like the client's
    return exc


def error_body(upstream: Upstream, status: int, message: str) -> bytes:
    """An error in the shape the provider's client parses (so the app sees a normal API error)."""
    if upstream == "anthropic":
        kind = {401: "authentication_error", 413: "request_too_large"}.get(status, "api_error")
        return json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()
    kind = {401: "invalid_api_key", 413: "request_too_large"}.get(status, "upstream_unreachable")
    return json.dumps({"error": {"message": message, "type": kind, "param": None, "code": kind}}).encode()


class _Decoder:
    """Decompresses the proxy's copy of a body (the client still gets the original bytes)."""

    def __init__(self, encoding: str) -> None:
        encoding = encoding.strip().lower()
        wbits = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS, "": 0, "identity": 0}.get(encoding)
        self.readable = wbits is not None
        self._z = zlib.decompressobj(wbits) if wbits else None

    def decode(self, chunk: bytes) -> bytes:
        if not self.readable:
            return b""
        return chunk if self._z is None else self._z.decompress(chunk)


class ProxyApp:
    """ASGI app. `recorder` receives the spans; `authorize` checks llmscope credentials first."""

    def __init__(self, config: ProxyConfig, recorder: SpanRecorder, authorize: Authorize) -> None:
        self.config = config
        self.recorder = recorder
        self.authorize = authorize
        self.content = ContentPolicy(capture=config.capture_content)
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._http_client()  # its TLS context at start, not in the first call,
                await anyio.sleep(0)  # and httpx's async backend, which anyio loads on first use
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._client is not None:
                    await self._client.aclose()
                    self._client = None
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _http_client(self) -> httpx.AsyncClient:
        """Created on first use, inside uvicorn's event loop (a client is bound to its loop)."""
        if self._client is None:
            timeout = httpx.Timeout(self.config.read_timeout_s, connect=self.config.connect_timeout_s)
            limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
            self._client = httpx.AsyncClient(timeout=timeout, limits=limits, follow_redirects=False)
        return self._client

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        route = find_route(path)
        if route is None:
            await _respond(send, 404, "openai", f"llmscope proxy: no route for {scope['method']} {path}")
            return
        headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]]
        credentials = credentials_of(headers)
        try:
            self.authorize(credentials)
        except ProxyAuthError as exc:
            await _respond(send, 401, route.upstream, f"llmscope proxy: {exc}")
            return
        body = await _read_body(receive, self.config.max_body_bytes)
        if body is None:
            await _respond(send, 413, route.upstream, "llmscope proxy: request body too large")
            return
        call = _Call(self, route, headers, credentials, body)
        await call.run(scope, receive, send)


class _Call:
    """One forwarded request and, for model calls, its span."""

    def __init__(
        self, app: ProxyApp, route: Route, headers: list[tuple[str, str]], credentials: Credentials, body: bytes
    ) -> None:
        self.app = app
        self.route = route
        self.headers = headers
        self.credentials = credentials
        self.body = body
        self.request: Any = parse_json(body) if route.api is not None else None
        self.invocation: Invocation | None = None

    def _start_span(self, upstream_url: httpx.URL) -> None:
        api = self.route.api
        if api is None or not isinstance(self.request, dict):
            return
        with handle_internal_errors("proxy request"):
            instance = _UpstreamClient(upstream_url)
            name, attrs = api.request(self.request, instance, self.app.content)
            attrs.update(scope_attributes_of(self.headers, attrs.get("gen_ai.operation.name")))
            token = otel_context.attach(_PROPAGATOR.extract(dict(self.headers)))
            try:
                self.invocation = Invocation(self.app.recorder.tracer, None, name, attrs)
            finally:
                otel_context.detach(token)
            self.app.recorder.bind(self.invocation.span, self.credentials)

    async def run(self, scope: Scope, receive: Receive, send: Send) -> None:
        config = self.app.config
        url = httpx.URL(config.upstream_url(self.route.upstream, scope["path"], scope.get("query_string", b"")))
        self._start_span(url)
        client = self.app._http_client()
        request = client.build_request(
            scope["method"], url, headers=request_headers_upstream(self.headers), content=self.body
        )
        try:
            response = await client.send(request, stream=True)
        except httpx.TransportError as exc:
            await self._unreachable(send, exc)
            return
        try:
            streamed = response.headers.get("content-type", "").startswith("text/event-stream")
            if streamed and self.invocation is not None and response.status_code < 400:
                await self._stream(response, receive, send)
            else:
                await self._whole(response, send)
        finally:
            await response.aclose()

    async def _unreachable(self, send: Send, exc: httpx.TransportError) -> None:
        timeout = isinstance(exc, httpx.TimeoutException)
        kind = "APITimeoutError" if timeout else "APIConnectionError"
        message = f"upstream {self.route.upstream} API {'timed out' if timeout else 'unreachable'}: {exc!s}"[:500]
        if self.invocation is not None:
            self.invocation.fail(_error_class(self.route.upstream, kind)(message))
        await _respond(send, 502, self.route.upstream, f"llmscope proxy: {message}")

    async def _whole(self, response: httpx.Response, send: Send) -> None:
        """Non-streamed: forward the raw bytes, reading a copy. The last piece is held back until
        the span has ended, so a client that has the whole answer finds its span already queued
        (a client that knows the length stops reading at the last byte)."""
        decoder = _Decoder(response.headers.get("content-encoding", ""))
        await send(_start_message(response))
        parts: list[bytes] = []
        held = b""
        try:
            async for chunk in response.aiter_raw():
                if held:
                    await send({"type": "http.response.body", "body": held, "more_body": True})
                held = chunk
                parts.append(decoder.decode(chunk))
        except httpx.TransportError as exc:
            if self.invocation is not None:
                self.invocation.fail(_error_class(self.route.upstream, "APIConnectionError")(str(exc)))
            await send({"type": "http.response.body", "body": held, "more_body": False})
            return
        if self.invocation is not None:
            self._finish_whole(response.status_code, b"".join(parts) if decoder.readable else b"")
        await send({"type": "http.response.body", "body": held, "more_body": False})

    def _finish_whole(self, status: int, body: bytes) -> None:
        invocation, api = self.invocation, self.route.api
        assert invocation is not None and api is not None
        parsed = parse_json(body)
        if status >= 400:
            invocation.fail(_status_error(self.route.upstream, status, parsed))
            return
        attrs: dict[str, Any] = {}
        if isinstance(parsed, JsonView):
            with handle_internal_errors("proxy response"):
                attrs = api.response(parsed, self.app.content)
        invocation.stop(attrs)

    async def _stream(self, response: httpx.Response, receive: Receive, send: Send) -> None:
        """SSE: each chunk goes to the client as it arrives; a disconnect ends the span as cancelled."""
        api, invocation = self.route.api, self.invocation
        assert api is not None and invocation is not None and api.accumulator is not None
        telemetry = StreamTelemetry(invocation, api.accumulator(self.app.content))
        relay = asyncio.ensure_future(self._relay(response, send, telemetry))
        disconnect = asyncio.ensure_future(_wait_disconnect(receive))
        try:
            await asyncio.wait({relay, disconnect}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            disconnect.cancel()
            if not relay.done():
                relay.cancel()
                telemetry.finish(_CANCELLED("the client disconnected mid-stream"), "cancelled")
        if relay.done() and not relay.cancelled() and relay.exception() is not None:
            telemetry.finish(relay.exception(), "error")

    async def _relay(self, response: httpx.Response, send: Send, telemetry: StreamTelemetry) -> None:
        """Each chunk is read before it is sent on: the chunk that carries the stream's last event
        ends the span first (clients stop at `[DONE]` / `message_stop`, not at the socket's end)."""
        decoder = _Decoder(response.headers.get("content-encoding", ""))
        events = SseEvents()
        await send(_start_message(response))
        async for chunk in response.aiter_raw():
            for event in events.feed(decoder.decode(chunk)):
                telemetry.chunk(event)
            if events.finished:
                telemetry.finish(None, "exhausted")
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        telemetry.finish(None, "exhausted")
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class _UpstreamClient:
    """Looks like a client resource to the SDK's `server_attributes` (`instance._client.base_url`)."""

    __slots__ = ("_client",)

    def __init__(self, url: httpx.URL) -> None:
        self._client = _BaseUrl(url)


class _BaseUrl:
    __slots__ = ("base_url",)

    def __init__(self, url: httpx.URL) -> None:
        self.base_url = url


def _start_message(response: httpx.Response) -> Message:
    return {
        "type": "http.response.start",
        "status": response.status_code,
        "headers": response_headers_downstream(response.headers.raw),
    }


async def _respond(send: Send, status: int, upstream: Upstream, message: str) -> None:
    body = error_body(upstream, status, message)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None past `limit` bytes."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(parts)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def headers_of(mapping: Mapping[str, str]) -> list[tuple[str, str]]:
    """Lower-cased header pairs (for tests and the standalone runner)."""
    return [(k.lower(), v) for k, v in mapping.items()]
