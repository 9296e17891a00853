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
    """The default test run: unit, property and end-to-end tests (no benchmarks)."""
    session.install("-e", ".[test]")
    session.run("pytest", "-q", "-m", "not slow", *session.posargs)


@nox.session(name="tests-matrix", python=PYTHONS)
def tests_matrix(session: nox.Session) -> None:
    """The same tests on every supported CPython."""
    session.install("-e", ".[test]")
    session.run("pytest", "-q", "-m", "not slow", *session.posargs)


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


@nox.session(python=DEFAULT_PYTHON)
def lint(session: nox.Session) -> None:
    """ruff (style, imports, bugbear) and mypy --strict on the packages."""
    session.install("-e", ".[test]", "ruff>=0.6", "mypy>=1.10")
    session.run("ruff", "check", "src", "tests", "noxfile.py")
    session.run("mypy")
