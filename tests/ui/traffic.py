"""Deterministic UI test data: small agent traces (LLM calls, a tool call, captured chat content,
one failing tool) and optionally one very large trace, sent over real OTLP/HTTP to the server."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from llmscope_collector.server import EmbeddedServer
from tests.otlp_factory import request, span

MS = 1_000_000
SERVICES = ("chatbot", "rag-api")
SESSIONS = ("sess-alpha", "sess-beta", "sess-gamma")
ERROR_TRACE = 3  # the trace whose tool call fails


def trace_id(i: int) -> str:
    return f"{0xA1 + i:02x}" * 16


def _sid(i: int, n: int) -> bytes:
    return bytes.fromhex(f"{i + 1:04x}{n:012x}")


def _events_exception(at_ns: int) -> list[Any]:
    from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

    from tests.otlp_factory import kvs

    attrs = {
        "exception.type": "TimeoutError",
        "exception.message": "search backend did not answer in 2 s",
        "exception.stacktrace": 'Traceback (most recent call last):\n  File "agent.py", line 42\nTimeoutError',
    }
    return [PbSpan.Event(time_unix_nano=at_ns, name="exception", attributes=kvs(attrs))]


def agent_trace(i: int, base_ns: int) -> tuple[str, list[Span]]:
    """Trace `i`: root → chat (anthropic, asks for a tool) → tool (→ http) → chat (openai, answers)."""
    tid = bytes.fromhex(trace_id(i))
    t0 = base_ns + i * 20_000 * MS
    session, user = SESSIONS[i % 3], f"user-{i % 2}"
    common = {"session.id": session, "user.id": user}
    question = f"How do I reset my password? (ticket {i})"
    version = "v1" if i % 2 else "v2"
    llm1_end = t0 + (300 + 40 * i) * MS
    tool_end = llm1_end + 250 * MS
    failed = i == ERROR_TRACE
    llm1 = {
        **common,
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-sonnet-4-6",
        "gen_ai.response.model": "claude-sonnet-4-6",
        "gen_ai.usage.input_tokens": 1200 + 10 * i,
        "gen_ai.usage.output_tokens": 80 + i,
        "gen_ai.response.time_to_first_chunk": 0.12,
        "gen_ai.response.finish_reasons": ["tool_use"],
        "gen_ai.prompt.name": "support-answer",
        "gen_ai.prompt.version": version,
        "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "You are the support bot."}]),
        "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": question}]}]),
        "gen_ai.output.messages": json.dumps(
            [
                {
                    "role": "assistant",
                    "finish_reason": "tool_call",
                    "parts": [
                        {"type": "text", "content": "Let me look that up."},
                        {
                            "type": "tool_call",
                            "id": f"call_{i}",
                            "name": "search_docs",
                            "arguments": {"query": "reset password"},
                        },
                    ],
                }
            ]
        ),
    }
    tool = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "search_docs",
        "gen_ai.tool.call.id": f"call_{i}",
    }
    spans = [
        span(
            tid,
            _sid(i, 1),
            "invoke_agent support-bot",
            t0,
            tool_end + 500 * MS,
            attrs={**common, "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support-bot"},
        ),
        span(tid, _sid(i, 2), "chat claude-sonnet-4-6", t0 + 5 * MS, llm1_end, parent=_sid(i, 1), attrs=llm1, kind=3),
        span(
            tid, _sid(i, 3), "execute_tool search_docs", llm1_end, tool_end, parent=_sid(i, 1), attrs=tool, error=failed
        ),
        span(
            tid,
            _sid(i, 4),
            "GET /search",
            llm1_end + 10 * MS,
            tool_end - 10 * MS,
            parent=_sid(i, 3),
            kind=3,
            attrs={"http.request.method": "GET", "url.path": "/search"},
        ),
    ]
    if failed:
        spans[2].events.extend(_events_exception(tool_end - 5 * MS))
    answer = {
        **common,
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.usage.input_tokens": 900,
        "gen_ai.usage.output_tokens": 150 + 5 * i,
        "gen_ai.response.time_to_first_chunk": 0.08,
        "gen_ai.input.messages": json.dumps(
            [
                {"role": "user", "parts": [{"type": "text", "content": question}]},
                {
                    "role": "tool",
                    "parts": [
                        {"type": "tool_call_response", "id": f"call_{i}", "response": "Settings → Security → Reset."}
                    ],
                },
            ]
        ),
        "gen_ai.output.messages": json.dumps(
            [
                {
                    "role": "assistant",
                    "finish_reason": "stop",
                    "parts": [{"type": "text", "content": "Open Settings → Security."}],
                }
            ]
        ),
    }
    spans.append(
        span(
            tid,
            _sid(i, 5),
            "chat gpt-4o",
            tool_end + 5 * MS,
            tool_end + 480 * MS,
            parent=_sid(i, 1),
            attrs=answer,
            kind=3,
        )
    )
    return SERVICES[i % 2], spans


def big_trace(n_spans: int, base_ns: int) -> list[Span]:
    """One trace of `n_spans` spans: a root with nested groups of LLM calls (depth up to 3)."""
    tid = bytes.fromhex(trace_id(0x40))
    sid = lambda n: bytes.fromhex(f"b1{n:014x}")  # noqa: E731
    out = [span(tid, sid(0), "batch job", base_ns, base_ns + n_spans * MS, attrs={"session.id": "sess-batch"})]
    n = 1
    while n < n_spans:
        group = n
        start = base_ns + n * MS
        out.append(span(tid, sid(group), f"step {group}", start, start + 40 * MS, parent=sid(0)))
        n += 1
        for k in range(min(9, n_spans - n)):
            s0 = start + k * 4 * MS
            attrs = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 100,
                "gen_ai.usage.output_tokens": 10,
            }
            out.append(
                span(tid, sid(n), f"chat gpt-4o-mini #{n}", s0, s0 + 3 * MS, parent=sid(group), attrs=attrs, kind=3)
            )
            n += 1
    return out


def send(server: EmbeddedServer, batches: list[tuple[str, list[Span]]]) -> None:
    url = f"http://127.0.0.1:{server.http_port}/v1/traces"
    with httpx.Client(timeout=30) as client:
        for service, spans in batches:
            body = request(spans, service=service).SerializeToString()
            resp = client.post(url, content=body, headers={"content-type": "application/x-protobuf"})
            resp.raise_for_status()
    server.collector.flush()


def wait_for_traces(server: EmbeddedServer, count: int, timeout: float = 15.0) -> None:
    """Until the trace list (summary index) shows `count` traces."""
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        body = httpx.get(f"{server.api_url}/v1/traces", params={"limit": 1000}).json()
        seen = len(body["traces"])
        if seen >= count:
            return
        time.sleep(0.1)
    raise AssertionError(f"{seen} of {count} traces visible after {timeout} s")


def load_demo(server: EmbeddedServer, traces: int = 12, big_spans: int = 0) -> int:
    """Send the agent traces (and a big trace when `big_spans`); returns how many traces were sent."""
    base = time.time_ns() - 30 * 60 * 1_000_000_000  # half an hour ago: inside the UI's default ranges
    batches = [agent_trace(i, base) for i in range(traces)]
    if big_spans:
        batches.append(("batch-worker", big_trace(big_spans, base - 5 * 60 * 1_000_000_000)))
    send(server, batches)
    total = traces + (1 if big_spans else 0)
    wait_for_traces(server, total)
    return total
