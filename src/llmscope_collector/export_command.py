"""`llmscope export`: stream a running server's traces (or spans) to a file or stdout.

A client of `GET /v1/export` (docs/api.md, columns in docs/export.md): the server selects with the
trace list's filters and streams; this copies the stream in chunks (bounded memory on both sides)
and, when writing to a file, reports progress (bytes, and rows for JSON lines and CSV) on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import BinaryIO

from llmscope_collector.tail import default_api_url

CHUNK = 64 * 1024


def add_export_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    export = sub.add_parser("export", help="stream traces or spans of a running server as JSON lines, CSV or Parquet")
    export.add_argument("--from", dest="from_", help="trace start at or after (ISO 8601 or epoch ns)")
    export.add_argument("--to", help="trace start before (ISO 8601 or epoch ns)")
    export.add_argument("--format", choices=("jsonl", "csv", "parquet"), default="jsonl", help="default jsonl")
    export.add_argument("--level", choices=("traces", "spans"), default="traces", help="a row per trace or per span")
    export.add_argument(
        "--content",
        action="store_true",
        help="add each span's captured content (prompts, completions, payloads); implies --level spans",
    )
    export.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="any trace list filter, repeatable: service=search, attr.app.tier=gold, score.helpfulness>=0.5",
    )
    export.add_argument("-o", "--output", help="file to write (default: stdout)")
    export.add_argument("--url", help="API base URL (default http://<LLMSCOPE_HOST>:<LLMSCOPE_API_PORT>)")
    export.add_argument("--api-key", help="API key or admin token (LLMSCOPE_API_KEY); not needed on loopback")
    export.add_argument("--project", help="project to read with the admin token (x-llmscope-project)")


def export_url(base: str, args: argparse.Namespace) -> str:
    """The `/v1/export` URL of the arguments; a filter `score.x>=1` goes as `score.x>` = `1`, as typed."""
    level = "spans" if args.content else args.level
    params: list[tuple[str, str]] = [("format", args.format), ("level", level)]
    if args.content:
        params.append(("content", "true"))
    if args.from_:
        params.append(("from", args.from_))
    if args.to:
        params.append(("to", args.to))
    for item in args.filter:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(f"--filter {item!r} is not NAME=VALUE")
        params.append((name, value))
    return f"{base.rstrip('/')}/v1/export?{urllib.parse.urlencode(params)}"


def run_export(args: argparse.Namespace) -> int:
    try:
        url = export_url(args.url or default_api_url(), args)
    except ValueError as exc:
        print(f"llmscope export: {exc}", file=sys.stderr)
        return 2
    headers = {}
    api_key = args.api_key or os.environ.get("LLMSCOPE_API_KEY")
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    if args.project:
        headers["x-llmscope-project"] = args.project
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            version = response.headers.get("x-llmscope-export-version", "?")
            if args.output:
                with open(args.output, "wb") as out:
                    rows = copy(response, out, progress=True, csv_header=args.format == "csv")
                if args.format == "parquet":
                    rows = parquet_rows(args.output)
                level = "spans" if args.content else args.level
                print(
                    f"\rllmscope export: {rows} {level} written to {args.output} (export schema v{version})",
                    file=sys.stderr,
                )
            else:
                copy(response, sys.stdout.buffer, progress=False, csv_header=args.format == "csv")
    except urllib.error.HTTPError as exc:
        print(f"llmscope export: {exc.code} {exc.read().decode(errors='replace')}", file=sys.stderr)
        return 1
    except urllib.error.URLError as exc:
        print(f"llmscope export: cannot reach {url}: {exc.reason}", file=sys.stderr)
        return 1
    return 0


def parquet_rows(path: str) -> int:
    """The rows of a Parquet file, from its footer."""
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


def copy(source: BinaryIO, out: BinaryIO, *, progress: bool, csv_header: bool) -> int:
    """Copy the stream chunk by chunk; returns the rows copied (lines; CSV without its header; for
    Parquet the count is meaningless: the caller reads it from the file's footer)."""
    lines = 0
    written = 0
    last = 0.0
    while chunk := source.read(CHUNK):
        out.write(chunk)
        lines += chunk.count(b"\n")
        written += len(chunk)
        now = time.monotonic()
        if progress and now - last >= 0.5:
            print(f"\rllmscope export: {written / 1e6:.1f} MB, {lines} rows", end="", file=sys.stderr)
            last = now
    out.flush()
    return max(0, lines - 1) if csv_header else lines
