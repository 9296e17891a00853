"""`llmscope demo`: drive an instrumented demo app (a separate process) into the running server,
then print one trace's waterfall, fetched from the HTTP API like any client would."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import urllib.request
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


def run_demo(server: EmbeddedServer, *, traces: int) -> int:
    if importlib.util.find_spec("anthropic") is None:
        print("llmscope demo drives the anthropic client: pip install 'llmscope[demo]'", file=sys.stderr)
        return 1
    endpoint = f"http://{server.settings.host}:{server.grpc_port}"
    proc = subprocess.run(
        [sys.executable, "-m", "llmscope_sim.demo_agent", "--endpoint", endpoint, "--traces", str(traces)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        print(f"demo app failed (exit {proc.returncode}):\n{proc.stderr}", file=sys.stderr)
        return 1
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    trace_ids, showcase = report["trace_ids"], report.get("showcase_trace_ids", [])
    server.collector.flush()
    waterfall = _fetch(f"{server.api_url}/v1/traces/{trace_ids[-1]}")
    print(render_waterfall(waterfall))
    print(f"\n{len(trace_ids)} demo traces stored", end="")
    if showcase:
        print(f", plus {len(showcase)} more (a support chat session, a tool call, a provider error)", end="")
    last = trace_ids[-1]
    print(f".\nOpen the UI at {server.api_url}/#/trace/{last} (JSON: {server.api_url}/v1/traces/{last})", flush=True)
    return 0
