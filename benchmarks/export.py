"""Export a generated store through `llmscope serve` with `llmscope export`: throughput and peak memory.

    python benchmarks/export.py --data-dir /tmp/store [--formats jsonl,csv,parquet] [--content] [--json out.json]

A child `llmscope serve` on the store (`benchmarks/gen_store.py`), then per format a child
`llmscope export --level spans -o FILE` of everything (and of the first quarter of the time range,
to show the memory does not grow with the export's size). Measured: wall time (spans/s, MB/s of
output), the server's RSS (main process: the API runs the export; sampled every 50 ms, peak minus the
idle figure before the export too) and the CLI's peak RSS (sampled every 20 ms), rows and bytes
written. Bounded memory means the server's and the CLI's peaks stay the same whatever the export's size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pyarrow.parquet as pq
from ingest import start_server, stop_server, tree_rss_mb

_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def rss_mb(pid: int) -> float:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE_KB / 1024.0
    except OSError:
        return 0.0


class Peak(threading.Thread):
    """The peak RSS of one process (its main process only: the export runs in the API's threads)."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak_mb = pid, interval, 0.0
        self.samples: list[float] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            now = rss_mb(self.pid)
            self.samples.append(now)
            self.peak_mb = max(self.peak_mb, now)

    def stop(self) -> float:
        self._halt.set()
        self.join()
        return self.peak_mb


def run_cli(api: str, fmt: str, out: Path, content: bool, to: str | None) -> tuple[float, float]:
    """`llmscope export` as a child; (wall seconds, its peak RSS in MB, sampled: the kernel's
    ru_maxrss of a child counts the parent's pages it was forked with)."""
    cmd = [sys.executable, "-m", "llmscope_collector", "export", "--url", api, "--level", "spans"]
    cmd += ["--format", fmt, "-o", str(out), *(["--content"] if content else []), *(["--to", to] if to else [])]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sampler = Peak(proc.pid, interval=0.02)
    sampler.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - started
    peak = sampler.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"llmscope export failed ({proc.returncode}): {err.decode(errors='replace')[-500:]}")
    return wall, peak


def rows_of(path: Path, fmt: str) -> int:
    if fmt == "parquet":
        return int(pq.ParquetFile(path).metadata.num_rows)
    with path.open("rb") as fh:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
    return lines - 1 if fmt == "csv" else lines


def quarter_end(data_dir: Path) -> str:
    """A quarter of the way through the days the store's spans start on (UTC, ISO 8601)."""
    dates = sorted(p.name.removeprefix("date=") for p in (data_dir / "spans").glob("project=*/date=*"))
    first = dt.datetime.fromisoformat(dates[0]).replace(tzinfo=dt.timezone.utc)
    end = dt.datetime.fromisoformat(dates[-1]).replace(tzinfo=dt.timezone.utc) + dt.timedelta(days=1)
    return (first + (end - first) / 4).isoformat()


def export_once(server: Any, fmt: str, content: bool, to: str | None, out_dir: Path) -> dict[str, Any]:
    out = out_dir / f"export.{fmt}"
    idle = rss_mb(server.proc.pid)
    sampler = Peak(server.proc.pid)
    sampler.start()
    try:
        wall, cli_peak = run_cli(server.api, fmt, out, content, to)
    finally:
        server_peak = sampler.stop()
    rows, size = rows_of(out, fmt), out.stat().st_size
    out.unlink()
    return {
        "rows": rows,
        "bytes": size,
        "seconds": round(wall, 2),
        "spans_per_s": round(rows / wall),
        "mb_per_s": round(size / 1e6 / wall, 1),
        "server_idle_rss_mb": round(idle, 1),
        "server_peak_rss_mb": round(server_peak, 1),
        "server_added_rss_mb": round(server_peak - idle, 1),
        "cli_peak_rss_mb": round(cli_peak, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--formats", default="jsonl,csv,parquet")
    parser.add_argument("--content", action="store_true", help="export the captured content too")
    parser.add_argument("--no-quarter", action="store_true", help="skip the quarter-size export of each format")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    quarter = quarter_end(args.data_dir)
    server = start_server(args.data_dir, {"LLMSCOPE_COMPACTION_INTERVAL_S": "0", "LLMSCOPE_ALERTS_TICK_S": "0"})
    results: dict[str, Any] = {"store": str(args.data_dir), "content": args.content, "formats": {}}
    try:
        results["server_start_rss_mb"] = round(rss_mb(server.proc.pid), 1)
        results["server_tree_start_rss_mb"] = round(tree_rss_mb(server.proc.pid), 1)
        with tempfile.TemporaryDirectory(prefix="llmscope-export-bench-") as tmp:
            for fmt in args.formats.split(","):
                figures: dict[str, Any] = {}
                if not args.no_quarter:
                    figures["quarter"] = export_once(server, fmt, args.content, quarter, Path(tmp))
                    print(f"{fmt} quarter: {figures['quarter']}", file=sys.stderr, flush=True)
                figures["all"] = export_once(server, fmt, args.content, None, Path(tmp))
                print(f"{fmt} all: {figures['all']}", file=sys.stderr, flush=True)
                results["formats"][fmt] = figures
    finally:
        stop_server(server)
    text = json.dumps(results, indent=2)
    if args.json:
        args.json.write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
