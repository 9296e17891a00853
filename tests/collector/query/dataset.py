"""A generated, seeded corpus of LLM traces sent through the real OTLP/gRPC receiver, and a
brute-force Python model of what the query API must answer for it.

Every trace is a root span plus 0-3 LLM calls (sometimes with the client library's own span nested
under a call, which must be counted once), sometimes a tool span; values are drawn from small pools
so that every filter matches some traces and misses others. Expectations (trace summaries, costs)
are computed here from the generated spans alone: costs straight from `genai_prices.calc_price`,
not from the collector's price book.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
import urllib.error
import urllib.request
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import genai_prices
import grpc
from genai_prices import Usage

from llmscope_collector.server import EmbeddedServer
from tests import otlp_factory as f

NS = 1_000_000_000
# 22:00 UTC, so the corpus crosses midnight: two date partitions, several hours and days.
T0_NS = int(dt.datetime(2026, 3, 15, 22, 0, tzinfo=dt.timezone.utc).timestamp()) * NS
METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

SERVICES = ("checkout", "search", "support")
MODELS = (
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("anthropic", "claude-3-5-haiku-latest"),
    ("acme", "mystery-model-9"),  # unknown to genai-prices: tokens counted, cost unknown
)
SESSIONS = (None, "sess-1", "sess-2", "sess-3", "sess-4", "sess-5")
USERS = (None, "u-1", "u-2", "u-3")
PROMPTS = (None, ("greet", "1"), ("greet", "2"), ("summarize", "1"))
TIERS = ("gold", "silver", "bronze")
WORDS = ("banana", "rocket", "violet", "Quartz")
TAGS = (None, "beta", "canary")


@dataclasses.dataclass
class GenSpan:
    trace_id: str
    span_id: str
    parent: str | None
    name: str
    start_ns: int
    end_ns: int
    service: str
    attrs: dict[str, Any]
    error: bool = False
    kind: int = 1
    # LLM call fields (None for other spans)
    provider: str | None = None
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read: int = 0
    counted: bool = False
    text: str = ""
    answer: str = ""

    def said(self, key: str) -> str | None:
        """The text of the span's captured `gen_ai.input.messages` (its user message) or output messages."""
        if key not in self.attrs:
            return None
        return str(json.loads(self.attrs[key])[-1]["parts"][0]["content"])

    @property
    def is_llm(self) -> bool:
        return self.model is not None


@dataclasses.dataclass
class GenTrace:
    trace_id: str
    spans: list[GenSpan]
    service: str
    session: str | None
    user: str | None
    tier: str
    tag: str | None

    @property
    def start_ns(self) -> int:
        return min(s.start_ns for s in self.spans)

    @property
    def end_ns(self) -> int:
        return max(s.end_ns for s in self.spans)

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    def llm(self) -> list[GenSpan]:
        return [s for s in self.spans if s.is_llm and s.counted]

    @property
    def models(self) -> set[str]:
        return {s.model for s in self.llm() if s.model}

    @property
    def providers(self) -> set[str]:
        return {s.provider for s in self.llm() if s.provider}

    @property
    def prompts(self) -> set[tuple[str, str]]:
        return {
            (s.attrs["gen_ai.prompt.name"], s.attrs["gen_ai.prompt.version"])
            for s in self.spans
            if "gen_ai.prompt.name" in s.attrs
        }

    @property
    def error_count(self) -> int:
        return sum(s.error for s in self.spans)

    @property
    def total_tokens(self) -> int:
        return sum(s.input_tokens + s.output_tokens for s in self.llm())

    @property
    def cost(self) -> Decimal | None:
        """Known cost of the counted calls; $0 without calls, None when no call could be priced."""
        known = [c for c in (expected_cost(s) for s in self.llm()) if c is not None]
        return sum(known, Decimal(0)) if known or not self.llm() else None

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.spans)

    @property
    def preview_input(self) -> str | None:
        """The first line of the user message of the earliest-starting LLM span with captured input."""
        with_input = [s for s in self.spans if s.is_llm and s.said("gen_ai.input.messages") is not None]
        first = min(with_input, key=lambda s: s.start_ns, default=None)
        return None if first is None else (first.said("gen_ai.input.messages") or "").splitlines()[0]

    @property
    def preview_output(self) -> str | None:
        """The first line of the answer of the latest-ending LLM span with captured output."""
        with_output = [s for s in self.spans if s.is_llm and s.said("gen_ai.output.messages") is not None]
        last = max(with_output, key=lambda s: s.end_ns, default=None)
        return None if last is None else (last.said("gen_ai.output.messages") or "").splitlines()[0]


def expected_cost(span: GenSpan) -> Decimal | None:
    """The price of one call from genai-prices directly; None when it has no price."""
    assert span.model is not None
    try:
        calc = genai_prices.calc_price(
            Usage(input_tokens=span.input_tokens, output_tokens=span.output_tokens, cache_read_tokens=span.cache_read),
            span.model,
            provider_id=span.provider,
            genai_request_timestamp=dt.datetime.fromtimestamp(span.start_ns / NS, tz=dt.timezone.utc),
        )
    except LookupError:
        return None
    return Decimal(str(calc.total_price))


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(2 * n))


def _llm_span(rng: random.Random, trace_id: str, parent: str, start: int, service: str, error: bool) -> GenSpan:
    provider, model = rng.choice(MODELS)
    end = start + rng.randrange(50, 4000) * 1_000_000
    inp, out = rng.randrange(1, 5000), rng.randrange(1, 2000)
    cache = rng.choice((0, 0, rng.randrange(0, inp + 1)))
    word = rng.choice(WORDS)
    text = f"please tell me about the {word} number {rng.randrange(1000)}"
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
        "gen_ai.response.model": model,
        "gen_ai.usage.input_tokens": inp,
        "gen_ai.usage.output_tokens": out,
        "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": text}]}]),
    }
    if cache:
        attrs["gen_ai.usage.cache_read.input_tokens"] = cache
    if rng.random() < 0.5:
        attrs["gen_ai.response.time_to_first_chunk"] = rng.randrange(1, 50) / 100
    prompt = rng.choice(PROMPTS)
    if prompt is not None:
        attrs["gen_ai.prompt.name"], attrs["gen_ai.prompt.version"] = prompt
    span_id = _hex(rng, 8)
    # No search word in it (the corpus' `text` is what `q` finds); its first line names the call.
    answer = f"Answer {span_id}.\nDetails follow."
    said = [{"role": "assistant", "parts": [{"type": "text", "content": answer}]}]
    attrs["gen_ai.output.messages"] = json.dumps(said)
    return GenSpan(
        trace_id,
        span_id,
        parent,
        f"chat {model}",
        start,
        end,
        service,
        attrs,
        error=error,
        kind=3,
        provider=provider,
        model=model,
        input_tokens=inp,
        output_tokens=out,
        cache_read=cache,
        counted=True,
        text=text,
        answer=answer,
    )


def generate(seed: int, n_traces: int, start_ns: int = T0_NS, step_s: int = 61) -> list[GenTrace]:
    rng = random.Random(seed)
    traces = []
    for i in range(n_traces):
        trace_id = _hex(rng, 16)
        service = rng.choice(SERVICES)
        session, user, tier, tag = rng.choice(SESSIONS), rng.choice(USERS), rng.choice(TIERS), rng.choice(TAGS)
        common: dict[str, Any] = {}
        if session:
            common["session.id"] = session
        if user:
            common["user.id"] = user
        if tag:
            common["llmscope.tags"] = [tag]
        root_start = start_ns + i * step_s * NS + rng.randrange(0, 1000) * 1_000_000
        root_id = _hex(rng, 8)
        children: list[GenSpan] = []
        at = root_start + 1_000_000
        for _ in range(rng.choice((0, 1, 1, 2, 3))):
            call = _llm_span(rng, trace_id, root_id, at, service, error=rng.random() < 0.12)
            call.attrs.update(common)
            children.append(call)
            if rng.random() < 0.2:  # the client library's own span for the same call: shown, counted once
                dup = dataclasses.replace(
                    call,
                    span_id=_hex(rng, 8),
                    parent=call.span_id,
                    start_ns=call.start_ns + 1000,
                    end_ns=call.end_ns - 1000,
                    counted=False,
                    error=False,
                    attrs=dict(call.attrs),
                )
                dup.attrs.pop("gen_ai.input.messages")
                dup.text = ""
                children.append(dup)
            at = call.end_ns + rng.randrange(0, 50) * 1_000_000
        if rng.random() < 0.3:
            end = at + rng.randrange(1, 500) * 1_000_000
            attrs = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup", **common}
            children.append(GenSpan(trace_id, _hex(rng, 8), root_id, "tool lookup", at, end, service, attrs))
            at = end
        root_end = at + rng.randrange(1, 100) * 1_000_000
        root = GenSpan(
            trace_id,
            root_id,
            None,
            "agent run",
            root_start,
            root_end,
            service,
            {"app.tier": tier, **common},
            error=rng.random() < 0.05,
        )
        traces.append(GenTrace(trace_id, [root, *children], service, session, user, tier, tag))
    return traces


def otlp_span(s: GenSpan) -> Any:
    """The generated span as the OTLP protobuf span an app would send."""
    return f.span(
        bytes.fromhex(s.trace_id),
        bytes.fromhex(s.span_id),
        s.name,
        s.start_ns,
        s.end_ns,
        parent=bytes.fromhex(s.parent) if s.parent else b"",
        attrs=s.attrs,
        kind=s.kind,
        error=s.error,
    )


def export(
    server: EmbeddedServer, traces: Iterable[GenTrace], metadata: tuple[tuple[str, str], ...] = (), batch: int = 50
) -> None:
    """Send the spans through OTLP/gRPC (one request per `batch` traces, grouped by service)."""
    items = list(traces)
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        call = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
        for lo in range(0, len(items), batch):
            by_service: dict[str, list[Any]] = {}
            for trace in items[lo : lo + batch]:
                for s in trace.spans:
                    by_service.setdefault(s.service, []).append(otlp_span(s))
            for service, spans in by_service.items():
                call(f.request(spans, service=service).SerializeToString(), timeout=30, metadata=metadata)
    server.collector.flush()


def get(
    server: EmbeddedServer, path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, Any]:
    req = urllib.request.Request(server.api_url + path, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def ok(server: EmbeddedServer, path: str, headers: dict[str, str] | None = None) -> Any:
    status, body = get(server, path, headers)
    assert status == 200, (path, status, body)
    return body
