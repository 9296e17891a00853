"""`llmscope.flush(timeout_s)` and process exit keep their deadline, exporter timeouts included,
and flush says False when spans were not delivered (issue 15 item 4).

The collector here is a real socket server that accepts connections and never answers (the worst
case: no error, no refusal). Each case runs in a child process, since an OpenTelemetry tracer
provider can be set once per process. The bounds checked are correctness bounds (deadline x 2),
not performance figures.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmscope_collector.server import EmbeddedServer

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_S = 2.0
EXIT_BOUND_S = 2.0


class BlackHole:
    """Accepts TCP connections on 127.0.0.1:<ephemeral>, reads and discards, never answers."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._stop = threading.Event()
        self._connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, name="test-black-hole", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                continue
            conn.setblocking(False)
            self._connections.append(conn)
            for held in self._connections:  # drain what they sent so their writes never block
                try:
                    while held.recv(65536):
                        pass
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._listener.close()
        for conn in self._connections:
            conn.close()


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    hole = BlackHole()
    try:
        yield hole
    finally:
        hole.close()


def _run_child(endpoint: str, protocol: str, count: int) -> tuple[dict[str, object], float]:
    """The child's flush answer, and how long its exit took (from its last statement)."""
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        "LLMSCOPE_SHUTDOWN_TIMEOUT_S": str(EXIT_BOUND_S),
    }
    env.pop("LLMSCOPE_RAISE_INTERNAL_ERRORS", None)
    command = [sys.executable, "-m", "tests.sdk.flush_child", endpoint, protocol, str(count), str(DEADLINE_S)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert child.stdout.readline() == "exiting\n"
        exiting_at = time.monotonic()
        child.wait(timeout=60)
        exit_s = time.monotonic() - exiting_at
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0 and line, (child.returncode, line)
    return json.loads(line), exit_s


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
@pytest.mark.parametrize("count", [50, 2000])
def test_flush_and_exit_keep_their_deadline_when_the_collector_never_answers(
    black_hole: BlackHole, protocol: str, count: int
) -> None:
    answer, exit_s = _run_child(f"http://127.0.0.1:{black_hole.port}", protocol, count)
    assert answer["delivered"] is False
    assert float(answer["flush_s"]) < 2 * DEADLINE_S  # it returned: the deadline held (a correctness bound)
    # Exit gave up on the spans left after its documented bound. The slack is the interpreter's own
    # teardown, which a loaded machine stretches (4.6 s seen at load 25); before the fix exit waited
    # 8-31 s, so this still tells the two apart.
    assert exit_s < EXIT_BOUND_S + 5


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_flush_says_true_when_the_collector_stored_the_spans(server: EmbeddedServer, protocol: str) -> None:
    port = server.grpc_port if protocol == "grpc" else server.http_port
    answer, _ = _run_child(f"http://127.0.0.1:{port}", protocol, 50)
    assert answer["delivered"] is True
    server.collector.flush()
    assert server.store.counts().spans >= 50
