"""`llmscope tail`: the live trace stream (`GET /v1/traces/stream`) of a running server as plain lines.

One line per new or changed trace: local time, trace id, name, service, duration, spans, LLM calls,
tokens, cost and status. `--json` prints the stream's JSON rows instead. The stream is reconnected
when the server ends it; Ctrl-C stops.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any, TextIO

from llmscope_collector.money import format_usd
from llmscope_collector.settings import Settings

RECONNECT_S = 1.0


def add_tail_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tail = sub.add_parser("tail", help="print new traces of a running server as they are stored")
    tail.add_argument(
        "--url", help="API base URL (default http://<LLMSCOPE_HOST>:<LLMSCOPE_API_PORT>; LLMSCOPE_API_URL)"
    )
    tail.add_argument("--api-key", help="API key or admin token (LLMSCOPE_API_KEY); not needed on loopback")
    tail.add_argument("--project", help="project to read with the admin token (x-llmscope-project)")
    tail.add_argument("--backfill", type=int, default=10, help="print the newest N stored traces first (default 10)")
    tail.add_argument("--json", action="store_true", help="print each trace as one JSON line")
    tail.add_argument("--count", type=int, help="exit after printing this many traces")
    tail.add_argument("--interval-ms", type=int, default=1000, help="how often the server looks for new traces")


def default_api_url() -> str:
    env = os.environ.get("LLMSCOPE_API_URL")
    if env:
        return env
    settings = Settings.from_env()
    host = settings.host if settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.api_port}"


def sse_events(lines: Iterator[bytes]) -> Iterator[tuple[str, str]]:
    """(event, data) pairs from an SSE byte-line stream; comments and retry hints are skipped."""
    event, data = "message", list[str]()
    for raw in lines:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", exc)
    return getattr(reason, "strerror", None) or str(reason)


def _money(usd: float | None, unknown: int) -> str:
    if usd is None:
        return "unpriced" if unknown else "\u2013"
    return format_usd(usd) + ("+" if unknown else "")


def format_line(trace: dict[str, Any]) -> str:
    start = dt.datetime.fromtimestamp(trace["start_time_unix_nano"] / 1e9).strftime("%H:%M:%S")
    status = "ERROR" if trace["status"] == "error" else "ok"
    state = "" if trace["state"] == "complete" else f" ({trace['state']})"
    return (
        f"{start}  {trace['trace_id']}  {(trace.get('name') or '(no root yet)')[:40]:<40}  "
        f"{(trace.get('service_name') or '-')[:20]:<20}  {trace['duration_ms']:>9.1f} ms  "
        f"{trace['span_count']:>5} spans  {trace['llm_calls']:>3} llm  {trace['total_tokens']:>8} tok  "
        f"{_money(trace.get('cost_usd'), trace.get('cost_unknown', 0)):>10}  {status}{state}"
    )


def tail(
    url: str,
    *,
    api_key: str | None = None,
    project: str | None = None,
    backfill: int = 10,
    as_json: bool = False,
    count: int | None = None,
    interval_ms: int = 1000,
    out: TextIO = sys.stdout,
) -> int:
    headers = {"accept": "text/event-stream"}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    if project:
        headers["x-llmscope-project"] = project
    if count is not None:
        backfill = min(backfill, count)  # the newest `count` stored traces, not the oldest of more
    printed = 0
    connected = False
    while True:
        query = urllib.parse.urlencode({"backfill": backfill, "interval_ms": interval_ms})
        request = urllib.request.Request(f"{url.rstrip('/')}/v1/traces/stream?{query}", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                connected = True
                for event, data in sse_events(iter(response.readline, b"")):
                    if event != "trace":
                        continue
                    trace = json.loads(data)
                    try:
                        print(json.dumps(trace) if as_json else format_line(trace), file=out, flush=True)
                    except BrokenPipeError:  # `llmscope tail | head`
                        return 0
                    printed += 1
                    if count is not None and printed >= count:
                        return 0
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:300]
            print(f"llmscope tail: {url} answered {exc.code}: {detail}", file=sys.stderr)
            return 1
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            if not connected:  # nothing ever answered: a wrong URL or no server, not a restart
                print(
                    f"llmscope tail: no llmscope server answers at {url} ({_reason(exc)}). Start one with "
                    "`llmscope serve`, or point --url (or LLMSCOPE_API_URL) at its API.",
                    file=sys.stderr,
                )
                return 1
            print(f"llmscope tail: lost {url} ({_reason(exc)}); reconnecting", file=sys.stderr)
        backfill = 0  # after a reconnect, only what is new
        time.sleep(RECONNECT_S)


def run_tail(args: argparse.Namespace) -> int:
    try:
        return tail(
            args.url or default_api_url(),
            api_key=args.api_key or os.environ.get("LLMSCOPE_API_KEY"),
            project=args.project,
            backfill=args.backfill,
            as_json=args.json,
            count=args.count,
            interval_ms=args.interval_ms,
        )
    except KeyboardInterrupt:
        return 0
