"""The scripts in examples/ run as a user would run them and their traces land in the collector."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from llmscope_collector.server import EmbeddedServer
from llmscope_collector.storage.layout import spans_glob

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(script: Path, server: EmbeddedServer) -> str:
    env = {**os.environ, "LLMSCOPE_ENDPOINT": f"http://127.0.0.1:{server.http_port}", "OTEL_SERVICE_NAME": script.stem}
    env.pop("LLMSCOPE_RAISE_INTERNAL_ERRORS", None)
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip(), f"{script.name} printed nothing: a user running it sees no sign it worked"
    return proc.stdout


def _spans(server: EmbeddedServer, service: str) -> list[tuple]:
    server.collector.flush()
    with duckdb.connect() as con:
        return con.execute(
            "SELECT name, session_id, user_id, operation FROM read_parquet(?, hive_partitioning = true, "
            "union_by_name = true) WHERE service_name = ?",
            [spans_glob(server.settings.data_dir), service],
        ).fetchall()


@pytest.mark.parametrize("script", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_example_runs_and_exports(script: str, server: EmbeddedServer) -> None:
    out = _run(EXAMPLES / script, server)
    rows = _spans(server, Path(script).stem)
    assert any(op in ("chat", "embeddings") for _, _, _, op in rows), rows
    if script == "anthropic_agent.py":
        names = {name for name, *_ in rows}
        assert {"invoke_agent weather-agent", "execute_tool get_weather"} <= names
        assert {s for _, s, _, _ in rows} == {"example-session"}
    if script == "sessions.py":
        assert {s for _, s, _, op in rows if op == "chat"} == {"s-1001", "s-1002"}
        assert "[s-1001] user: My invoice is wrong" in out and "sent to the collector" in out
