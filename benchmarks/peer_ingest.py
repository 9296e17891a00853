"""Arize Phoenix beside llmscope on the ingest benchmark's load: a fixed number of spans, time until stored.

    python benchmarks/peer_ingest.py [--spans 20000] [--systems llmscope,phoenix] [--protocol grpc|http]
        [--venv-dir /tmp/llmscope-peer-venvs] [--json out.json]

Phoenix (`arize-phoenix`, pinned below) runs from its own venv, built once with uv under --venv-dir and
reused, as `python -m phoenix.server.main serve` with its HTTP server on a free loopback port, its gRPC
receiver on another free port (Phoenix binds it on every interface, `[::]`: it has no setting for that),
telemetry and external resources off, and a temp working dir holding its SQLite database (its default
deployment). llmscope runs as in `ingest.py`: `llmscope serve`, WAL fsynced, temp data dir.

The client is the ingest benchmark's own: the same generated agent traces (`otlp_traces`, same seed and
traces per request as `ingest.py`), pre-serialized, made unique per send, sent by `ingest.drive` (threads
with one call in flight each, refusals retried after 20 ms) over OTLP/gRPC or OTLP/HTTP protobuf.

Phoenix stores a few hundred times slower than llmscope, so instead of windows of saturating load each
server gets the same fixed load: `--spans` spans in requests each sent once (Phoenix keeps the first span of
a span id and drops later ones: a template sent twice would never be stored twice), timed from the first send
until every one of them is stored, with a cap. Stored means: a row in Phoenix's `spans` table (its database,
read-only), a span in llmscope's Parquet (`spans_written` on /health). Measured per server: stored spans/s
end to end, and over the middle 80% of the spans (past the start-up of the load, before the tail); peak
RSS and PSS of its process tree (sampled from /proc every 100 ms, as `ingest.py` does); CPU of the tree
over load and drain per stored span.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import (
    Counter,
    Load,
    RssSampler,
    Sender,
    drive,
    grpc_sender_factory,
    health,
    http_sender_factory,
    start_server,
    stop_server,
    tree_cpu_s,
    tree_pss_mb,
    tree_rss_mb,
)
from otlp_traces import TraceShape, requests

PHOENIX_VERSION = "20.26.1"  # the newest arize-phoenix when this was written; pinned so runs compare
DEFAULT_VENVS = Path(tempfile.gettempdir()) / "llmscope-peer-venvs"
SYSTEMS = ("llmscope", "phoenix")
# Same server settings as ingest.py's gRPC run: WAL on with fsync, no compaction during the load.
LLMSCOPE_ENV = {"LLMSCOPE_WAL_FSYNC": "1", "LLMSCOPE_COMPACTION_INTERVAL_S": "0"}
Requests = tuple[list[bytes], list[int]]  # serialized requests and their span counts
POLL_S = {"llmscope": 0.05, "phoenix": 0.25}  # how often the stored count is read (~1 s vs minutes of load)


# -- the load --------------------------------------------------------------------------------------------


def fixed_requests(spans: int, traces_per_request: int, seed: int) -> Requests:
    """Serialized requests of the ingest load (trace-id and content markers in) until `spans` spans."""
    bodies: list[bytes] = []
    counts: list[int] = []
    now = time.time_ns()
    upper = spans  # every trace has at least one span: never fewer traces than needed
    for request, n in requests(seed, upper, traces_per_request, now - 60 * 10**9, 60.0, TraceShape(), marker=True):
        bodies.append(request.SerializeToString())
        counts.append(n)
        if sum(counts) >= spans:  # a few hundred requests at most
            break
    return bodies, counts


@dataclasses.dataclass
class FixedLoadResult:
    """What one server did with the fixed load (times from the first send)."""

    spans_sent: int
    spans_acked: int
    spans_stored: int
    seconds_to_acked: float | None
    seconds_to_stored: float
    capped: bool
    progress: list[tuple[float, int]]  # (seconds, spans stored) at each poll
    slowest_read_s: float
    refused: int
    errors: list[str]
    cpu_s: float
    peak_rss_mb: float
    main_process_peak_rss_mb: float
    peak_pss_mb: float
    idle_rss_mb: float
    idle_pss_mb: float


@dataclasses.dataclass
class _Sent:
    load: Load
    progress: list[tuple[float, int]]
    acked_at: float | None
    capped: bool
    slowest_read_s: float  # of the stored count: how late a poll could see the last spans


def send_until_stored(
    make_sender: Callable[[int], Sender],
    bodies: list[bytes],
    spans: list[int],
    stored: Callable[[], int],
    *,
    threads: int,
    poll_s: float,
    cap_s: float,
) -> _Sent:
    """Send every body once, then poll `stored()` until it counts all their spans (or `cap_s` passes)."""
    load, counter = Load(), Counter()
    before, expected = stored(), sum(spans)
    t0 = time.perf_counter()
    pool = drive(make_sender, bodies, spans, threads, hex_marker=False, load=load, counter=counter, limit=len(bodies))
    progress: list[tuple[float, int]] = []
    acked_at: float | None = None
    capped = False
    reads: list[float] = []
    while True:
        asked = time.perf_counter()
        count = stored() - before
        now = time.perf_counter() - t0
        reads.append(now + t0 - asked)
        progress.append((round(now, 3), count))
        if acked_at is None and not any(t.is_alive() for t in pool):
            acked_at = now
        if count >= expected:
            break
        if now >= cap_s:
            capped = True
            break
        time.sleep(poll_s)
    load.stop.set()
    for t in pool:
        t.join(60)
    return _Sent(load, progress, acked_at, capped, max(reads))


def fixed_load(
    pid: int,
    make_sender: Callable[[int], Sender],
    load: Requests,
    warmup: Requests,
    stored: Callable[[], int],
    *,
    threads: int,
    poll_s: float,
    cap_s: float,
) -> FixedLoadResult:
    """A warm-up (other traces, stored before the clock starts: first-use costs such as lazy imports
    and worker start-up stay out of the figure), then the measured load, with the server's tree sampled."""
    sampler = RssSampler(pid)
    sampler.start()
    idle_rss, idle_pss = tree_rss_mb(pid), tree_pss_mb(pid)
    send = functools.partial(send_until_stored, make_sender, stored=stored, threads=threads, poll_s=poll_s)
    if warmup[0]:
        send(*warmup, cap_s=cap_s)
    cpu0 = tree_cpu_s(pid)
    run = send(*load, cap_s=cap_s)
    cpu_s = tree_cpu_s(pid) - cpu0
    peak = sampler.stop()
    return FixedLoadResult(
        spans_sent=sum(load[1]),
        spans_acked=sum(d[2] for d in list(run.load.done)),
        spans_stored=run.progress[-1][1],
        seconds_to_acked=run.acked_at,
        seconds_to_stored=run.progress[-1][0],
        capped=run.capped,
        progress=run.progress,
        slowest_read_s=run.slowest_read_s,
        refused=run.load.refused,
        errors=run.load.errors[:5],
        cpu_s=cpu_s,
        peak_rss_mb=peak,
        main_process_peak_rss_mb=sampler.main_peak_mb,
        peak_pss_mb=sampler.pss_peak_mb,
        idle_rss_mb=idle_rss,
        idle_pss_mb=idle_pss,
    )


def middle_rate(progress: list[tuple[float, int]], total: int, low: float = 0.1, high: float = 0.9) -> float | None:
    """Stored spans/s between the polls that first saw `low` and `high` of `total` stored (None when
    the run never got that far or both fell in one poll): the rate once the load is under way, without
    the ramp at the start or the last batch's wait at the end."""
    first = next(((t, n) for t, n in progress if n >= low * total), None)
    last = next(((t, n) for t, n in progress if n >= high * total), None)
    if first is None or last is None or last[0] <= first[0]:
        return None
    return (last[1] - first[1]) / (last[0] - first[0])


def summarize(run: FixedLoadResult) -> dict[str, Any]:
    """The figures of one server's run, as the suite's report shows them."""
    elapsed = max(run.seconds_to_stored, 1e-9)
    out = dataclasses.asdict(run)
    kept = run.progress[:: max(1, len(run.progress) // 200)]  # a few hundred points at most, the last one too
    out["progress"] = kept if kept[-1] == run.progress[-1] else [*kept, run.progress[-1]]
    out["load_average_1m"] = os.getloadavg()[0]  # the machine is shared: how busy it was at the end
    out["stored_spans_per_s"] = run.spans_stored / elapsed
    out["stored_spans_per_s_middle"] = middle_rate(run.progress, run.spans_sent)
    out["cpu_us_per_stored_span"] = run.cpu_s / max(run.spans_stored, 1) * 1e6
    return out


def ratios(llmscope: dict[str, Any], phoenix: dict[str, Any]) -> dict[str, float | None]:
    """llmscope's figure over Phoenix's: how many times faster (spans/s) or larger (memory, CPU)."""

    def over(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    return {
        "stored_spans_per_s": over(llmscope["stored_spans_per_s"], phoenix["stored_spans_per_s"]),
        "stored_spans_per_s_middle": over(
            llmscope.get("stored_spans_per_s_middle"), phoenix.get("stored_spans_per_s_middle")
        ),
        "peak_rss_mb": over(llmscope["peak_rss_mb"], phoenix["peak_rss_mb"]),
        "cpu_us_per_stored_span": over(llmscope["cpu_us_per_stored_span"], phoenix["cpu_us_per_stored_span"]),
    }


# -- Phoenix ---------------------------------------------------------------------------------------------


def phoenix_python(venv_dir: Path) -> Path:
    """The interpreter of a venv with arize-phoenix==PHOENIX_VERSION, built once under `venv_dir`."""
    venv = venv_dir / f"phoenix-{PHOENIX_VERSION}"
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import phoenix.server.main"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    shutil.rmtree(venv, ignore_errors=True)
    venv_dir.mkdir(parents=True, exist_ok=True)
    base = getattr(sys, "_base_executable", sys.executable)
    uv = shutil.which("uv")
    print(f"building the Phoenix venv in {venv}", file=sys.stderr, flush=True)
    if uv:  # uv resolves Phoenix's dependency set in seconds where pip backtracks for minutes
        subprocess.run([uv, "venv", "-q", "-p", base, str(venv)], check=True, capture_output=True)
        install = [uv, "pip", "install", "-q", "--python", str(python), f"arize-phoenix=={PHOENIX_VERSION}"]
    else:
        subprocess.run([base, "-m", "venv", str(venv)], check=True, capture_output=True)
        install = [str(python), "-m", "pip", "install", "-q", f"arize-phoenix=={PHOENIX_VERSION}"]
    subprocess.run(install, check=True, capture_output=True, timeout=1800)
    subprocess.run(probe, check=True, capture_output=True)
    return python


def free_port() -> int:
    """A port nothing listens on now (the kernel's pick; Phoenix takes no port 0 it would report back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclasses.dataclass
class Phoenix:
    proc: subprocess.Popen[bytes]
    http_port: int
    grpc_port: int
    db: Path
    log: Path
    startup_s: float


def phoenix_env(work: Path, http_port: int, grpc_port: int) -> dict[str, str]:
    """Phoenix's settings (phoenix/config.py); the caller's PHOENIX_*/OTEL_* variables left out."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PHOENIX_", "OTEL_"))}
    env.update(
        {
            "PHOENIX_HOST": "127.0.0.1",
            "PHOENIX_PORT": str(http_port),
            "PHOENIX_GRPC_PORT": str(grpc_port),
            "PHOENIX_WORKING_DIR": str(work),
            "PHOENIX_SQL_DATABASE_URL": f"sqlite:///{work / 'phoenix.db'}",
            "PHOENIX_TELEMETRY_ENABLED": "false",
            "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
            "PHOENIX_LOG_MIGRATIONS": "false",
        }
    )
    return env


@contextmanager
def phoenix_server(python: Path, work: Path, startup_timeout: float) -> Iterator[Phoenix]:
    """`phoenix serve` until /healthz answers (its migrations of a new database take ~1 min); stopped after."""
    http_port, grpc_port = free_port(), free_port()
    log = work / "phoenix.log"
    t0 = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(python), "-m", "phoenix.server.main", "serve"],
            env=phoenix_env(work, http_port, grpc_port),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=work,
        )
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"phoenix exited with {proc.returncode}: {tail(log)}")
            if time.perf_counter() - t0 > startup_timeout:
                raise RuntimeError(f"phoenix not up after {startup_timeout:g} s: {tail(log)}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        yield Phoenix(proc, http_port, grpc_port, work / "phoenix.db", log, time.perf_counter() - t0)
    finally:
        stop_process(proc)


def stop_process(proc: subprocess.Popen[Any]) -> None:
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def tail(path: Path, chars: int = 800) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def phoenix_stored(db: Path) -> Callable[[], int]:
    """Rows in Phoenix's `spans` table, read-only (its SQLite database is in WAL mode: readers do not
    block its writer); the last count again when a read fails (a checkpoint holding a lock)."""
    last = [0]

    def count() -> int:
        try:
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
            try:
                last[0] = int(conn.execute("SELECT count(*) FROM spans").fetchone()[0])
            finally:
                conn.close()
        except sqlite3.Error:
            pass
        return last[0]

    return count


def database_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*") if p.is_file())


def sender_for(protocol: str, grpc_port: int, http_port: int, channels: int) -> tuple[Callable[[int], Sender], Any]:
    if protocol == "grpc":
        return grpc_sender_factory(grpc_port, channels)
    return http_sender_factory(http_port, "application/x-protobuf"), lambda: None


def run_phoenix(args: argparse.Namespace, load: Requests, warmup: Requests) -> dict[str, Any]:
    python = phoenix_python(args.venv_dir)
    with (
        tempfile.TemporaryDirectory(prefix="llmscope-bench-phoenix-") as tmp,
        phoenix_server(python, Path(tmp), args.startup_timeout) as phx,
    ):
        make, close = sender_for(args.protocol, phx.grpc_port, phx.http_port, args.channels)
        try:
            stored = phoenix_stored(phx.db)
            run = fixed_load(phx.proc.pid, make, load, warmup, stored, **_knobs(args, "phoenix"))
        finally:
            close()
        out = summarize(run)
        out["startup_s"] = phx.startup_s
        out["database_bytes_per_span"] = database_bytes(phx.db) / max(stored(), 1)
    out["version"] = PHOENIX_VERSION
    return out


def run_llmscope(args: argparse.Namespace, load: Requests, warmup: Requests) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="llmscope-bench-") as tmp:
        server = start_server(Path(tmp) / "data", LLMSCOPE_ENV)
        try:
            make, close = sender_for(args.protocol, server.grpc_port, server.http_port, args.channels)
            try:
                stored = lambda: int(health(server)["ingest"]["spans_written"])  # noqa: E731
                run = fixed_load(server.proc.pid, make, load, warmup, stored, **_knobs(args, "llmscope"))
            finally:
                close()
        finally:
            stop_server(server)
    return summarize(run)


def _knobs(args: argparse.Namespace, system: str) -> dict[str, Any]:
    return {"threads": args.threads, "poll_s": POLL_S[system], "cap_s": args.cap}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=20_000, help="spans sent to each server (at least)")
    parser.add_argument(
        "--warmup-spans", type=int, default=400, help="spans (other traces) stored before the clock starts"
    )
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="servers to measure, in this order")
    parser.add_argument("--protocol", choices=("grpc", "http"), default="grpc")
    parser.add_argument("--threads", type=int, default=8, help="calls in flight (as ingest.py)")
    parser.add_argument("--channels", type=int, default=4, help="gRPC channels (as ingest.py)")
    parser.add_argument("--traces-per-request", type=int, default=40, help="as ingest.py")
    parser.add_argument("--seed", type=int, default=3, help="as ingest.py")
    parser.add_argument("--cap", type=float, default=600.0, help="seconds before a server's run is cut short")
    parser.add_argument("--startup-timeout", type=float, default=300.0, help="seconds for Phoenix to come up")
    parser.add_argument("--venv-dir", type=Path, default=DEFAULT_VENVS, help="where Phoenix's venv is built")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    systems = [s for s in args.systems.split(",") if s]
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        parser.error(f"unknown systems: {', '.join(sorted(unknown))}")
    load = fixed_requests(args.spans, args.traces_per_request, args.seed)
    warmup = fixed_requests(args.warmup_spans, args.traces_per_request, args.seed + 1)  # other span ids
    bodies, spans = load
    config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    result: dict[str, Any] = {
        "config": {
            **config,
            "requests": len(bodies),
            "spans_sent": sum(spans),
            "spans_per_request": sum(spans) / len(bodies),
            "proto_bytes_per_request": sum(map(len, bodies)) / len(bodies),
            "warmup_spans_sent": sum(warmup[1]),
            "phoenix_version": PHOENIX_VERSION,
            "poll_s": POLL_S,
        }
    }
    runners = {"llmscope": run_llmscope, "phoenix": run_phoenix}
    for system in systems:
        print(f"{system}: {sum(spans):,} spans over {args.protocol}", file=sys.stderr, flush=True)
        try:
            result[system] = runners[system](args, load, warmup)
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            result[system] = {"error": f"{exc!r}"[:600]}
    if all(s in result and "error" not in result[s] for s in SYSTEMS):
        result["ratios"] = ratios(result["llmscope"], result["phoenix"])
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
