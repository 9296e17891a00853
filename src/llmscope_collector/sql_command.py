"""`llmscope sql`: read-only SQL over one project's traces, spans, sessions and scores (docs/sql.md).

Reads the data dir directly (no server needed, and a running server is not disturbed: the files
are only read) through `query.sandbox`, and prints the result as an aligned table, CSV, JSON (an
array) or JSON lines. CSV and JSON lines stream batch by batch, so a large result is never held.

Exit codes: 0 done; 1 the query failed (syntax, unknown column, memory); 2 refused (not a single
SELECT, or it reaches beyond the project's views) or bad arguments; 124 past the time limit.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from llmscope_collector.settings import DEFAULT_DATA_DIR, Settings, SettingsError

EXIT_FAILED, EXIT_REFUSED, EXIT_TIMEOUT = 1, 2, 124
FORMATS = ("table", "csv", "json", "jsonl")


def add_sql_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = sub.add_parser(
        "sql",
        help="run a read-only SELECT over one project's spans, traces, sessions and scores (docs/sql.md)",
        description="Views: spans, traces, sessions, scores (and content with --content), of one project.",
    )
    cmd.add_argument("query", nargs="?", help="the SELECT to run; '-' or nothing reads it from stdin")
    cmd.add_argument("-f", "--file", type=Path, help="read the query from this file")
    cmd.add_argument("--project", default="default", help="the project whose data the views show (default: default)")
    cmd.add_argument("--content", action="store_true", help="also the `content` view: captured prompts and outputs")
    cmd.add_argument("--format", choices=FORMATS, default="table", help="table (default), csv, json or jsonl")
    cmd.add_argument("--max-rows", type=int, default=1000, help="rows a table shows (default 1000; csv/json: all)")
    cmd.add_argument("--timeout", type=float, default=60.0, help="seconds before the query is stopped (default 60)")
    cmd.add_argument("--memory-limit", default="1GB", help="DuckDB memory limit for the query (default 1GB)")
    cmd.add_argument(
        "--data-dir", type=Path, help=f"where spans are stored (default {DEFAULT_DATA_DIR}; LLMSCOPE_DATA_DIR)"
    )


def _query_text(args: argparse.Namespace) -> str:
    if args.file is not None:
        return str(args.file.read_text())
    if args.query is None or args.query == "-":
        return sys.stdin.read()
    return str(args.query)


def run_sql(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from llmscope_collector.query import sandbox
    from llmscope_collector.storage.cluster import query_dir

    out = out or sys.stdout
    try:
        text = _query_text(args)
        data_dir = query_dir(Settings.from_env(data_dir=args.data_dir))
    except (OSError, SettingsError) as exc:
        return _fail(EXIT_REFUSED, str(exc))
    if not text.strip():
        return _fail(EXIT_REFUSED, "no query given (an argument, -f FILE, or stdin)")
    if not data_dir.is_dir():
        return _fail(EXIT_REFUSED, f"{data_dir} is not a data directory; pass --data-dir or set LLMSCOPE_DATA_DIR")
    try:
        conn = sandbox.open_project(data_dir, args.project, content=args.content, memory_limit=args.memory_limit)
    except (sandbox.SqlRefused, sandbox.SqlFailed) as exc:
        return _fail(EXIT_REFUSED, str(exc))
    try:
        batches = sandbox.run(conn, text, timeout_s=args.timeout)
        WRITERS[args.format](batches, out, args.max_rows)
    except sandbox.SqlRefused as exc:
        return _fail(EXIT_REFUSED, f"refused: {exc}")
    except sandbox.SqlTimeout as exc:
        return _fail(EXIT_TIMEOUT, str(exc))
    except sandbox.SqlFailed as exc:
        return _fail(EXIT_FAILED, str(exc))
    finally:
        conn.close()
    return 0


def _fail(code: int, message: str) -> int:
    print(f"llmscope sql: {message}", file=sys.stderr)
    return code


def _rows(batches: Iterator[Any]) -> Iterator[tuple[list[str], dict[str, Any]]]:
    for batch in batches:
        columns = batch.schema.names
        for row in batch.to_pylist():
            yield columns, row


def _json_value(value: Any) -> Any:
    """Python values as JSON takes them: money (decimals) as numbers, times and dates as ISO text."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime | dt.date | dt.time | dt.timedelta):
        return str(value) if isinstance(value, dt.timedelta) else value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        # a map column comes as a list of (key, value) pairs
        return [_json_value(v) for v in value]
    return value


def _encode(row: dict[str, Any]) -> str:
    import json

    return json.dumps({k: _json_value(v) for k, v in row.items()}, ensure_ascii=False, allow_nan=False, default=str)


def _write_jsonl(batches: Iterator[Any], out: TextIO, _max_rows: int) -> None:
    for _, row in _rows(batches):
        out.write(_encode(row) + "\n")


def _write_json(batches: Iterator[Any], out: TextIO, _max_rows: int) -> None:
    out.write("[")
    for n, (_, row) in enumerate(_rows(batches)):
        out.write(("," if n else "") + "\n" + _encode(row))
    out.write("\n]\n")


def _cell(value: Any) -> str:
    import json

    if value is None:
        return ""
    if isinstance(value, dict | list | tuple):
        return json.dumps(_json_value(value), ensure_ascii=False, default=str)
    return str(value)


def _write_csv(batches: Iterator[Any], out: TextIO, _max_rows: int) -> None:
    writer = csv.writer(out, lineterminator="\n")
    header = False
    for batch in batches:
        if not header:
            writer.writerow(batch.schema.names)
            header = True
        for row in batch.to_pylist():
            writer.writerow([_cell(v) for v in row.values()])


def _write_table(batches: Iterator[Any], out: TextIO, max_rows: int) -> None:
    columns: list[str] = []
    shown: list[list[str]] = []
    total = 0
    for batch in batches:
        columns = batch.schema.names
        for row in batch.to_pylist():
            total += 1
            if len(shown) < max_rows:
                shown.append([_cell(v).replace("\n", " ")[:200] for v in row.values()])
    widths = [max([len(c), *(len(r[i]) for r in shown)]) for i, c in enumerate(columns)]
    out.write(" | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip() + "\n")
    out.write("-+-".join("-" * w for w in widths) + "\n")
    for row in shown:
        out.write(" | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")
    more = f" ({total - len(shown)} more not shown; --max-rows, or --format csv/jsonl)" if total > len(shown) else ""
    out.write(f"({total} row{'s' if total != 1 else ''}){more}\n")


WRITERS = {"table": _write_table, "csv": _write_csv, "json": _write_json, "jsonl": _write_jsonl}
