"""OTLP/HTTP receiver: `POST /v1/traces`, protobuf or JSON, gzip/deflate, spec-exact status codes.

A minimal ASGI app under uvicorn on its own thread and socket (as the API in `server.py`): no
framework between the socket and the exporter. The event loop only reads bodies; decompression,
JSON conversion and the export run on a worker pool so a large request never stalls other clients.

Responses use the request's content type: 200 + `ExportTraceServiceResponse` (with
`partial_success` when spans were rejected), or a `google.rpc.Status` with 400 (undecodable), 401,
404, 405, 413 (over the limit, compressed or not), 415 (other content type or encoding), or
429/503 + `Retry-After` (rate limit, backpressure; the only ones a client retries).
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import threading
import time
from collections.abc import Callable
from concurrent import futures
from typing import Any

import msgspec
import uvicorn
from google.protobuf import duration_pb2, json_format
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2

from llmscope_collector.errors import CollectorError, InvalidPayload, PayloadTooLarge, Unavailable
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
_DRAIN_LIMIT = 256 * 1024 * 1024  # read (and discard) this much of an oversized body so the client sees the 413

Send = Any
Receive = Any
Headers = dict[str, str]


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
    ) -> None:
        self._gate = gate
        self._json_to_protobuf = json_converter
        self._host, self._port = host, port
        self._limit = max_body_bytes
        self._max_in_flight = workers * 4
        self._in_flight = 0
        self._pool = futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llmscope-otlp-http")
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def start(self) -> int:
        """Bind and serve; returns the bound port (useful with port 0)."""
        self._socket = _bind(self._host, self._port)
        self.port = int(self._socket.getsockname()[1])
        config = uvicorn.Config(
            self, log_level="warning", log_config=None, access_log=False, lifespan="off", timeout_keep_alive=30
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="llmscope-otlp-http", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise OSError(f"OTLP/HTTP did not start on {self._host}:{self.port}")
            time.sleep(0.01)
        return self.port

    def stop(self) -> None:
        """Finish in-flight requests, then close. Safe to call twice."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        self._pool.shutdown(wait=True)

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            reply = await self._handle(scope, headers, receive)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug must still produce a defined answer and keep the server up
            log.exception("OTLP/HTTP request failed")
            self._gate.stats.refused(TRANSPORT, "internal_error")
            reply = _plain_error(500, code_pb2.INTERNAL, "internal error; see the collector log", JSON)
        response_headers = [(b"content-type", reply.media_type.encode()), *reply.headers]
        await send({"type": "http.response.start", "status": reply.status, "headers": response_headers})
        await send({"type": "http.response.body", "body": reply.body})

    async def _handle(self, scope: dict[str, Any], headers: Headers, receive: Receive) -> _Reply:
        media_type = _media_type(headers)
        reply_type = media_type or JSON
        if scope["path"].rstrip("/") != TRACES_PATH:
            await _drain(receive)
            return _plain_error(
                404, code_pb2.NOT_FOUND, f"no route {scope['path']}; POST traces to {TRACES_PATH}", reply_type
            )
        if scope["method"] != "POST":
            await _drain(receive)
            reply = _plain_error(405, code_pb2.UNIMPLEMENTED, f"{TRACES_PATH} accepts POST only", reply_type)
            reply.headers.append((b"allow", b"POST"))
            return reply
        refusal = self._precheck(headers, media_type)
        if refusal is not None:
            await _drain(receive)
            return refusal
        if self._in_flight >= self._max_in_flight:
            await _drain(receive)
            return self._refuse(Unavailable("too many export requests in flight; retry later"), reply_type)
        self._in_flight += 1
        self._gate.stats.in_flight.labels(TRANSPORT).inc()
        try:
            return await self._export(headers, receive, reply_type)
        finally:
            self._in_flight -= 1
            self._gate.stats.in_flight.labels(TRANSPORT).dec()

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

    def _refuse(self, exc: CollectorError, media_type: str) -> _Reply:
        self._gate.stats.refused(TRANSPORT, "too_large" if isinstance(exc, PayloadTooLarge) else "unavailable")
        return error_reply(exc, media_type)

    async def _export(self, headers: Headers, receive: Receive, media_type: str) -> _Reply:
        body = await _read_body(receive, self._limit)
        if body is None:
            return self._refuse(PayloadTooLarge(f"request body exceeds the {self._limit} byte limit"), media_type)
        self._gate.stats.received_bytes.labels(TRANSPORT).inc(len(body))
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._export_sync, body, headers, media_type)

    def _export_sync(self, body: bytes, headers: Headers, media_type: str) -> _Reply:
        try:
            payload = inflate(body, headers.get("content-encoding", "").strip().lower(), self._limit)
            if media_type == JSON:
                payload = self._json_to_protobuf(payload)
        except (InvalidPayload, PayloadTooLarge) as exc:
            self._gate.stats.refused(TRANSPORT, "too_large" if isinstance(exc, PayloadTooLarge) else "invalid")
            return error_reply(exc, media_type)
        try:
            result = self._gate.export(payload, headers.get, TRANSPORT)
        except CollectorError as exc:
            return error_reply(exc, media_type)
        except Exception:
            log.exception("OTLP/HTTP export failed")
            return error_reply(Unavailable("internal error while storing spans; retry later"), media_type)
        return _Reply(200, _encode(result.to_response(), media_type), media_type)


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None (after draining it) once it passes `limit`."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise asyncio.CancelledError("client disconnected")
        chunk = message.get("body", b"")
        more = message.get("more_body", False)
        size += len(chunk)
        if size > limit:
            if more:
                await _drain(receive, size)
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _drain(receive: Receive, already: int = 0) -> None:
    """Consume an unwanted body so the client can read our reply on a kept-alive connection."""
    size = already
    more = True
    while more and size <= _DRAIN_LIMIT:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size += len(message.get("body", b""))
        more = message.get("more_body", False)


def _bind(host: str, port: int) -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP, and
    # without it a response's header and body writes wait on the client's delayed ACK (~40 ms each).
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot bind OTLP/HTTP on {host}:{port}: {exc.strerror}") from None
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock
