"""`llmscope proxy`: the capture proxy on its own, exporting its spans over OTLP/HTTP to a collector.

Use it where the collector runs elsewhere (or to put a proxy next to each app); inside `llmscope
serve` use `--proxy-port` instead, which hands spans to the collector in process.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

DEFAULT_PROXY_PORT = 8787


def add_proxy_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    proxy = sub.add_parser("proxy", help="run the capture proxy alone; spans go to a collector over OTLP/HTTP")
    proxy.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    proxy.add_argument("--port", type=int, default=DEFAULT_PROXY_PORT, help=f"default {DEFAULT_PROXY_PORT}")
    proxy.add_argument(
        "--collector", default="http://127.0.0.1:4318", help="the collector's OTLP/HTTP endpoint (default :4318)"
    )
    proxy.add_argument("--openai-base-url", default="https://api.openai.com/v1", help="upstream OpenAI-compatible API")
    proxy.add_argument("--anthropic-base-url", default="https://api.anthropic.com", help="upstream Anthropic API")
    proxy.add_argument("--capture-content", action="store_true", help="record prompts and answers on the spans")


def run_proxy(args: argparse.Namespace) -> int:
    from llmscope_collector.auth.policy import is_loopback  # (here: `auth` loads pyarrow; see `cli`)
    from llmscope_proxy import ProxyAuthError, ProxyConfig, ProxyPortError, ProxyServer, http_sink

    open_to_network = not is_loopback(args.host)

    def authorize(credentials: tuple[tuple[str, str], ...]) -> None:
        """Beyond loopback an llmscope key is required (the collector verifies it on export)."""
        if open_to_network and "x-llmscope-api-key" not in dict(credentials):
            raise ProxyAuthError("an llmscope API key is required (x-llmscope-api-key header)")

    config = ProxyConfig(
        openai_base_url=args.openai_base_url,
        anthropic_base_url=args.anthropic_base_url,
        capture_content=args.capture_content,
    )
    server = ProxyServer(config, http_sink(args.collector), authorize, host=args.host, port=args.port)
    try:
        server.start()
    except ProxyPortError as exc:
        print(f"llmscope: {exc}. Pass --port.", file=sys.stderr)
        return 2
    print(
        f"llmscope proxy on {server.url}: OpenAI base_url {server.url}/v1, Anthropic base_url {server.url}; "
        f"spans to {args.collector}",
        flush=True,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0
