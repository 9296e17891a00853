"""An HTTP endpoint that records the webhooks posted to it: alert channels' destination in the alert tests
(tests/collector/alerts) and the cluster's shared-outbox tests (tests/cluster); the `webhook` fixture
in tests/conftest.py hands one to a test and closes it after."""

from __future__ import annotations

import dataclasses
import http.server
import json
import queue
import threading
from typing import Any


@dataclasses.dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """An HTTP endpoint on 127.0.0.1:<ephemeral> that records POSTs and answers with the queued
    status codes (200 once they run out); `hang()` makes it hold every request until closed."""

    def __init__(self) -> None:
        self.requests: queue.Queue[Received] = queue.Queue()
        self.statuses: list[int] = []
        self._hang = False
        self._release = threading.Event()
        self.held = threading.Event()  # set once a request is being held by `hang()`
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if receiver._hang:
                    receiver.held.set()
                    receiver._release.wait(30)
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.requests.put(Received(self.path, headers, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="test-webhook", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def hang(self) -> None:
        self._hang = True

    def next(self, timeout: float = 10.0) -> Received:
        return self.requests.get(timeout=timeout)

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
