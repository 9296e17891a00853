"""Schemathesis against the served OpenAPI document (`nox -s schemathesis`).

Starts an embedded server (ports 0, a temp data dir) with demo traffic from the instrumented demo
app plus a generated corpus, then runs schemathesis on `/schema/openapi.json` with the admin token
(so the admin routes are exercised too), checking that no response is a 5xx and that every response
matches the documented schema. With `--as-project`, keys are required and the run uses a project's
API key instead (the data routes as a tenant sees them; admin routes answer 403). The exit code is
schemathesis'. Run from the repository root:

    python -m tests.collector.query.run_schemathesis [--as-project] [extra schemathesis options]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from llmscope_collector.demo import run_demo
from llmscope_collector.server import EmbeddedServer
from llmscope_collector.settings import Settings
from tests.collector.query.dataset import export, generate

ADMIN = "schemathesis-admin-token"
# Every check the API keeps today; `positive_data_acceptance` is not in the list yet: parameters
# such as `from`/`to` (ISO 8601 or epoch ns) accept less than their schema says (issue 15 notes).
CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "missing_required_header",
        "unsupported_method",
        "allow_header_conformance",
    )
)
MAX_EXAMPLES = "25"  # per operation: bounded, so CI stays a few minutes


def main(argv: list[str]) -> int:
    as_project = "--as-project" in argv
    argv = [a for a in argv if a != "--as-project"]
    with tempfile.TemporaryDirectory(prefix="llmscope-schemathesis-") as tmp:
        settings = Settings(
            host="127.0.0.1",
            otlp_grpc_port=0,
            otlp_http_port=0,
            api_port=0,
            data_dir=Path(tmp) / "data",
            flush_interval_s=0.2,
            admin_token=ADMIN,
            retention_days=0,
            alerts_tick_s=0,
            auth="required" if as_project else "auto",
        )
        with EmbeddedServer(settings) as server:
            credential = ADMIN
            if as_project:
                store = server.collector.receivers.auth_store
                store.create_project("fuzz")
                _, credential = store.create_key("fuzz")
                export(server, generate(1, 60), metadata=(("authorization", f"Bearer {credential}"),))
            else:
                if run_demo(server, traces=10) != 0:
                    return 1
                export(server, generate(1, 60))
            command = [
                sys.executable,
                "-m",
                "schemathesis.cli",
                "run",
                f"{server.api_url}/schema/openapi.json",
                "--checks",
                CHECKS,
                "--exclude-path",
                "/v1/traces/stream",  # Server-Sent Events: a stream, not a response
                # A download whose content type follows `format` (JSON lines or CSV); tests/collector/test_export.py
                "--exclude-path",
                "/v1/export",
                "--header",
                f"Authorization: Bearer {credential}",
                "--max-examples",
                MAX_EXAMPLES,
                "--generation-deterministic",  # with the seed: the same cases on every run
                "--seed",
                "20261130",
                "--workers",
                "2",
                "--no-color",
                *argv,
            ]
            print(" ".join(command), flush=True)
            return subprocess.run(command, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
