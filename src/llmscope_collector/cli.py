"""The `llmscope` command: `serve` (collector + API) and `demo` (the same, plus demo traffic).

Argument parsing and printing only; everything else lives in `server`, `demo` and below. This module
and the subcommands' parser modules it imports load no pyarrow (a test holds it): `serve` calls
`tune_process_memory` first, and the allocator, numpy and remote-filesystem settings it makes take
effect only if pyarrow is not loaded yet.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from llmscope_collector.export_command import add_export_parser, run_export
from llmscope_collector.log_config import configure_logging
from llmscope_collector.proxy_command import add_proxy_parser, run_proxy
from llmscope_collector.settings import AUTH_MODES, DEFAULT_DATA_DIR, LOG_FORMATS, Settings, SettingsError
from llmscope_collector.sql_command import add_sql_parser, run_sql
from llmscope_collector.tail import add_tail_parser, run_tail

# The collector process's GIL switch interval (CPython's default is 5 ms). Its Parquet flush thread paces
# ingest: between its Arrow and Parquet calls, which run without the GIL, it waits for the GIL while the
# receivers and the WAL consumer run Python, up to one interval each time. The ingest bench, five
# alternating pairs on 2 cores (docs/collector.md): spans written per second, median 11.0k at 5 ms and
# 13.3k at 1 ms, the drain after load 20.5 s and 17.9 s, CPU per span alike.
GIL_SWITCH_INTERVAL_S = 0.001


def _add_server_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1; LLMSCOPE_HOST)")
    parser.add_argument("--otlp-grpc-port", type=int, help="OTLP/gRPC port (default 4317; LLMSCOPE_OTLP_GRPC_PORT)")
    parser.add_argument("--otlp-http-port", type=int, help="OTLP/HTTP port (default 4318; LLMSCOPE_OTLP_HTTP_PORT)")
    parser.add_argument(
        "--auth",
        choices=AUTH_MODES,
        help="API keys: auto = required unless on loopback (default), required, off (LLMSCOPE_AUTH)",
    )
    parser.add_argument("--log-format", choices=LOG_FORMATS, help="text (default) or json (LLMSCOPE_LOG_FORMAT)")
    parser.add_argument("--api-port", type=int, help="HTTP API port (default 8000; LLMSCOPE_API_PORT)")
    parser.add_argument(
        "--data-dir", type=Path, help=f"where spans are stored (default {DEFAULT_DATA_DIR}; LLMSCOPE_DATA_DIR)"
    )
    parser.add_argument(
        "--storage",
        help="s3://bucket/prefix: store every dataset in object storage, credentials and endpoint from the "
        "AWS_* variables; the data dir then holds the WAL and a query cache (LLMSCOPE_STORAGE; docs/scale.md)",
    )
    parser.add_argument(
        "--query-engine",
        help="duckdb (default), clickhouse://host:8123/db (a ClickHouse server) or chdb:// (ClickHouse in this "
        "process): what answers the API's queries (LLMSCOPE_QUERY_ENGINE; docs/scale.md)",
    )
    parser.add_argument(
        "--proxy-port",
        type=int,
        help="also run the capture proxy on this port, e.g. 8787 (docs/proxy.md; LLMSCOPE_PROXY_PORT)",
    )


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        host=args.host,
        otlp_grpc_port=args.otlp_grpc_port,
        otlp_http_port=args.otlp_http_port,
        api_port=args.api_port,
        data_dir=args.data_dir,
        storage=args.storage,
        query_engine=args.query_engine,
        auth=args.auth,
        log_format=args.log_format,
        proxy_port=args.proxy_port,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmscope", description="Observability for LLM applications.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the OTLP collector and the HTTP API")
    _add_server_flags(serve)
    demo = sub.add_parser("demo", help="serve, send demo traffic from an instrumented app, print a waterfall")
    _add_server_flags(demo)
    demo.add_argument("--traces", type=int, default=3, help="how many demo agent runs to send (default 3)")
    demo.add_argument("--exit", action="store_true", help="exit after printing instead of serving on")
    demo.add_argument(
        "--endpoint",
        help="send the demo traffic to a collector that is already running (its OTLP URL: "
        "http://127.0.0.1:4318 for OTLP/HTTP, or :4317 for gRPC) instead of starting one; the waterfall is read "
        "from --api-url",
    )
    demo.add_argument("--api-url", help="that collector's API (default http://127.0.0.1:<api port>; LLMSCOPE_API_URL)")
    _add_cleanup_parser(sub)
    add_tail_parser(sub)
    add_export_parser(sub)
    add_sql_parser(sub)
    add_proxy_parser(sub)
    return parser


def _add_cleanup_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cleanup = sub.add_parser("cleanup", help="delete date partitions older than the retention TTL, print stats")
    cleanup.add_argument(
        "--data-dir", type=Path, help=f"where spans are stored (default {DEFAULT_DATA_DIR}; LLMSCOPE_DATA_DIR)"
    )
    cleanup.add_argument("--dry-run", action="store_true", help="only report what would be deleted")
    cleanup.add_argument(
        "--retention-days", type=int, help="TTL in days, 0 = keep (default 30; LLMSCOPE_RETENTION_DAYS)"
    )
    cleanup.add_argument(
        "--project-days", help="per-project TTLs, e.g. staging=7,audit=365 (LLMSCOPE_RETENTION_PROJECT_DAYS)"
    )


def _cleanup(args: argparse.Namespace) -> int:
    from llmscope_collector.storage.retention import RetentionError, RetentionPolicy, cleanup

    settings = Settings.from_env(
        data_dir=args.data_dir, retention_days=args.retention_days, retention_project_days=args.project_days
    )
    if not settings.data_dir.is_dir():
        print(
            f"llmscope cleanup: {settings.data_dir} is not a data directory (it does not exist); pass the "
            "--data-dir that `llmscope serve` uses, or set LLMSCOPE_DATA_DIR",
            file=sys.stderr,
        )
        return 2
    try:
        policy = RetentionPolicy.parse(settings.retention_days, settings.retention_project_days)
    except RetentionError as exc:
        print(f"llmscope: {exc}", file=sys.stderr)
        return 2
    report = cleanup(settings.data_dir, policy, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    for item in report.expired:
        print(
            f"  {item.dataset}/project={item.project}/date={item.date}: {item.files} files, {item.bytes} bytes, "
            f"{item.rows} rows"
        )
    print(
        f"llmscope cleanup: {verb} {report.partitions} partitions, {report.files} files, {report.bytes} bytes, "
        f"{report.spans} spans; kept {report.kept_partitions} partitions (data in {settings.data_dir})"
    )
    for error in report.errors:
        print(f"llmscope cleanup: could not delete {error}", file=sys.stderr)
    return 1 if report.errors else 0


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "cleanup":
        return _cleanup(args)
    if args.command == "tail":
        return run_tail(args)
    if args.command == "export":
        return run_export(args)
    if args.command == "proxy":
        return run_proxy(args)
    if args.command == "sql":
        return run_sql(args)
    if args.command == "demo" and args.endpoint:
        from llmscope_collector.demo import run_demo_against
        from llmscope_collector.tail import default_api_url

        return run_demo_against(args.endpoint, args.api_url or default_api_url(), traces=args.traces)
    from llmscope_collector.process_memory import tune_gc, tune_process_memory

    tune_process_memory()  # this process is the collector: before its threads start and its modules load
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    from llmscope_collector.server import EmbeddedServer

    try:
        settings = _settings(args)
        configure_logging(settings.log_format)
        server = EmbeddedServer(settings)
        server.start()
        tune_gc()  # after the start: what it built is long-lived
    except SettingsError as exc:
        print(f"llmscope: {exc}", file=sys.stderr)
        return 2
    try:
        print(
            f"llmscope {args.command}: OTLP/gRPC on {server.settings.host}:{server.grpc_port}, "
            f"OTLP/HTTP on {server.settings.host}:{server.http_port}, "
            f"API on {server.api_url} (web UI {server.api_url}/, docs {server.api_url}/schema/swagger), "
            f"data in {server.settings.data_dir}",
            flush=True,
        )
        if server.proxy is not None:
            print(
                f"llmscope capture proxy on {server.proxy.url}: OpenAI base_url {server.proxy.url}/v1, "
                f"Anthropic base_url {server.proxy.url} (docs/proxy.md)",
                flush=True,
            )
        policy = server.collector.receivers.policy
        print(f"llmscope {policy.describe()}; {policy.admin.describe()}", flush=True)
        if args.command == "demo":
            from llmscope_collector.demo import run_demo

            code = run_demo(server, traces=args.traces)
            if args.exit or code != 0:
                return code
        print("serving; press Ctrl-C to stop", flush=True)
        _wait_for_signal()
        return 0
    finally:
        server.stop()
