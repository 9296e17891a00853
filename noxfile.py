"""Test matrix. `nox -s tests` is the default run (CPython 3.11); `nox -s tests-3.10` etc. for the rest."""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
DEFAULT_PYTHON = "3.11"


def _pyenv_interpreters() -> None:
    """Make pyenv's other CPythons visible to nox without changing the user's global pyenv."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    if root.is_dir():
        extra = [str(p / "bin") for p in sorted(root.iterdir()) if p.name[:4] in {v for v in PYTHONS}]
        os.environ["PATH"] = os.pathsep.join([*extra, os.environ.get("PATH", "")])


_pyenv_interpreters()


@nox.session(python=DEFAULT_PYTHON)
def tests(session: nox.Session) -> None:
    """The default test run: unit, property and end-to-end tests (no benchmarks). The install builds
    the native OTLP decoder; the tests run on it and hold it equal to the pure-Python one
    (tests/collector/test_native_decode.py, which fails without it when LLMSCOPE_REQUIRE_NATIVE is set)."""
    session.install("-e", ".[test]")
    session.run("pytest", "-q", "-m", "not slow", *session.posargs)


@nox.session(name="tests-matrix", python=PYTHONS)
def tests_matrix(session: nox.Session) -> None:
    """The same tests on every supported CPython."""
    session.install("-e", ".[test]")
    session.run("pytest", "-q", "-m", "not slow", *session.posargs)


@nox.session(python=PYTHONS)
def native(session: nox.Session) -> None:
    """The C extensions (the native OTLP decoder, the canonical JSON of messages, the decoded rows' Arrow
    columns, a span's GenAI row by its plan, the stitcher's window loops, the dedupe windows' key table)
    built and held equal to their pure-Python paths on every CPython (issue 22; `.ci/run` runs it): the
    install compiles them, LLMSCOPE_REQUIRE_NATIVE makes a failed build fail."""
    session.install("-e", ".[server]", "pytest>=8", "hypothesis>=6.100")
    session.run(
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/collector/test_native_decode.py",
        "tests/collector/test_canonical_native.py",
        "tests/collector/test_arrow_native.py",
        "tests/collector/test_pricing_units.py",
        "tests/collector/test_genai_plan_native.py",
        "tests/collector/model/test_stitch_native.py",
        "tests/collector/test_normalize.py",
        "tests/collector/model/test_key_window_native.py",
        *session.posargs,
        env={"LLMSCOPE_REQUIRE_NATIVE": "1"},
    )


# Oldest supported client lines (declared in pyproject's extras) and the newest published.
CLIENTS = {
    "oldest": ["anthropic==0.40.0", "openai==1.40.0", "httpx<0.28"],
    "latest": ["--upgrade", "anthropic", "openai"],
}


@nox.session(python=PYTHONS)
@nox.parametrize("clients", list(CLIENTS))
def matrix(session: nox.Session, clients: str) -> None:
    """SDK tests on every supported CPython, with the oldest and the newest anthropic/openai clients."""
    session.install("-e", ".[test]")
    session.install(*CLIENTS[clients])
    session.run(
        "python",
        "-c",
        "import anthropic, openai; print('anthropic', anthropic.__version__, 'openai', openai.__version__)",
    )
    # The simulator's own tests exercise API features only the newest clients have.
    skip = ["--ignore=tests/sdk/test_simulator.py"] if clients == "oldest" else []
    session.run("pytest", "-q", "-m", "not slow", "tests/sdk", *skip, *session.posargs)


# Third-party instrumentations whose spans the collector must understand (tests/interop, docs/interop.md).
# One venv each: the package pinned to the version the matrix states, plus the newest clients it
# declares support for (its `_instruments` range; instrument() silently does nothing outside it).
INTEROP: dict[str, list[str]] = {
    "otel-genai-openai": ["opentelemetry-instrumentation-genai-openai==1.3b0", "openai<4"],
    "otel-genai-anthropic": ["opentelemetry-instrumentation-genai-anthropic==1.3b0", "anthropic<3"],
    # 2.4b0 declares opentelemetry-util-genai>=0.4b0 but imports a module that 1.x removed.
    "otel-openai-v2": ["opentelemetry-instrumentation-openai-v2==2.4b0", "opentelemetry-util-genai<1", "openai<4"],
    "openllmetry-openai": ["opentelemetry-instrumentation-openai==0.62.4", "openai<4"],
    "openllmetry-anthropic": ["opentelemetry-instrumentation-anthropic==0.62.4", "anthropic<3"],
    "openinference-openai": ["openinference-instrumentation-openai==0.1.66", "openai>=2.8,<4"],
    "openinference-anthropic": ["openinference-instrumentation-anthropic==3.1.0", "anthropic>=1.8,<3"],
    "plain-otel": ["opentelemetry-instrumentation-wsgi==0.66b2"],
    # Frameworks that make the calls themselves (issue 16); the Vercel AI SDK's npm packages are in
    # tests/interop/vercel (package-lock.json), installed by its test with `npm ci` (Node >= 20).
    "litellm": ["litellm==1.110.2"],
    "dspy": [
        "dspy==3.4.1",
        "litellm==1.110.2",
        "openinference-instrumentation-dspy==0.1.48",
        "openinference-instrumentation-litellm==0.1.51",
    ],
    "vercel-ai": [],
}


# --system-site-packages: where the interpreter already has llmscope's heavy deps (duckdb, pyarrow,
# grpcio), pip reuses them and each venv only adds the instrumentation and its client pins (which
# shadow the global ones); where it has not (CI's clean python), pip installs them from its cache.
# Only what the interop tests import: the `server` extra (they run the collector), not the `test`
# extra (playwright, SMTP server, both clients).
@nox.session(python=DEFAULT_PYTHON, venv_params=["--system-site-packages"])
@nox.parametrize("package", list(INTEROP), ids=list(INTEROP))
def interop(session: nox.Session, package: str) -> None:
    """Real third-party instrumentations → OTLP → collector → API; writes docs/interop.md's matrix."""
    session.install("-e", ".[server]", "pytest>=8", "opentelemetry-instrumentation-wsgi", *INTEROP[package])
    test_file = f"tests/interop/test_{package.replace('-', '_')}.py"
    # `python -m`: pytest itself may come from the system site-packages, its script would run the global Python.
    # LiteLLM fetches a price map from the internet at import unless told to use its bundled copy.
    env = {"LLMSCOPE_INTEROP": package, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    # Litestar's notes on the API's handler signatures (once per app, ~130 a run) are not interop's to read.
    quiet = ["-W", "ignore::DeprecationWarning:litestar.handlers.base"]
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *quiet, test_file, *session.posargs, env=env)
    session.run("python", "tests/interop/matrix.py")


@nox.session(python=DEFAULT_PYTHON)
def lint(session: nox.Session) -> None:
    """ruff (style, imports, bugbear) and mypy --strict on the packages."""
    session.install("-e", ".[test]", "ruff>=0.6", "mypy>=1.10")
    session.run("ruff", "check", "src", "tests", "noxfile.py", "benchmarks")
    session.run("mypy")


@nox.session(python=DEFAULT_PYTHON)
def proto(session: nox.Session) -> None:
    """Regenerate llmscope's own protobuf modules (src/llmscope_collector/_proto) from proto/*.proto;
    commit the result (tests/test_proto_generated.py fails while it is stale)."""
    session.install("grpcio-tools==1.85.1")  # the version pinned in pyproject's test extra
    session.run("python", "proto/generate.py", "src")


# Not in nox.options.sessions: benchmarks never run with the tests. `nox -s bench -- --quick` is a
# few-minute run (1M-span store, short windows); the default is the full run (1M and 10M spans).
@nox.session(python=DEFAULT_PYTHON, venv_params=["--system-site-packages"])
def bench(session: nox.Session) -> None:
    """Benchmark suite (ingest, SDK overhead, queries): writes docs/benchmarks.md and docs/benchmarks.json."""
    session.install("-e", ".[test]", "pyinstrument>=4.6", "py-spy>=0.3.14")
    session.run("python", "benchmarks/run_suite.py", *session.posargs)


@nox.session(python=DEFAULT_PYTHON)
def schemathesis(session: nox.Session) -> None:
    """Schemathesis against the served OpenAPI (demo data, port 0): no 5xx, no schema violation, 405 with
    Allow, invalid input refused; 25 examples per operation, deterministic. Run by .ci/run (~3 min)."""
    session.install("-e", ".[test,demo]", "schemathesis>=4,<5")
    session.run("python", "-m", "tests.collector.query.run_schemathesis", *session.posargs)  # admin token
    session.run("python", "-m", "tests.collector.query.run_schemathesis", "--as-project", *session.posargs)
