"""Install footprint: what `pip install llmscope` puts in an application's venv, and the server extra.

    python benchmarks/install_footprint.py [--runs 20] [--json out.json]

Builds the wheel of this checkout and installs it into fresh venvs: alone (the SDK an application
runs) and with `[server]` (the collector, API and UI: the dependency set every install had before
the split). Per venv: distributions installed, site-packages size (bytes of its files), and the
time of `python -c "import llmscope"` and of `import llmscope; llmscope.configure()` (the OTel SDK
and the exporter, which load there) next to `python -c pass` (the interpreter alone): CPU time
(user + sys of the child, steadier than wall time on a shared machine) and wall time, medians of
interleaved runs. `tests/test_packaging.py` builds its venv with the same functions.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
INSTALLS = {"base": "", "server": "[server]"}
# What an app runs at start-up: the provider and exporter are built (no connection is made until a span is sent).
CONFIGURE = "import llmscope; llmscope.configure(); llmscope.shutdown()"


def uv_bin() -> str | None:
    """uv (the `uv` package's binary, or one on PATH); None means pip is used."""
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd}: {proc.stdout}\n{proc.stderr}")


def build_wheel(tmp: Path, uv: str | None) -> Path:
    """The wheel of this checkout, built from a copy (the build leaves nothing in the tree)."""
    source = tmp / "source"
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    dist = tmp / "dist"
    if uv:
        _run([uv, "build", "--wheel", "--out-dir", str(dist), str(source)])
    else:
        _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(dist), str(source)])
    (wheel,) = dist.glob("llmscope-*.whl")
    return wheel


def fresh_venv(venv: Path, requirements: list[str], uv: str | None) -> Path:
    """A new venv (this interpreter's version) with `requirements`; returns its python."""
    python = venv / "bin" / "python"
    if uv:
        _run([uv, "venv", "--python", sys.executable, str(venv)])
        _run([uv, "pip", "install", "--python", str(python), *requirements])
    else:
        _run([sys.executable, "-m", "venv", str(venv)])
        _run([str(python), "-m", "pip", "install", "--disable-pip-version-check", *requirements])
    return python


def _site_packages(python: Path) -> Path:
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip())


def _footprint(site: Path) -> dict[str, Any]:
    size = sum(p.lstat().st_size for p in site.rglob("*") if p.is_file() and not p.is_symlink())
    dists = sorted(p.name.split("-")[0] for p in site.glob("*.dist-info"))
    return {"distributions": len(dists), "site_packages_bytes": size, "names": dists}


def _timed(python: Path, code: str) -> tuple[float, float]:
    """(CPU ms, wall ms) of one `python -c code`."""
    before, start = os.times(), time.perf_counter()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the venv alone, not this checkout
    subprocess.run([str(python), "-c", code], check=True, env=env)
    wall, after = (time.perf_counter() - start) * 1000, os.times()
    cpu = (after.children_user - before.children_user + after.children_system - before.children_system) * 1000
    return cpu, wall


CODES = {"interpreter": "pass", "import_llmscope": "import llmscope", "configure_llmscope": CONFIGURE}


def _import_times(pythons: dict[str, Path], runs: int) -> dict[str, dict[str, float]]:
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for python in pythons.values():
        for code in CODES.values():
            _timed(python, code)  # the first run writes the bytecode caches
    for _ in range(runs):  # interleaved: drift on a shared machine hits every venv alike
        for name, python in pythons.items():
            for key, code in CODES.items():
                samples.setdefault((name, key), []).append(_timed(python, code))
    out: dict[str, dict[str, float]] = {}
    for (name, key), values in samples.items():
        out.setdefault(name, {})[f"{key}_cpu_ms"] = statistics.median(v[0] for v in values)
        out[name][f"{key}_wall_ms"] = statistics.median(v[1] for v in values)
    return out


def measure(runs: int) -> dict[str, Any]:
    uv = uv_bin()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        wheel = build_wheel(tmp, uv)
        requirement = {name: f"llmscope{extra} @ {wheel.as_uri()}" for name, extra in INSTALLS.items()}
        pythons = {name: fresh_venv(tmp / name, [requirement[name]], uv) for name in INSTALLS}
        result: dict[str, Any] = {"installer": "uv" if uv else "pip", "runs": runs, "python": sys.version.split()[0]}
        times = _import_times(pythons, runs)
        for name, python in pythons.items():
            result[name] = {**_footprint(_site_packages(python)), **times[name]}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    result = measure(args.runs)
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
