"""The Vercel AI SDK (`ai` on Node, `experimental_telemetry: { isEnabled: true }`) with the real npm
packages: `ai.*` attributes, the operation only in `ai.operationId`, the model calls as inner
`ai.generateText.doGenerate` / `ai.streamText.doStream` spans under outer spans that carry the run's
totals, tool calls as `ai.toolCall` spans. The app (tests/interop/vercel/app.mjs) exports OTLP/HTTP
protobuf with the OTel Node SDK to a real collector; `npm ci` installs the pinned packages (Node 20 here;
the packages accept ^18.19, Debian bookworm's)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests.interop.frameworks import Truth, check_tree_and_counts, span_detail
from tests.interop.harness import get_json
from tests.interop.scenarios import Bench, Package

APP = Path(__file__).parent / "vercel"
NPM_PACKAGES = ("ai", "@ai-sdk/openai", "@ai-sdk/anthropic", "@opentelemetry/sdk-node")
PACKAGE = Package(
    param="vercel-ai",
    distribution="ai",
    client="@ai-sdk/openai",
    instrumentor=lambda: None,
    dialect="Vercel AI SDK (ai.*, Node)",
)


def npm_versions() -> dict[str, str]:
    """The installed npm packages' versions, for the matrix row."""
    versions = {}
    for name in NPM_PACKAGES:
        manifest = APP / "node_modules" / name / "package.json"
        if manifest.exists():
            versions[name] = json.loads(manifest.read_text())["version"]
    return versions


@pytest.fixture(scope="module")
def node_app() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("node and npm are needed (Node >= 20; .ci/interop installs them from Debian)")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    major, minor = (int(part) for part in version.lstrip("v").split(".")[:2])
    assert (major, minor) >= (18, 19), f"Node {version}: the OTel Node SDK needs ^18.19 or >= 20.6"
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=APP, check=True, timeout=600)
    return APP


def _run_app(bench: Bench, app: Path) -> dict[str, Any]:
    env = {
        "PATH": str(Path(shutil.which("node") or "node").parent),
        "SIM_URL": bench.sim.base_url,
        "OTLP_TRACES_URL": f"http://127.0.0.1:{bench.server.http_port}/v1/traces",
    }
    done = subprocess.run(["node", "app.mjs"], cwd=app, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_runs_count_every_call_token_and_cent(bench: Bench, node_app: Path) -> None:
    rec = bench.recorder
    rec.info["npm packages"] = ", ".join(f"{k} {v}" for k, v in npm_versions().items())
    rec.info["node"] = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    out = _run_app(bench, node_app)
    calls = [
        Truth(
            c["label"],
            c["provider"],
            c["model"],
            c["input"],
            c["output"],
            c["read"],
            c["write"],
            c["response_id"],
            c["stream"],
        )
        for c in out["calls"]
    ]
    assert any(c.cache_read for c in calls) and any(c.cache_write for c in calls), calls
    trace_id = out["trace_id"]
    bench.server.collector.flush()
    waterfall = check_tree_and_counts(
        rec, bench.server, None, trace_id, calls, parents={"ai.generateText", "ai.streamText"}
    )
    spans = waterfall["spans"]
    outer = [s for s in spans if s["name"] in ("ai.generateText", "ai.streamText")]
    rec.ok(
        "structure",
        len(outer) == 5 and all(s["counted"] is None for s in outer),
        f"outer run spans (carrying run totals) counted: {[(s['name'], s['counted']) for s in outer]}",
    )
    tool_spans = [s for s in spans if s["name"] == "ai.toolCall"]
    rec.ok(
        "structure",
        [(s["operation"], s["tool_name"]) for s in tool_spans] == [("execute_tool", t["name"]) for t in out["tools"]],
        f"tool spans {[(s['operation'], s['tool_name']) for s in tool_spans]}",
    )
    by_id = {s["span_id"]: s for s in spans}
    rec.ok(
        "structure",
        all(by_id[s["parent_span_id"]]["name"] == "ai.generateText" for s in tool_spans),
        "tool span not under its run",
    )
    streams = [s for s in spans if s["name"] == "ai.streamText.doStream"]
    rec.ok(
        "stream",
        bool(streams) and all(s["is_stream"] and (s["ttft_ms"] or 0) > 0 for s in streams),
        f"stream flag / ttft {[(s['is_stream'], s['ttft_ms']) for s in streams]}",
    )
    finish = [s["finish_reasons"] for s in spans if s["name"] == "ai.generateText.doGenerate"]
    rec.ok("finish reason", ["tool_call"] in finish and ["stop"] in finish, f"finish reasons {finish}")
    _check_session_and_content(bench, trace_id, spans, rec)
    rec.verify()


def _check_session_and_content(bench: Bench, trace_id: str, spans: list[dict[str, Any]], rec: Any) -> None:
    session = get_json(f"{bench.server.api_url}/v1/sessions/sess-vercel")
    rec.ok("session", trace_id in json.dumps(session), "trace not under its session `ai.telemetry.metadata.sessionId`")
    first = next(s for s in spans if s["name"] == "ai.generateText.doGenerate")
    detail = span_detail(bench.server, trace_id, first["span_id"])
    kinds = {c["kind"] for c in detail.get("content", [])}
    rec.ok("content", {"input_value", "output_value"} <= kinds, f"content kinds {sorted(kinds)}")
    tool = next((s for s in spans if s["name"] == "ai.toolCall"), None)
    if tool is not None:
        kinds = {c["kind"] for c in span_detail(bench.server, trace_id, tool["span_id"]).get("content", [])}
        rec.ok("content", {"tool_arguments", "tool_result"} <= kinds, f"tool content kinds {sorted(kinds)}")
    rec.info["content attributes"] = "`ai.prompt(.messages)`, `ai.response.text`, `ai.toolCall.args`/`.result`"
