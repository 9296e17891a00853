"""`GET /v1/traces/stream`, `llmscope tail` and the UI's static files, without a browser (fast)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
from typing import Any

import httpx

from llmscope_collector.server import EmbeddedServer
from llmscope_collector.settings import Settings
from llmscope_collector.tail import format_line, sse_events, tail
from tests.ui.traffic import agent_trace, send, trace_id, wait_for_traces


def _events(server: EmbeddedServer, headers: dict[str, str] | None = None, **params: Any) -> list[tuple[str, str]]:
    """Every (event, data) of one stream that the server ends after `max_s`."""
    with httpx.stream(
        "GET", f"{server.api_url}/v1/traces/stream", params=params, headers=headers or {}, timeout=10
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = (line.encode() for line in response.iter_lines())
        return list(sse_events(lines))


def _send_trace(server: EmbeddedServer, i: int) -> None:
    send(server, [agent_trace(i, time.time_ns() - 60 * 1_000_000_000)])


def test_stream_backfills_then_pushes_new_traces(server: EmbeddedServer) -> None:
    _send_trace(server, 0)
    _send_trace(server, 1)
    wait_for_traces(server, 2)
    backfill = _events(server, backfill=1, max_s=0.3, interval_ms=100)
    assert [e for e, _ in backfill] == ["trace"]
    assert json.loads(backfill[0][1])["trace_id"] == trace_id(1)  # the newest one

    # A stream without backfill sends nothing old, then the trace stored while it is open.
    timer = threading.Timer(0.5, _send_trace, args=(server, 2))
    started = time.monotonic()
    with httpx.stream("GET", f"{server.api_url}/v1/traces/stream", params={"interval_ms": 100}, timeout=10) as response:
        timer.start()
        try:
            lines = (line.encode() for line in response.iter_lines())
            _, data = next(e for e in sse_events(lines) if e[0] == "trace")
        finally:
            timer.join()
    row = json.loads(data)
    assert row["trace_id"] == trace_id(2)
    assert row["span_count"] == 5 and row["llm_calls"] == 2
    assert time.monotonic() - started < 5


def test_stream_is_project_scoped(server: EmbeddedServer) -> None:
    _send_trace(server, 0)
    wait_for_traces(server, 1)
    other = _events(server, {"x-llmscope-project": "other"}, backfill=10, max_s=0.3, interval_ms=100)
    assert other == []
    assert len(_events(server, backfill=10, max_s=0.3, interval_ms=100)) == 1


def test_stream_rejects_bad_parameters(server: EmbeddedServer) -> None:
    response = httpx.get(f"{server.api_url}/v1/traces/stream", params={"interval_ms": 1})
    assert response.status_code == 400


def test_tail_prints_lines_and_json(server: EmbeddedServer) -> None:
    _send_trace(server, 0)
    wait_for_traces(server, 1)
    out = io.StringIO()
    assert tail(server.api_url, backfill=1, count=1, interval_ms=100, out=out) == 0
    line = out.getvalue().strip()
    assert trace_id(0) in line and "invoke_agent support-bot" in line and "5 spans" in line and line.endswith("ok")

    # The command itself, as a user runs it, with --json.
    proc = subprocess.run(
        [sys.executable, "-m", "llmscope_collector", "tail", "--url", server.api_url, "--count", "1", "--json"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["trace_id"] == trace_id(0)


def test_tail_waits_for_new_traces(server: EmbeddedServer) -> None:
    out = io.StringIO()
    timer = threading.Timer(0.3, _send_trace, args=(server, 4))
    timer.start()
    try:
        assert tail(server.api_url, backfill=0, count=1, interval_ms=100, out=out) == 0
    finally:
        timer.join()
    assert trace_id(4) in out.getvalue()


def test_format_line_shows_state_and_unpriced_cost() -> None:
    row = {
        "trace_id": "ab" * 16,
        "name": None,
        "service_name": None,
        "start_time_unix_nano": 1_700_000_000_000_000_000,
        "duration_ms": 12.5,
        "state": "in_progress",
        "status": "error",
        "span_count": 2,
        "llm_calls": 1,
        "total_tokens": 30,
        "cost_usd": None,
        "cost_unknown": 1,
    }
    line = format_line(row)
    assert "(no root yet)" in line and "unpriced" in line and line.endswith("ERROR (in_progress)")


def test_ui_is_served_with_its_assets(server: EmbeddedServer) -> None:
    index = httpx.get(f"{server.api_url}/")
    assert index.status_code == 200
    assert index.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in index.headers["content-security-policy"]
    assert '<script type="module" src="ui/static/app.js">' in index.text
    for asset, kind in [("app.js", "javascript"), ("trace.js", "javascript"), ("app.css", "text/css")]:
        response = httpx.get(f"{server.api_url}/ui/static/{asset}")
        assert response.status_code == 200 and kind in response.headers["content-type"], asset
    assert httpx.get(f"{server.api_url}/ui/static/nope.js").status_code == 404
    # The UI is not an API: it stays out of the OpenAPI document, the stream is in it.
    paths = httpx.get(f"{server.api_url}/schema/openapi.json").json()["paths"]
    assert "/v1/traces/stream" in paths and "/" not in paths


def test_open_stream_does_not_hold_up_server_stop(settings: Settings) -> None:
    server = EmbeddedServer(settings)
    server.start()
    ended = threading.Event()

    def read() -> None:
        with httpx.stream("GET", f"{server.api_url}/v1/traces/stream", timeout=30) as response:
            for _ in response.iter_lines():
                pass
        ended.set()

    reader = threading.Thread(target=read, daemon=True)
    try:
        reader.start()
        time.sleep(0.5)  # the stream is open and idle
    finally:
        started = time.monotonic()
        server.stop()
    assert time.monotonic() - started < 5
    assert ended.wait(5)


def test_tail_count_prints_the_newest_traces(server: EmbeddedServer) -> None:
    """`--count 3` with the default backfill of 10: the 3 newest stored traces, oldest first."""
    base = time.time_ns() - 600 * 1_000_000_000
    send(server, [agent_trace(i, base) for i in range(6)])
    wait_for_traces(server, 6)
    out = io.StringIO()
    assert tail(server.api_url, backfill=10, count=3, interval_ms=100, out=out) == 0
    printed = [line.split()[1] for line in out.getvalue().splitlines()]
    assert printed == [trace_id(3), trace_id(4), trace_id(5)]


def test_tail_says_when_no_server_answers() -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    proc = subprocess.run(
        [sys.executable, "-m", "llmscope_collector", "tail", "--url", url],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 1
    assert f"no llmscope server answers at {url}" in proc.stderr
    assert "llmscope serve" in proc.stderr and "--url" in proc.stderr


def test_cleanup_refuses_a_data_dir_that_does_not_exist(tmp_path: Any) -> None:
    missing = tmp_path / "nonexistent"
    proc = subprocess.run(
        [sys.executable, "-m", "llmscope_collector", "cleanup", "--dry-run", "--data-dir", str(missing)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert str(missing) in proc.stderr and "--data-dir" in proc.stderr
    assert not missing.exists()  # and nothing was created there


def test_tail_and_demo_print_costs_with_the_one_rule() -> None:
    from llmscope_collector.demo import _usd
    from llmscope_collector.tail import _money

    assert _money(4e-8, 0) == "$0.00000004" and _money(0.00003615, 1) == "$0.0000361+"
    assert _usd(0.0008) == "$0.0008" and _usd(None) == "cost unknown"
