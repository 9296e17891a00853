"""`llmscope demo` as a new user meets it: the trace it links to shows a conversation, and the demo
can feed a collector that is already running."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from typing import Any

from llmscope_collector.server import EmbeddedServer


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_demo_into_a_running_collector_shows_a_conversation(server: EmbeddedServer) -> None:
    proc = subprocess.run(
        [
            sys.executable, "-m", "llmscope_collector", "demo", "--traces", "1",
            "--endpoint", f"http://127.0.0.1:{server.http_port}", "--api-url", server.api_url,
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    link = re.search(r"/#/trace/([0-9a-f]{32})", proc.stdout)
    assert link, proc.stdout
    assert "1 demo traces stored" in proc.stdout
    trace_id = link.group(1)
    trace = _get(f"{server.api_url}/v1/traces/{trace_id}")
    llm = [s for s in trace["spans"] if s["operation"] == "chat"]
    assert llm
    detail = _get(f"{server.api_url}/v1/spans/{trace_id}/{llm[0]['span_id']}")
    kinds = {item["kind"] for item in detail["content"]}
    assert {"input", "output"} <= kinds, detail["content"]  # the demo captures content


def test_demo_says_when_no_api_answers(server: EmbeddedServer) -> None:
    proc = subprocess.run(
        [
            sys.executable, "-m", "llmscope_collector", "demo", "--traces", "1",
            "--endpoint", f"http://127.0.0.1:{server.http_port}", "--api-url", "http://127.0.0.1:9",
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "does not answer" in proc.stderr and "--api-url" in proc.stderr
