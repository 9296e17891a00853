"""Realistic LLM traces as OTLP `ExportTraceServiceRequest`s, deterministic by seed.

Each trace is what an instrumented agent sends: an `invoke_agent` root (INTERNAL), LLM calls
(CLIENT, `chat {model}`, OTel GenAI v1.41 attributes, ~1 KB of captured content each: the chat
history grows turn by turn, as real agents resend it) and `execute_tool` spans between them.
Sessions group several traces; users own several sessions; ~2% of LLM calls fail.

Used by the ingest load generator (`ingest.py`: pre-serialized requests whose trace ids and
content are made unique per send by replacing markers) and by the store generator (`gen_store.py`).
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Iterator

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

# The first 8 bytes of every trace id of a template request: the load generator swaps them for a
# counter so each send carries new traces (the collector deduplicates on trace_id + span_id).
TRACE_MARKER = bytes.fromhex("7e57ab1e5eed0b0e")
# In every generated text of a marker template (user messages, answers, tool results), swapped for
# the same counter in hex: each send then carries new content, as real traffic does, instead of
# the templates' content over and over (which any per-process cache of parsed content would hit).
CONTENT_MARKER = "c0ntentmark3r0ff"

MODELS = [  # (provider, request model, response model, weight): all priced by genai-prices
    ("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929", 5),
    ("anthropic", "claude-3-5-haiku-latest", "claude-3-5-haiku-20241022", 2),
    ("openai", "gpt-4o", "gpt-4o-2024-08-06", 3),
    ("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", 3),
]
SERVICES = ["support-bot", "research-agent", "sql-copilot", "triage"]
TOOLS = ["search_docs", "get_order", "run_sql", "fetch_url", "get_weather"]
PROMPTS = [("support-answer", "3"), ("support-answer", "4"), ("plan-research", "1"), (None, None)]
_WORDS = [
    "the",
    "order",
    "refund",
    "policy",
    "customer",
    "account",
    "invoice",
    "shipping",
    "delay",
    "status",
    "error",
    "database",
    "query",
    "table",
    "latency",
    "region",
    "model",
    "answer",
    "context",
    "document",
    "summary",
    "billing",
    "plan",
    "upgrade",
    "support",
    "ticket",
    "please",
    "check",
    "whether",
    "could",
    "you",
    "explain",
    "why",
    "this",
    "happened",
    "and",
    "what",
    "we",
    "should",
    "do",
    "next",
]
NS_PER_S = 1_000_000_000


def _kv(key: str, value: str | int | float | bool | list[str]) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    if isinstance(value, list):
        arr = ArrayValue(values=[AnyValue(string_value=v) for v in value])
        return KeyValue(key=key, value=AnyValue(array_value=arr))
    return KeyValue(key=key, value=AnyValue(string_value=value))


_CORPUS_RNG = random.Random(0)
_CORPUS = " ".join(_CORPUS_RNG.choice(_WORDS) for _ in range(200_000))


def _text(rng: random.Random, words: int) -> str:
    """About `words` words of filler text: a random slice of a fixed corpus (cheap, deterministic)."""
    start = rng.randrange(len(_CORPUS) - 8 * words)
    return _CORPUS[start : start + 7 * words]


@dataclasses.dataclass
class TraceShape:
    """Knobs of the generated traffic (defaults: ~9 spans per trace, ~1 KB content per LLM span)."""

    llm_calls: tuple[int, int] = (2, 5)  # per trace, inclusive range
    user_words: int = 60
    answer_words: int = 60
    traces_per_session: int = 5
    users: int = 2000
    error_rate: float = 0.02


@dataclasses.dataclass
class GeneratedTrace:
    service: str
    spans: list[Span]
    start_ns: int


class TraceFactory:
    """Builds traces one after another from one seeded RNG (same seed, same traces, same bytes)."""

    def __init__(self, seed: int, shape: TraceShape | None = None, *, marker: bool = False) -> None:
        self.rng = random.Random(seed)
        self.shape = shape or TraceShape()
        self.marker = marker
        self._tag = f" [{CONTENT_MARKER}]" if marker else ""
        self._models = [m for m in MODELS for _ in range(m[3])]
        self._session = ""
        self._session_left = 0
        self._user = ""
        self.traces = 0
        self.spans = 0

    def _id(self, n: int) -> bytes:
        return self.rng.getrandbits(n * 8).to_bytes(n, "big") or b"\x01" * n

    def _trace_id(self) -> bytes:
        return (TRACE_MARKER + self._id(8)) if self.marker else self._id(16)

    def trace(self, start_ns: int) -> GeneratedTrace:
        rng, shape = self.rng, self.shape
        if self._session_left <= 0:
            self._session = f"sess-{self._id(6).hex()}"
            self._user = f"user-{rng.randrange(shape.users):05d}"
            self._session_left = rng.randint(1, 2 * shape.traces_per_session - 1)
        self._session_left -= 1
        service = rng.choice(SERVICES)
        trace_id = self._trace_id()
        root_id = self._id(8)
        provider, model, response_model, _ = rng.choice(self._models)
        prompt_name, prompt_version = rng.choice(PROMPTS)
        common = [_kv("session.id", self._session), _kv("user.id", self._user)]
        spans: list[Span] = []
        t = start_ns + rng.randrange(1, 5) * 1_000_000
        system = f"You are {service}, a helpful assistant. " + _text(rng, 20)
        history: list[dict[str, object]] = [
            {"role": "user", "parts": [{"type": "text", "content": _text(rng, shape.user_words) + self._tag}]}
        ]
        failed = False
        for call in range(rng.randint(*shape.llm_calls)):
            llm_id = self._id(8)
            duration = rng.randrange(300, 4000) * 1_000_000
            error = rng.random() < shape.error_rate
            input_tokens = 200 + 40 * len(history) + rng.randrange(100)
            output_tokens = 0 if error else 20 + rng.randrange(300)
            cache_read = (input_tokens // 2) if call > 0 and provider == "anthropic" else 0
            last = call == shape.llm_calls[1] - 1 or rng.random() < 0.2
            tool = None if last or error else rng.choice(TOOLS)
            answer = _text(rng, shape.answer_words) + self._tag
            out_parts: list[dict[str, object]] = [{"type": "text", "content": answer}]
            if tool:
                out_parts.append(
                    {
                        "type": "tool_call",
                        "id": f"call_{self._id(6).hex()}",
                        "name": tool,
                        "arguments": {"query": _text(rng, 6)},
                    }
                )
            attrs = [
                _kv("gen_ai.operation.name", "chat"),
                _kv("gen_ai.provider.name", provider),
                _kv("gen_ai.request.model", model),
                _kv("gen_ai.request.max_tokens", 1024),
                _kv("gen_ai.request.temperature", 0.2),
                _kv("server.address", "api.anthropic.com" if provider == "anthropic" else "api.openai.com"),
                _kv("server.port", 443),
                _kv("gen_ai.system_instructions", json.dumps([{"type": "text", "content": system}])),
                _kv("gen_ai.input.messages", json.dumps(history)),
                *common,
            ]
            if prompt_name:
                attrs += [_kv("gen_ai.prompt.name", prompt_name), _kv("gen_ai.prompt.version", prompt_version or "")]
            status = Status(code=Status.STATUS_CODE_UNSET)
            if error:
                attrs.append(_kv("error.type", "overloaded_error"))
                status = Status(code=Status.STATUS_CODE_ERROR, message="Overloaded")
                failed = True
            else:
                attrs += [
                    _kv("gen_ai.response.id", f"msg_{self._id(8).hex()}"),
                    _kv("gen_ai.response.model", response_model),
                    _kv("gen_ai.response.finish_reasons", ["tool_call" if tool else "stop"]),
                    _kv("gen_ai.usage.input_tokens", input_tokens),
                    _kv("gen_ai.usage.output_tokens", output_tokens),
                    _kv("gen_ai.usage.cache_read.input_tokens", cache_read),
                    _kv(
                        "gen_ai.output.messages",
                        json.dumps(
                            [
                                {
                                    "role": "assistant",
                                    "parts": out_parts,
                                    "finish_reason": "tool_call" if tool else "stop",
                                }
                            ]
                        ),
                    ),
                ]
            spans.append(
                Span(
                    trace_id=trace_id,
                    span_id=llm_id,
                    parent_span_id=root_id,
                    name=f"chat {model}",
                    kind=Span.SPAN_KIND_CLIENT,
                    start_time_unix_nano=t,
                    end_time_unix_nano=t + duration,
                    attributes=attrs,
                    status=status,
                )
            )
            t += duration + rng.randrange(1, 3) * 1_000_000
            history.append({"role": "assistant", "parts": out_parts})
            if error:
                break
            if tool is None:
                break
            tool_id = self._id(8)
            tool_duration = rng.randrange(5, 800) * 1_000_000
            result = _text(rng, 30) + self._tag
            spans.append(
                Span(
                    trace_id=trace_id,
                    span_id=tool_id,
                    parent_span_id=root_id,
                    name=f"execute_tool {tool}",
                    kind=Span.SPAN_KIND_INTERNAL,
                    start_time_unix_nano=t,
                    end_time_unix_nano=t + tool_duration,
                    attributes=[
                        _kv("gen_ai.operation.name", "execute_tool"),
                        _kv("gen_ai.tool.name", tool),
                        _kv("gen_ai.tool.type", "function"),
                        *common,
                    ],
                )
            )
            t += tool_duration + 1_000_000
            history.append({"role": "tool", "parts": [{"type": "tool_call_response", "response": result}]})
        root_attrs = [_kv("gen_ai.operation.name", "invoke_agent"), _kv("gen_ai.agent.name", service), *common]
        root_status = Status(code=Status.STATUS_CODE_ERROR if failed else Status.STATUS_CODE_UNSET)
        spans.insert(
            0,
            Span(
                trace_id=trace_id,
                span_id=root_id,
                name=f"invoke_agent {service}",
                kind=Span.SPAN_KIND_INTERNAL,
                start_time_unix_nano=start_ns,
                end_time_unix_nano=t,
                attributes=root_attrs,
                status=root_status,
            ),
        )
        self.traces += 1
        self.spans += len(spans)
        return GeneratedTrace(service, spans, start_ns)

    def request(self, traces: list[GeneratedTrace]) -> ExportTraceServiceRequest:
        """One request, one ResourceSpans per service (as several SDKs behind one exporter would send)."""
        by_service: dict[str, list[Span]] = {}
        for tr in traces:
            by_service.setdefault(tr.service, []).extend(tr.spans)
        scope = InstrumentationScope(name="llmscope", version="0.1.0")
        return ExportTraceServiceRequest(
            resource_spans=[
                ResourceSpans(
                    resource=Resource(attributes=[_kv("service.name", svc), _kv("deployment.environment", "prod")]),
                    scope_spans=[ScopeSpans(scope=scope, spans=spans)],
                )
                for svc, spans in sorted(by_service.items())
            ]
        )


def requests(
    seed: int,
    total_traces: int,
    traces_per_request: int,
    start_ns: int,
    span_s: float,
    shape: TraceShape | None = None,
    *,
    marker: bool = False,
) -> Iterator[tuple[ExportTraceServiceRequest, int]]:
    """`(request, span count)` pairs of `total_traces` traces starting evenly over `span_s` seconds."""
    factory = TraceFactory(seed, shape, marker=marker)
    step = span_s * NS_PER_S / max(total_traces, 1)
    done = 0
    while done < total_traces:
        n = min(traces_per_request, total_traces - done)
        batch = [factory.trace(start_ns + int((done + i) * step)) for i in range(n)]
        done += n
        yield factory.request(batch), sum(len(t.spans) for t in batch)
