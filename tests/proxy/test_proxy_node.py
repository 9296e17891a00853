"""A Node.js app with only its base URL changed: the real `openai` npm package through the capture
proxy inside `llmscope serve`. `.ci/run` installs the package (`npm ci` in tests/proxy/node); a
machine without Node.js or without that install skips, saying which."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from llmscope_collector.server import EmbeddedServer
from tests.proxy.conftest import stored_trace

NODE_APP = Path(__file__).parent / "node"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"

pytestmark = [
    pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed"),
    pytest.mark.skipif(
        not (NODE_APP / "node_modules" / "openai").is_dir() and not os.environ.get("LLMSCOPE_REQUIRE_NODE"),
        reason="the openai npm package is not installed: npm ci --prefix tests/proxy/node",
    ),
]


def test_the_openai_npm_package_through_the_proxy(proxied: EmbeddedServer) -> None:
    assert proxied.proxy is not None
    env = {**os.environ, "PROXY_URL": proxied.proxy.url, "TRACEPARENT": f"00-{TRACE_ID}-b7ad6b7169203331-01"}
    out = subprocess.run(
        ["node", "chat.mjs"], cwd=NODE_APP, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    chat, stream = (json.loads(line) for line in out.stdout.splitlines())
    trace = stored_trace(proxied, TRACE_ID)
    spans = {s["response_id"]: s for s in trace["spans"] if s["operation"] == "chat"}
    for answer in (chat, stream):
        span = spans[answer["id"]]
        assert span["input_tokens"] == answer["usage"]["prompt_tokens"]
        assert span["output_tokens"] == answer["usage"]["completion_tokens"]
        assert span["cost_known"] and span["cost_usd"] > 0
    assert spans[stream["id"]]["ttft_ms"] is not None
    assert trace["session_id"] == "node-session" and trace["totals"]["llm_calls"] == 2
