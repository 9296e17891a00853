"""Threaded stdlib HTTP server: routing, request recording, error injection and SSE writing.

Stdlib only, so tests, `llmscope demo` and benchmarks can run a provider with no network,
keys or extra dependencies. Real `anthropic`/`openai` clients talk to it via `base_url`.
"""

from __future__ import annotations

import collections
import hashlib
import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

from . import _anthropic, _openai
from ._text import PromptCache, SimulatorError, canonical_json

__all__ = ["FailureKind", "RecordedRequest", "SimulatedProvider"]

FailureKind = Literal["http", "disconnect", "timeout"]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as received, so tests can assert what an instrumented client actually sent."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass(frozen=True)
class _Failure:
    status: int
    kind: FailureKind
    delay_s: float


@dataclass
class _State:
    """Everything shared by handler threads of one provider; guarded by `lock`."""

    seed: int
    record: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: list[RecordedRequest] = field(default_factory=list)
    failures: collections.deque[_Failure] = field(default_factory=collections.deque)
    anthropic_cache: PromptCache = field(default_factory=PromptCache)
    openai_cache: PromptCache = field(default_factory=PromptCache)
    stop: threading.Event = field(default_factory=threading.Event)
    connections: set[socket.socket] = field(default_factory=set)
    handler_threads: set[threading.Thread] = field(default_factory=set)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Idle keep-alive connections would block server_close(); stop() closes them itself.
    block_on_close = False

    def __init__(self, address: tuple[str, int], state: _State) -> None:
        self.state = state
        super().__init__(address, _Handler)


class _Server6(_Server):
    address_family = socket.AF_INET6


# `x-sim-disconnect: mid-stream` drops the connection after this many SSE events.
_DISCONNECT_AFTER = 3

_Route = Callable[[dict[str, Any], _State], dict[str, Any]]

_ROUTES: dict[str, _Route] = {
    "/v1/messages": lambda b, s: _anthropic.create_message(b, s.seed, s.anthropic_cache),
    "/v1/messages/count_tokens": lambda b, s: _anthropic.count_tokens_response(b),
    "/v1/chat/completions": lambda b, s: _openai.chat_completion(b, s.seed, s.openai_cache),
    "/v1/responses": lambda b, s: _openai.responses_create(b, s.seed, s.openai_cache),
    "/v1/embeddings": lambda b, s: _openai.embeddings(b, s.seed),
}


def _frames_for(path: str, result: dict[str, Any], body: dict[str, Any]) -> list[bytes] | None:
    """SSE frames when the request asked to stream and the endpoint supports it."""
    if body.get("stream") is not True:
        return None
    if path == "/v1/messages":
        return _anthropic.sse_frames(result)
    if path == "/v1/chat/completions":
        return _openai.chat_sse_frames(result, body)
    if path == "/v1/responses":
        return _openai.response_sse_frames(result)
    return None


def _int_header(headers: dict[str, str], name: str) -> int | None:
    try:
        return int(headers[name])
    except (KeyError, ValueError):
        return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the real clients pool connections
    server: _Server
    _anthropic: bool = False  # which provider's error shape and id header to use
    _request_id: str = "req_"

    def setup(self) -> None:
        # Without TCP_NODELAY, header and body writes hit Nagle + delayed ACK (~40 ms stalls).
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()
        state = self.server.state
        with state.lock:
            state.connections.add(self.request)
            state.handler_threads.add(threading.current_thread())

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        state = self.server.state
        with state.lock:
            state.connections.discard(self.request)
            state.handler_threads.discard(threading.current_thread())

    def handle_one_request(self) -> None:
        super().handle_one_request()
        if self.server.state.stop.is_set():  # no new requests on kept-alive sockets after stop()
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: benchmarks and test output should not pay for access logs."""

    def do_POST(self) -> None:
        self._dispatch()

    do_GET = do_PUT = do_PATCH = do_DELETE = do_POST

    # ------------------------------------------------------------------ request handling

    def _dispatch(self) -> None:
        state = self.server.state
        path = urlsplit(self.path).path.rstrip("/") or "/"
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        length = _int_header(headers, "content-length") or 0
        raw = self.rfile.read(length) if length > 0 else b""

        body: Any = None
        malformed = False
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                malformed = True
        if body is not None and not isinstance(body, dict):
            malformed = True
        body_dict: dict[str, Any] = body if isinstance(body, dict) else {}
        self._anthropic = path.startswith("/v1/messages") or "anthropic-version" in headers
        self._request_id = (
            "req_"
            + hashlib.sha256(
                f"{state.seed}\x00{canonical_json(body_dict) if not malformed else raw.hex()}".encode()
            ).hexdigest()[:24]
        )

        with state.lock:
            if state.record:
                state.requests.append(RecordedRequest(self.command, self.path, headers, body_dict))
            failure = state.failures.popleft() if state.failures else None

        delay_ms = _int_header(headers, "x-sim-delay-ms")
        if delay_ms and delay_ms > 0 and state.stop.wait(delay_ms / 1000):
            return self._drop()

        if failure is not None:
            if failure.kind == "timeout":
                state.stop.wait(failure.delay_s)
                return self._drop()
            if failure.kind == "disconnect":
                return self._drop()
            return self._error(failure.status, f"Simulated error (status {failure.status})")

        # Only the first attempt fails, so a client's own retry of the same call succeeds.
        forced = _int_header(headers, "x-sim-error")
        if forced is not None and forced >= 400 and headers.get("x-stainless-retry-count", "0") == "0":
            return self._error(forced, f"Simulated error (status {forced})")
        if headers.get("x-sim-disconnect") == "before-response":
            return self._drop()

        if malformed:
            return self._error(400, "The request body is not valid JSON.")
        route = _ROUTES.get(path)
        if route is None or self.command != "POST":
            return self._error(404, f"Not found: {self.command} {path}")
        try:
            result = route(body_dict, state)
        except SimulatorError as exc:
            return self._error(exc.status, exc.message)

        frames = _frames_for(path, result, body_dict)
        if frames is None:
            return self._send_json(200, result)
        disconnect = headers.get("x-sim-disconnect") == "mid-stream"
        chunk_delay_ms = _int_header(headers, "x-sim-chunk-delay-ms") or 0
        self._send_sse(frames, chunk_delay_ms / 1000, disconnect)

    def _drop(self) -> None:
        """Close the connection without any response, as a dying upstream would."""
        self.close_connection = True

    def _id_headers(self) -> dict[str, str]:
        return {"request-id": self._request_id} if self._anthropic else {"x-request-id": self._request_id}

    def _error(self, status: int, message: str) -> None:
        headers = {}
        if status == 429:
            headers["retry-after"] = "0"
        if self._anthropic:
            body = _anthropic.error_body(status, message, self._request_id)
        else:
            body = _openai.error_body(status, message)
        self._send_json(status, body, headers)

    def _send_json(self, status: int, obj: dict[str, Any], extra: dict[str, str] | None = None) -> None:
        data = json.dumps(obj, separators=(",", ":")).encode()
        self.send_response_only(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in {**self._id_headers(), **(extra or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        try:
            self.wfile.write(data)
        except OSError:
            self.close_connection = True

    def _send_sse(self, frames: list[bytes], chunk_delay_s: float, disconnect: bool) -> None:
        """Chunked transfer keeps the connection reusable; one chunk per SSE event.

        HTTP/1.0 peers cannot take chunked bodies, so they get raw events and `connection: close`.
        """
        chunked = self.request_version != "HTTP/1.0"
        self.send_response_only(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding" if chunked else "connection", "chunked" if chunked else "close")
        for name, value in self._id_headers().items():
            self.send_header(name, value)
        self.end_headers()
        stop = self.server.state.stop
        limit = min(_DISCONNECT_AFTER, len(frames) - 1) if disconnect else len(frames)
        try:
            for index, frame in enumerate(frames[:limit]):
                if index and chunk_delay_s > 0 and stop.wait(chunk_delay_s):
                    return self._drop()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame) if chunked else frame)
            if disconnect or not chunked:
                return self._drop()
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True


class SimulatedProvider:
    """A deterministic fake Anthropic + OpenAI endpoint on a local port.

    Point `anthropic.Anthropic(base_url=sim.base_url)` or `openai.OpenAI(base_url=sim.base_url + "/v1")`
    at it. Real clients retry 429/5xx/connection errors (`max_retries=2` by default): pass
    `max_retries=0` when a test wants exactly one attempt. Per-request headers: `x-sim-error: <status>`
    (first attempt only; retries carry `x-stainless-retry-count` > 0 and succeed),
    `x-sim-delay-ms`, `x-sim-chunk-delay-ms`, `x-sim-disconnect: mid-stream | before-response`.
    """

    def __init__(self, seed: int = 0, *, host: str = "127.0.0.1", port: int = 0, record: bool = True) -> None:
        """`record=False` keeps long benchmark runs from accumulating every request in memory."""
        self.seed = seed
        self.host = host
        self._port = port
        self._state = _State(seed=seed, record=record)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lifecycle = threading.Lock()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> SimulatedProvider:
        """Bind and serve in a daemon thread; a no-op if already running."""
        with self._lifecycle:
            if self._server is not None:
                return self
            self._state.stop = threading.Event()
            server_cls = _Server6 if ":" in self.host else _Server
            server = server_cls((self.host, self._port), self._state)
            self._port = server.server_address[1]
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"llmscope-simulator:{self._port}",
                daemon=True,
            )
            thread.start()
            self._server, self._thread = server, thread
            return self

    def stop(self) -> None:
        """Shut down, drop open connections and join all threads; idempotent."""
        with self._lifecycle:
            server, thread = self._server, self._thread
            if server is None or thread is None:
                return
            self._server = self._thread = None
            state = self._state
            state.stop.set()  # wakes injected delays/timeouts
            server.shutdown()
            with state.lock:
                connections = list(state.connections)
                handlers = list(state.handler_threads)
            for conn in connections:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            server.server_close()
            thread.join()
            for handler in handlers:
                handler.join(timeout=2.0)

    def __enter__(self) -> SimulatedProvider:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ inspection / control

    @property
    def port(self) -> int:
        """The bound port (the real one once started with port 0)."""
        return self._port

    @property
    def base_url(self) -> str:
        """`http://HOST:PORT`; OpenAI clients need `base_url + "/v1"`."""
        if self._server is None:
            raise RuntimeError("SimulatedProvider is not running; call start() or use it as a context manager")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot copy of every request received so far (including failed attempts)."""
        with self._state.lock:
            return list(self._state.requests)

    def fail_next(self, status: int = 500, count: int = 1, kind: FailureKind = "http", delay_s: float = 30.0) -> None:
        """Make the next `count` requests fail.

        `http` answers `status` in the provider's error shape; `disconnect` closes the socket
        without a response; `timeout` stalls `delay_s` (set it above the client's timeout), then closes.
        """
        if kind not in ("http", "disconnect", "timeout"):
            raise ValueError(f"unknown failure kind: {kind!r}")
        with self._state.lock:
            self._state.failures.extend(_Failure(status, kind, delay_s) for _ in range(count))

    def clear(self, *, cache: bool = False) -> None:
        """Forget recorded requests and pending failures (and prompt caches if `cache`)."""
        with self._state.lock:
            self._state.requests.clear()
            self._state.failures.clear()
        if cache:
            self._state.anthropic_cache.clear()
            self._state.openai_cache.clear()
