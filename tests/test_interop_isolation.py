"""The default run must not pick up tests/interop: those tests need one third-party instrumentation
installed per venv (`nox -s interop`), and their conftest turns content capture on for the process.

Checked in a fresh interpreter, so what this pytest process inherited does not matter.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_INTEROP_ENV = ("LLMSCOPE_INTEROP", "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _INTEROP_ENV}


def test_default_run_collects_nothing_from_tests_interop() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "tests/interop"],
        cwd=ROOT,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 5, proc.stdout + proc.stderr  # 5: no tests collected
    assert "no tests collected" in proc.stdout


def test_interop_conftest_sets_no_environment_outside_an_interop_run() -> None:
    probe = (
        "import os, sys; before = dict(os.environ); import tests.interop.conftest as c; "
        "leaked = sorted(set(os.environ.items()) ^ set(before.items())); "
        "sys.exit(f'leaked {leaked}' if leaked else 0 if len(c.collect_ignore_glob) >= 8 else 'not all ignored')"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=_clean_env(), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
