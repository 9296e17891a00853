"""OTLP/HTTP receiver: `POST /v1/traces`, protobuf or JSON, gzip/deflate, spec-exact status codes.

A minimal ASGI app under uvicorn on its own thread and socket (as the API in `server.py`): no
framework between the socket and the exporter. The event loop only reads bodies; decompression,
JSON conversion and the export run on a worker pool so a large request never stalls other clients.

What a client can hold, and for how long (docs/collector.md "Limits and deadlines"): request
headers must be complete within `HttpDeadlines.header_s` (`connection.py`), a body within
`body_s` of its headers (else 408 and the connection is closed), and an idle kept-alive connection
is closed after `idle_s`. Credentials and the rate limit are checked from the headers, before any
of the body is read: an unauthenticated request is answered 401 at once and its body is never
buffered. Bodies are held under one byte budget for all requests together (`body.py`); an export
slot (`workers * 4`) is taken only once the whole body has arrived, so slow or idle clients cannot
take the slots from others.

Responses use the request's content type: 200 + `ExportTraceServiceResponse` (with
`partial_success` when spans were rejected), or a `google.rpc.Status` with 400 (undecodable), 401,
404, 405, 408 (body too slow), 413 (over the limit, compressed or not), 415 (other content type or
encoding), or 429/503 + `Retry-After` (rate limit, backpressure; the only ones a client retries).
A client that disconnects mid-body gets one rate-limited log line, not a traceback.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import math
import sys
from collections.abc import Callable, Coroutine
from concurrent import futures
from typing import Any, TypeVar

import msgspec
import uvicorn
from google.protobuf import duration_pb2, json_format
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2

from llmscope_collector.asgi_thread import UvicornThread, bind_tcp
from llmscope_collector.errors import CollectorError, InvalidPayload, PayloadTooLarge, Unauthenticated, Unavailable
from llmscope_collector.receiver.body import (
    Body,
    BufferBudget,
    Disconnected,
    OverBudget,
    OverLimit,
    RateLimitedLog,
    drain,
    read_body,
)
from llmscope_collector.receiver.connection import HeaderDeadlineProtocol
from llmscope_collector.receiver.gate import IngestGate
from llmscope_collector.receiver.inflate import SUPPORTED, inflate
from llmscope_collector.receiver.otlp_json import json_to_protobuf

log = logging.getLogger(__name__)

TRACES_PATH = "/v1/traces"
PROTOBUF, JSON = "application/x-protobuf", "application/json"
# OTLP/JSON body → serialized protobuf request, raising `InvalidPayload` (the collector runs it in its
# worker processes: converting is CPU-bound Python that would otherwise hold the receivers' GIL).
JsonConverter = Callable[[bytes], bytes]
_MEDIA_TYPES = {"application/x-protobuf": PROTOBUF, "application/protobuf": PROTOBUF, "application/json": JSON}
TRANSPORT = "http"
# Read and discard at most this much of a refused request's body (within the body deadline) so that
# the client reads our answer instead of a reset; beyond it the connection is closed. Little for a
# request without valid credentials: discarding costs no memory, but reading is still our work.
_DRAIN_LIMIT = 256 * 1024 * 1024
_UNAUTHENTICATED_DRAIN = 1024 * 1024
_CLOSE = (b"connection", b"close")
_T = TypeVar("_T")

Send = Any
Receive = Any
Headers = dict[str, str]


@dataclasses.dataclass(frozen=True)
class HttpDeadlines:
    """Seconds a client may take: to finish its request headers, to send its body, idle between requests."""

    header_s: float = 10.0
    body_s: float = 30.0
    idle_s: float = 30.0


class _Reply(msgspec.Struct):
    status: int
    body: bytes
    media_type: str
    headers: list[tuple[bytes, bytes]] = msgspec.field(default_factory=list)


def _encode(message: Message, media_type: str) -> bytes:
    if media_type == JSON:
        return msgspec.json.encode(json_format.MessageToDict(message))
    return bytes(message.SerializeToString())


def error_reply(exc: CollectorError, media_type: str) -> _Reply:
    """A `google.rpc.Status` body; BadRequest for bad data, RetryInfo + Retry-After when retryable."""
    status = status_pb2.Status(code=exc.grpc_code.value[0], message=str(exc))
    headers: list[tuple[bytes, bytes]] = []
    if exc.retry_after_s is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(max(1, int(exc.retry_after_s * 1e9)))
        status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        headers.append((b"retry-after", str(max(1, math.ceil(exc.retry_after_s))).encode()))
    elif exc.http_status == 400:
        violation = error_details_pb2.BadRequest.FieldViolation(field="", description=str(exc))
        status.details.add().Pack(error_details_pb2.BadRequest(field_violations=[violation]))
    elif exc.http_status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="llmscope"'))
    return _Reply(exc.http_status, _encode(status, media_type), media_type, headers)


def _plain_error(http_status: int, code: int, message: str, media_type: str) -> _Reply:
    return _Reply(http_status, _encode(status_pb2.Status(code=code, message=message), media_type), media_type)


def _media_type(headers: Headers) -> str | None:
    raw = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return _MEDIA_TYPES.get(raw)


class OtlpHttpReceiver:
    """Owns the uvicorn server thread and the export worker pool."""

    def __init__(
        self,
        gate: IngestGate,
        *,
        host: str,
        port: int,
        max_body_bytes: int,
        workers: int,
        json_converter: JsonConverter = json_to_protobuf,
        deadlines: HttpDeadlines = HttpDeadlines(),
        max_buffered_bytes: int = 0,
        log_interval_s: float = 10.0,
    ) -> None:
        """`max_buffered_bytes` 0: four maximal bodies; `log_interval_s`: one line per client problem this often."""
        self._gate = gate
        self._json_to_protobuf = json_converter
        self._host, self._port = host, port
        self._limit = max_body_bytes
        self._deadlines = deadlines
        self._max_in_flight = workers * 4
        self._in_flight = 0
        buffered = gate.stats.buffered_bytes
        self.budget = BufferBudget(max_buffered_bytes or 4 * max_body_bytes, buffered.labels(TRANSPORT).inc)
        self._client_log = RateLimitedLog(log, log_interval_s)
        self._pool = futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llmscope-otlp-http")
        self._runner: UvicornThread | None = None
        self.port = 0

    def start(self) -> int:
        """Bind and serve; returns the bound port (useful with port 0)."""
        try:
            sock = bind_tcp(self._host, self._port)
        except OSError as exc:
            raise OSError(f"cannot bind OTLP/HTTP on {self._host}:{self._port}: {exc.strerror}") from None
        self._runner = UvicornThread(self._config(), sock, "llmscope-otlp-http")
        self.port = self._runner.port
        if not self._runner.start():
            self._pool.shutdown(wait=False)
            raise OSError(f"OTLP/HTTP did not start on {self._host}:{self.port}")
        return self.port

    def _config(self) -> uvicorn.Config:
        protocol = functools.partial(
            HeaderDeadlineProtocol, header_timeout_s=self._deadlines.header_s, on_timeout=self._header_timed_out
        )
        return uvicorn.Config(
            self,
            http=protocol,  # type: ignore[arg-type]  # uvicorn only calls it, as it would the class
            log_level="warning",
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_keep_alive=self._deadlines.idle_s,  # type: ignore[arg-type]  # a `call_later` delay: float works
            proxy_headers=False,
        )

    def stop(self) -> None:
        """Finish in-flight requests, then close. Safe to call twice."""
        if self._runner is not None:
            self._runner.stop()
        self._pool.shutdown(wait=True)

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            reply = await self._handle(scope, headers, receive)
        except asyncio.CancelledError:
            raise
        except _ClientGone:
            return  # nobody to answer; already counted and logged
        except Exception:  # a bug must still produce a defined answer and keep the server up
            log.exception("OTLP/HTTP request failed")
            self._gate.stats.refused(TRANSPORT, "internal_error")
            reply = _plain_error(500, code_pb2.INTERNAL, "internal error; see the collector log", JSON)
        response_headers = [(b"content-type", reply.media_type.encode()), *reply.headers]
        await send({"type": "http.response.start", "status": reply.status, "headers": response_headers})
        await send({"type": "http.response.body", "body": reply.body})

    async def _handle(self, scope: dict[str, Any], headers: Headers, receive: Receive) -> _Reply:
        deadline = asyncio.get_running_loop().time() + self._deadlines.body_s
        media_type = _media_type(headers)
        reply_type = media_type or JSON
        refusal = _route(scope, reply_type) or self._precheck(headers, media_type)
        if refusal is not None:
            return await _unread(receive, refusal, deadline, _DRAIN_LIMIT)
        try:  # credentials and rate limit from the headers alone, before the body is read
            project = self._gate.admit(headers.get, TRANSPORT)
        except CollectorError as exc:
            limit = _UNAUTHENTICATED_DRAIN if isinstance(exc, Unauthenticated) else _DRAIN_LIMIT
            return await _unread(receive, error_reply(exc, reply_type), deadline, limit)
        body = Body(self.budget)
        try:
            declared = int(length) if (length := headers.get("content-length", "")).isdigit() else 0
            refusal = await self._receive_body(scope, receive, body, declared, deadline, reply_type)
            return refusal or await self._export(body, headers, project, reply_type)
        finally:
            body.release()

    def _precheck(self, headers: Headers, media_type: str | None) -> _Reply | None:
        """415 for content types/encodings we cannot read, 413 for a declared length over the limit."""
        if media_type is None:
            message = f"content-type must be {PROTOBUF} or {JSON}, got {headers.get('content-type', 'none')!r}"
            self._gate.stats.refused(TRANSPORT, "unsupported_media_type")
            return _plain_error(415, code_pb2.INVALID_ARGUMENT, message, JSON)
        encoding = headers.get("content-encoding", "").strip().lower()
        if encoding not in SUPPORTED:
            self._gate.stats.refused(TRANSPORT, "unsupported_media_type")
            message = f"content-encoding {encoding!r} is not supported; use gzip, deflate or none"
            return _plain_error(415, code_pb2.INVALID_ARGUMENT, message, media_type)
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self._limit:
            return self._refuse(
                PayloadTooLarge(f"request body of {length} bytes exceeds the {self._limit} byte limit"), media_type
            )
        return None

    def _refuse(self, exc: CollectorError, media_type: str, outcome: str = "") -> _Reply:
        outcome = outcome or ("too_large" if isinstance(exc, PayloadTooLarge) else "unavailable")
        self._gate.stats.refused(TRANSPORT, outcome)
        return error_reply(exc, media_type)

    async def _receive_body(
        self, scope: dict[str, Any], receive: Receive, body: Body, declared: int, deadline: float, media_type: str
    ) -> _Reply | None:
        """None once `body` holds the whole body, else the reply; `_ClientGone` when the client left."""
        try:
            body.reserve(declared)
            await _until(deadline, read_body(receive, body, self._limit))
        except OverLimit:
            too_large = PayloadTooLarge(f"request body exceeds the {self._limit} byte limit")
            return await _unread(receive, self._refuse(too_large, media_type), deadline, _DRAIN_LIMIT)
        except OverBudget:
            busy = Unavailable("the collector is holding too many request bodies; retry later")
            return _closing(self._refuse(busy, media_type, "over_budget"))
        except asyncio.TimeoutError:
            self._gate.stats.refused(TRANSPORT, "timeout")
            seconds = self._deadlines.body_s
            self._client_log.warning("OTLP/HTTP client %s did not send its body within %g s", _peer(scope), seconds)
            message = f"the request body did not arrive within {seconds:g} s"
            return _closing(_plain_error(408, code_pb2.DEADLINE_EXCEEDED, message, media_type))
        except Disconnected:
            self._gate.stats.refused(TRANSPORT, "disconnected")
            got = len(body.data)
            self._client_log.warning("OTLP/HTTP client %s disconnected after %d bytes of its body", _peer(scope), got)
            raise _ClientGone from None
        self._gate.stats.received_bytes.labels(TRANSPORT).inc(len(body.data))
        return None

    async def _export(self, body: Body, headers: Headers, project: str, media_type: str) -> _Reply:
        if self._in_flight >= self._max_in_flight:
            return self._refuse(Unavailable("too many export requests in flight; retry later"), media_type)
        self._in_flight += 1
        self._gate.stats.in_flight.labels(TRANSPORT).inc()
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool, self._export_sync, body, headers, project, media_type)
        finally:
            self._in_flight -= 1
            self._gate.stats.in_flight.labels(TRANSPORT).dec()

    def _export_sync(self, body: Body, headers: Headers, project: str, media_type: str) -> _Reply:
        try:
            payload = inflate(bytes(body.data), headers.get("content-encoding", "").strip().lower(), self._limit)
            if media_type == JSON:
                payload = self._json_to_protobuf(payload)
        except (InvalidPayload, PayloadTooLarge) as exc:
            self._gate.stats.refused(TRANSPORT, "too_large" if isinstance(exc, PayloadTooLarge) else "invalid")
            return error_reply(exc, media_type)
        try:
            result = self._gate.export_admitted(payload, project, TRANSPORT)
        except CollectorError as exc:
            return error_reply(exc, media_type)
        except Exception:
            log.exception("OTLP/HTTP export failed")
            return error_reply(Unavailable("internal error while storing spans; retry later"), media_type)
        return _Reply(200, _encode(result.to_response(), media_type), media_type)

    def _header_timed_out(self) -> None:
        self._gate.stats.header_timeouts.labels(TRANSPORT).inc()


class _ClientGone(Exception):
    """The client disconnected mid-request: there is nobody to answer."""


def _route(scope: dict[str, Any], reply_type: str) -> _Reply | None:
    """404 off `/v1/traces`, 405 for anything but POST."""
    if scope["path"].rstrip("/") != TRACES_PATH:
        message = f"no route {scope['path']}; POST traces to {TRACES_PATH}"
        return _plain_error(404, code_pb2.NOT_FOUND, message, reply_type)
    if scope["method"] != "POST":
        reply = _plain_error(405, code_pb2.UNIMPLEMENTED, f"{TRACES_PATH} accepts POST only", reply_type)
        reply.headers.append((b"allow", b"POST"))
        return reply
    return None


async def _unread(receive: Receive, reply: _Reply, deadline: float, limit: int) -> _Reply:
    """`reply` to a request whose body we do not want: read and discarded (up to `limit`, by the
    deadline) so a kept-alive connection stays usable; otherwise the connection is closed."""
    try:
        complete = await _until(deadline, drain(receive, limit))
    except asyncio.TimeoutError:
        complete = False
    return reply if complete else _closing(reply)


def _closing(reply: _Reply) -> _Reply:
    """`reply` with `connection: close`: uvicorn then closes the socket after it, unread body or not."""
    reply.headers.append(_CLOSE)
    return reply


async def _until(deadline: float, awaitable: Coroutine[Any, Any, _T]) -> _T:
    """`awaitable`, or `asyncio.TimeoutError` at the event loop time `deadline` (a timer on this task
    where asyncio has one: `wait_for` would run the read as one more task per request)."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout_at(deadline):
            return await awaitable
    return await asyncio.wait_for(awaitable, max(0.0, deadline - asyncio.get_running_loop().time()))


def _peer(scope: dict[str, Any]) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "unknown"
