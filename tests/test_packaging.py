"""`pip install llmscope` in an application installs the SDK, not the collector's database.

The wheel is built from this checkout and installed alone in a fresh venv (uv when there is one,
else pip): an app there instruments a real anthropic client against the simulated provider and
exports to a real collector (this process's), the `capllmscope` fixture works in the app's own
pytest run, no server dependency is installed or imported, and `llmscope serve` names the command
that installs the server instead of failing with a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from llmscope_collector.entry import INSTALL_SERVER
from llmscope_collector.server import EmbeddedServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import install_footprint  # the bench script owns building the wheel and the venv

SERVER_MODULES = ("duckdb", "pyarrow", "litestar", "uvicorn", "genai_prices", "msgspec", "grpc")
MODEL = "claude-sonnet-4-6"

APP = textwrap.dedent(
    f"""
    import importlib.util, json, sys
    import anthropic
    from opentelemetry import trace
    import llmscope
    from llmscope_sim import SimulatedProvider

    llmscope.configure(endpoint=sys.argv[1], service_name="base-install")
    methods = llmscope.instrument()
    with SimulatedProvider(seed=1) as sim:
        client = anthropic.Anthropic(base_url=sim.base_url, api_key="k", max_retries=0)
        with trace.get_tracer("app").start_as_current_span("request") as root:
            client.messages.create(model="{MODEL}", max_tokens=20, messages=[{{"role": "user", "content": "hi"}}])
    flushed = llmscope.flush(timeout_s=10)
    llmscope.shutdown()
    try:
        llmscope.Client("http://127.0.0.1:1")
        client_error = ""
    except ImportError as exc:  # the base install has no pyarrow: the message names the extra
        client_error = str(exc)
    server = {SERVER_MODULES!r}
    print(json.dumps({{
        "methods": methods,
        "flushed": flushed,
        "client_error": client_error,
        "trace_id": format(root.get_span_context().trace_id, "032x"),
        "installed": [m for m in server if importlib.util.find_spec(m) is not None],
        "imported": sorted(m.split(".")[0] for m in sys.modules if m.split(".")[0] in server),
    }}))
    """
)

USERS_TEST = textwrap.dedent(
    f"""
    import anthropic
    from llmscope_sim import SimulatedProvider

    def test_my_app(capllmscope):
        with SimulatedProvider(seed=2) as sim:
            client = anthropic.Anthropic(base_url=sim.base_url, api_key="k", max_retries=0)
            client.messages.create(model="{MODEL}", max_tokens=10, messages=[{{"role": "user", "content": "hi"}}])
        (call,) = capllmscope.llm_spans
        assert call.attributes["gen_ai.provider.name"] == "anthropic"
    """
)


def _run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False, **kwargs)
    assert proc.returncode == 0, f"{cmd}: {proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def base_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the base wheel, plus what the app and its tests bring (a client, pytest)."""
    tmp = tmp_path_factory.mktemp("base-install")
    uv = install_footprint.uv_bin()
    wheel = install_footprint.build_wheel(tmp, uv)
    python = install_footprint.fresh_venv(tmp / "venv", [str(wheel), "anthropic>=0.40", "pytest>=8"], uv)
    return python.parent.parent


def _app_env() -> dict[str, str]:
    """The venv alone: none of this checkout's sources on the path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["LLMSCOPE_RAISE_INTERNAL_ERRORS"] = "1"
    return env


def test_the_base_install_instruments_an_app_without_the_server(base_venv: Path, server: EmbeddedServer) -> None:
    proc = _run([str(base_venv / "bin" / "python"), "-c", APP, f"http://127.0.0.1:{server.http_port}"], env=_app_env())
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["installed"] == [] and report["imported"] == []
    assert "pip install 'llmscope[client]'" in report["client_error"]
    assert any(m.startswith("anthropic.") and m.endswith(".Messages.create") for m in report["methods"])
    assert report["flushed"] is True
    server.collector.flush()
    with urllib.request.urlopen(f"{server.api_url}/v1/traces/{report['trace_id']}", timeout=10) as response:
        body = json.loads(response.read())
    assert [s["name"] for s in body["spans"]] == ["request", f"chat {MODEL}"]
    assert body["spans"][1]["provider"] == "anthropic"


def test_the_capllmscope_fixture_is_registered_for_the_apps_tests(base_venv: Path, tmp_path: Path) -> None:
    (tmp_path / "test_my_app.py").write_text(USERS_TEST)
    proc = subprocess.run(
        [str(base_venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_app.py"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
        env=_app_env(),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout


def test_llmscope_serve_without_the_server_extra_says_how_to_install_it(base_venv: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(base_venv / "bin" / "llmscope"), "serve", "--data-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=_app_env(),
    )
    assert proc.returncode == 1
    assert INSTALL_SERVER in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "data").exists()
