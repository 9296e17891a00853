"""`llmscope demo`: drive an instrumented demo app (a separate process) into the running server,
then print one trace's waterfall, fetched from the HTTP API like any client would."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from llmscope_collector.money import format_usd
from llmscope_collector.server import EmbeddedServer


def _fetch(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _usd(cost: float | None) -> str:
    return "cost unknown" if cost is None else format_usd(cost)


def render_waterfall(waterfall: dict[str, Any]) -> str:
    """An indented tree: one line per span with offset, duration and the GenAI fields."""
    totals = waterfall["totals"]
    lines = [
        f"trace {waterfall['trace_id']}  {waterfall['duration_ms']:.1f} ms  "
        f"{totals['llm_calls']} LLM calls, {totals['input_tokens']} in / "
        f"{totals['output_tokens']} out tokens, {_usd(totals.get('cost_usd'))}"
    ]
    for span in waterfall["spans"]:
        genai = ""
        if span.get("request_model"):
            genai = f"  [{span.get('provider')} {span.get('response_model') or span['request_model']}"
            genai += f" in={span.get('input_tokens')} out={span.get('output_tokens')} {_usd(span.get('cost_usd'))}]"
        status = "  ERROR" if span["status_code"] == "ERROR" else ""
        marker = "*" if span["critical_path"] else " "
        lines.append(
            f"{marker} {'  ' * span['depth']}{span['name']}  +{span['start_offset_ms']:.1f} ms  "
            f"{span['duration_ms']:.1f} ms{genai}{status}"
        )
    lines.append("(* = critical path)")
    return "\n".join(lines)


def _drive(endpoint: str, traces: int) -> dict[str, Any] | None:
    """Run the demo app (a separate, instrumented process) against an OTLP endpoint (HTTP, or gRPC on 4317)."""
    if importlib.util.find_spec("anthropic") is None:
        print("llmscope demo drives the anthropic client: pip install 'llmscope[demo]'", file=sys.stderr)
        return None
    proc = subprocess.run(
        [sys.executable, "-m", "llmscope_sim.demo_agent", "--endpoint", endpoint, "--traces", str(traces)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        print(f"demo app failed (exit {proc.returncode}):\n{proc.stderr}", file=sys.stderr)
        return None
    report: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return report


def _show(api_url: str, report: dict[str, Any], fetch: Callable[[str], Any] = _fetch) -> None:
    trace_ids, showcase = report["trace_ids"], report.get("showcase_trace_ids", [])
    print(render_waterfall(fetch(f"{api_url}/v1/traces/{trace_ids[-1]}")))
    print(f"\n{len(trace_ids)} demo traces stored", end="")
    if showcase:
        print(f", plus {len(showcase)} more (a support chat session, a tool call, a provider error)", end="")
    last = trace_ids[-1]
    print(f".\nOpen the UI at {api_url}/#/trace/{last} (JSON: {api_url}/v1/traces/{last})", flush=True)


def run_demo(server: EmbeddedServer, *, traces: int) -> int:
    """`llmscope demo`: the demo app against this process's own collector."""
    report = _drive(f"http://{server.settings.host}:{server.http_port}", traces)
    if report is None:
        return 1
    server.collector.flush()
    _show(server.api_url, report)
    return 0


def run_demo_against(endpoint: str, api_url: str, *, traces: int, wait_s: float = 15.0) -> int:
    """`llmscope demo --endpoint URL`: demo traffic into a collector that is already running; the
    waterfall is read from its API once the last trace is stored (it flushes on its own schedule)."""
    report = _drive(endpoint, traces)
    if report is None:
        return 1
    last = f"{api_url.rstrip('/')}/v1/traces/{report['trace_ids'][-1]}"
    deadline = time.monotonic() + wait_s
    while True:
        try:
            _fetch(last)
            break
        except urllib.error.HTTPError as exc:
            if exc.code != 404 or time.monotonic() > deadline:
                print(f"llmscope demo: {last} answered {exc.code}", file=sys.stderr)
                return 1
        except (urllib.error.URLError, OSError) as exc:
            print(f"llmscope demo: the API at {api_url} does not answer ({exc}); pass --api-url", file=sys.stderr)
            return 1
        time.sleep(0.2)
    _show(api_url.rstrip("/"), report)
    return 0
