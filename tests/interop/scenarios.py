"""What every interop param does to its client, and what the API must show for it.

The same calls for every package of a client (two non-streamed calls sharing a cacheable prefix, the
streamed variants, one failing call), so the matrix compares like with like. The truth is what the
real client returned from the simulated provider, never what the instrumentation claims.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import threading
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from opentelemetry import propagate
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
from opentelemetry.trace import SpanKind
from tests.interop.harness import (
    AppPipeline,
    Recorder,
    fetch_trace,
    get_json,
    hex_span_id,
    hex_trace_id,
    llm_spans,
    raw_attributes,
)

from llmscope.testing import instrumented_with
from llmscope_collector.server import EmbeddedServer
from llmscope_sim import SimulatedProvider

OPENAI_MODEL = "gpt-4o-mini"
ANTHROPIC_MODEL = "claude-sonnet-4-6"
# Long enough for both simulated providers to cache it (OpenAI: a prefix of >= 8 tokens).
SYSTEM = "You are a careful assistant for a parcel company. Answer in one short sentence, politely."
QUESTION = "Where is my parcel?"

# Attribute names of captured content in every dialect (only to say what a package sent).
CONTENT_KEYS = (
    r"gen_ai\.(input|output)\.messages",
    r"gen_ai\.system_instructions",
    r"gen_ai\.(prompt|completion)\..*",
    r"llm\.(input|output)_messages\..*",
    r"(input|output)\.value",
)


@dataclasses.dataclass(frozen=True)
class Package:
    """One interop param: which distribution, which client, how to instrument it."""

    param: str
    distribution: str
    client: str  # "openai" | "anthropic"
    instrumentor: Callable[[], Any]
    dialect: str


@dataclasses.dataclass(frozen=True)
class Call:
    """One client call as the provider answered it (OTel semantics: input tokens include cache)."""

    label: str
    provider: str
    request_model: str
    response_model: str | None = None
    response_id: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read: int = 0
    cache_write: int = 0
    stream: bool = False
    error: bool = False
    output_text: str | None = None


@dataclasses.dataclass
class Bench:
    server: EmbeddedServer
    sim: SimulatedProvider
    app: AppPipeline
    package: Package
    recorder: Recorder

    @contextlib.contextmanager
    def instrumented(self, *, with_llmscope: bool = False) -> Iterator[None]:
        """The package (and optionally llmscope's SDK, wrapped around it) on the app's provider."""
        instrumentor = self.package.instrumentor()
        instrumentor.instrument(tracer_provider=self.app.provider)
        try:
            with instrumented_with(self.app.provider) if with_llmscope else contextlib.nullcontext():
                yield
        finally:
            instrumentor.uninstrument()


# ------------------------------------------------------------------------------------------ the calls


def openai_calls(bench: Bench) -> list[Call]:
    import openai

    client = openai.OpenAI(base_url=bench.sim.base_url + "/v1", api_key="k", max_retries=0)
    messages: Any = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]
    calls: list[Call] = []

    def record(label: str, usage: Any, model: str, response_id: str, text: str, stream: bool = False) -> None:
        details = getattr(usage, "prompt_tokens_details", None)
        calls.append(
            Call(
                label,
                "openai",
                OPENAI_MODEL,
                response_model=model,
                response_id=response_id,
                input_tokens=usage.prompt_tokens,
                output_tokens=usage.completion_tokens,
                cache_read=(details.cached_tokens or 0) if details else 0,
                stream=stream,
                output_text=text,
            )
        )

    first = client.chat.completions.create(model=OPENAI_MODEL, messages=messages)
    record("chat", first.usage, first.model, first.id, first.choices[0].message.content or "")
    second = client.chat.completions.create(model=OPENAI_MODEL, messages=messages, temperature=0.5)
    record("chat (cache read)", second.usage, second.model, second.id, second.choices[0].message.content or "")
    chunks = list(
        client.chat.completions.create(
            model=OPENAI_MODEL, messages=messages, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    record("chat stream", chunks[-1].usage, chunks[-1].model, chunks[-1].id, text, stream=True)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model=OPENAI_MODEL, messages=messages, extra_headers={"x-sim-error": "500"})
    calls.append(Call("chat error", "openai", OPENAI_MODEL, error=True))
    return calls


def _anthropic_call(label: str, message: Any, stream: bool = False, text: str | None = None) -> Call:
    usage = message.usage
    if text is None:
        text = "".join(block.text for block in message.content if block.type == "text")
    read = usage.cache_read_input_tokens or 0
    write = usage.cache_creation_input_tokens or 0
    return Call(
        label,
        "anthropic",
        ANTHROPIC_MODEL,
        response_model=message.model,
        response_id=message.id,
        input_tokens=usage.input_tokens + read + write,
        output_tokens=usage.output_tokens,
        cache_read=read,
        cache_write=write,
        stream=stream,
        output_text=text,
    )


def anthropic_calls(bench: Bench) -> list[Call]:
    import anthropic

    client = anthropic.Anthropic(base_url=bench.sim.base_url, api_key="k", max_retries=0)
    system: Any = [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}]
    messages: Any = [{"role": "user", "content": QUESTION}]
    args: dict[str, Any] = {"model": ANTHROPIC_MODEL, "max_tokens": 64, "messages": messages}
    calls = [
        _anthropic_call("messages (cache write)", client.messages.create(system=system, **args)),
        # No sampling parameter to vary it: anthropic 2.x's create() has no `temperature` any more.
        _anthropic_call("messages (cache read)", client.messages.create(system=system, **args)),
    ]
    with client.messages.stream(system=system, **args) as stream:
        for _ in stream.text_stream:
            pass
        calls.append(_anthropic_call("messages.stream helper", stream.get_final_message(), stream=True))
    # The raw event stream: the truth is assembled from message_start + the last message_delta.
    start: Any = None
    output_tokens = 0
    pieces: list[str] = []
    for event in client.messages.create(stream=True, **args):
        if event.type == "message_start":
            start = event.message
        elif event.type == "content_block_delta" and event.delta.type == "text_delta":
            pieces.append(event.delta.text)
        elif event.type == "message_delta":
            output_tokens = event.usage.output_tokens
    assert start is not None
    start.usage.output_tokens = output_tokens
    calls.append(_anthropic_call("create(stream=True)", start, stream=True, text="".join(pieces)))
    with pytest.raises(anthropic.InternalServerError):
        client.messages.create(extra_headers={"x-sim-error": "500"}, **args)
    calls.append(Call("messages error", "anthropic", ANTHROPIC_MODEL, error=True))
    return calls


def client_calls(bench: Bench) -> list[Call]:
    return openai_calls(bench) if bench.package.client == "openai" else anthropic_calls(bench)


# ------------------------------------------------------------------------------------------ assertions


def check_calls(bench: Bench) -> None:
    """Every call under one root span; each must come out as one LLM span with the provider's numbers."""
    rec = bench.recorder
    with bench.instrumented(), bench.app.tracer.start_as_current_span("interop-root") as root:
        calls = client_calls(bench)
    waterfall = fetch_trace(bench.server, hex_trace_id(root), bench.app)
    raw_spans = bench.app.raw()
    root_id = hex_span_id(root)
    spans = sorted(llm_spans(waterfall), key=lambda s: s["start_offset_ms"])
    rec.ok(
        "structure",
        len(spans) == len(calls),
        f"{len(calls)} calls gave {len(spans)} LLM spans: {[s['name'] for s in waterfall['spans']]}",
    )
    for span, call in zip(spans, calls, strict=False):
        _check_span(bench, waterfall["trace_id"], span, call, raw_spans[span["span_id"]])
        rec.ok("structure", span["parent_span_id"] == root_id, f"{call.label}: parent is not the app's span")
        rec.ok("structure", span["operation"] == "chat", f"{call.label}: operation {span['operation']!r}")
        rec.info[f"span name ({'stream' if call.stream else 'call'})"] = span["name"]
        rec.info["span kind"] = span["kind"]
    totals = waterfall["totals"]
    rec.ok("structure", totals["llm_calls"] == len(calls), f"totals.llm_calls {totals['llm_calls']} != {len(calls)}")
    shown_input = sum(s["input_tokens"] or 0 for s in spans)
    rec.ok("tokens", totals["input_tokens"] == shown_input, f"totals.input_tokens {totals['input_tokens']}")
    if "cost_usd" in totals and all("cost_usd" in s for s in spans):
        total = sum(s["cost_usd"] or 0 for s in spans)
        rec.ok(
            "cost", abs((totals["cost_usd"] or 0) - total) < 1e-9, f"totals.cost_usd {totals['cost_usd']} != {total}"
        )
    rec.verify()


def _check_span(bench: Bench, trace_id: str, span: dict[str, Any], call: Call, raw_span: Any) -> None:
    rec, label = bench.recorder, call.label
    raw = raw_attributes(raw_span)
    rec.value("provider", f"{label}: provider", span["provider"], call.provider, raw)
    rec.value("model", f"{label}: request model", span["request_model"], call.request_model, raw)
    if call.error:
        sent_error = raw_span.status.status_code.name == "ERROR"
        if sent_error:
            rec.ok("status", span["status_code"] == "ERROR", f"{label}: status {span['status_code']}")
        else:
            rec.upstream("status", f"{label}: package leaves the span status {raw_span.status.status_code.name}")
        rec.present(
            "status",
            f"{label}: error type",
            span["error_type"],
            raw,
            (r"error\.type", r"event:exception:exception\.type"),
        )
        return
    rec.ok("status", span["status_code"] != "ERROR", f"{label}: status ERROR on a successful call")
    rec.value("model", f"{label}: response model", span["response_model"], call.response_model, raw)
    rec.value("response id", f"{label}: response id", span["response_id"], call.response_id, raw)
    rec.value("finish reason", f"{label}: finish reasons", _first(span["finish_reasons"]), "stop", raw)
    feature = "tokens (stream)" if call.stream else "tokens"
    rec.value(feature, f"{label}: input tokens", span["input_tokens"], call.input_tokens, raw)
    rec.value(feature, f"{label}: output tokens", span["output_tokens"], call.output_tokens, raw)
    if call.cache_read:
        rec.value("cache tokens", f"{label}: cache read", span["cache_read_tokens"], call.cache_read, raw)
    if call.cache_write:
        rec.value("cache tokens", f"{label}: cache write", span["cache_write_tokens"], call.cache_write, raw)
    if call.stream:
        rec.value("stream", f"{label}: is_stream", span["is_stream"], True, raw)
        rec.present(
            "stream",
            f"{label}: time to first chunk",
            span["ttft_ms"],
            raw,
            (
                r"gen_ai\.response\.time_to_first_chunk",
                r"event:First Token Stream Event",
                r"event:(gen_ai|llm)\.content\.completion\.chunk",
            ),
        )
    if "cost_usd" in span:
        rec.ok("cost", (span["cost_usd"] or 0) > 0, f"{label}: cost_usd {span['cost_usd']!r}")
    else:
        rec.absent("cost", "the API has no cost column yet")
    _check_content(bench, trace_id, span, call, raw)


def _check_content(bench: Bench, trace_id: str, span: dict[str, Any], call: Call, raw: dict[str, Any]) -> None:
    """Captured prompts/completions come back as OTel messages: the question as a user text part, the
    answer as an assistant text part, whatever dialect the package sent them in."""
    rec = bench.recorder
    sent = sorted({re.sub(r"\.\d+\..*$", ".N.*", k) for k in raw if any(re.fullmatch(p, k) for p in CONTENT_KEYS)})
    if not sent:
        return rec.absent("content", "not sent with default settings")
    rec.info["content attributes"] = ", ".join(f"`{k}`" for k in sent)
    detail = get_json(f"{bench.server.api_url}/v1/spans/{trace_id}/{span['span_id']}")
    found = {"input": False, "output": False}
    for item in detail.get("content", []):
        for message in item["value"] if isinstance(item.get("value"), list) else [item.get("value")]:
            if not isinstance(message, dict):
                continue
            texts = " ".join(str(p.get("content", "")) for p in message.get("parts", []) if isinstance(p, dict))
            if message.get("role") == "user" and QUESTION in texts:
                found["input"] = True
            if message.get("role") == "assistant" and call.output_text and call.output_text in texts:
                found["output"] = True
    for side in ("input", "output"):
        keys = [k for k in sent if side in k or (side == "input" and "prompt" in k) or "completion" in k]
        if found[side]:
            rec.ok("content", True, "")
        elif keys:
            rec._add("content", "gap", f"{call.label}: {side} sent as {', '.join(keys)}, API has no {side} message")
        else:
            rec.absent("content", f"{call.label}: {side} not sent")


def _first(values: list[str] | None) -> str | None:
    return values[0] if values else None


# ------------------------------------------------------------------------------------------ mixed trace


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log on the test output."""


@contextlib.contextmanager
def wsgi_server(app: Callable[..., Any]) -> Iterator[str]:
    """A real stdlib WSGI server on 127.0.0.1:0 in a thread; yields its base URL."""
    server: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def http_get(pipeline: AppPipeline, url: str) -> tuple[int, Any]:
    """A caller's CLIENT span, with W3C traceparent injected as any instrumented HTTP client does."""
    with pipeline.tracer.start_as_current_span(f"GET {url.rsplit('/', 1)[-1]}", kind=SpanKind.CLIENT) as span:
        headers: dict[str, str] = {}
        propagate.inject(headers)
        request = urllib.request.Request(url, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return resp.status, span
        except urllib.error.HTTPError as exc:
            exc.close()
            return exc.code, span


def check_mixed_trace(bench: Bench, front: AppPipeline) -> None:
    """Frontend CLIENT span → WSGI SERVER span (another service, OTLP/HTTP) → llmscope's LLM span →
    the package's LLM span, all one trace; the call's tokens are counted once."""
    rec = bench.recorder
    result: dict[str, Call] = {}

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        calls = _one_call(bench)
        result["call"] = calls
        start_response("200 OK", [("content-type", "application/json")])
        return [json.dumps({"ok": True}).encode()]

    with (
        bench.instrumented(with_llmscope=True),
        wsgi_server(OpenTelemetryMiddleware(app, tracer_provider=bench.app.provider)) as base,
    ):
        status, client_span = http_get(front, f"{base}/ask")
    assert status == 200
    call = result["call"]
    waterfall = fetch_trace(bench.server, hex_trace_id(client_span), front, bench.app)
    by_id = {s["span_id"]: s for s in waterfall["spans"]}
    root = by_id[hex_span_id(client_span)]
    servers = [s for s in waterfall["spans"] if s["kind"] == "SERVER"]
    llm = llm_spans(waterfall)
    rec.ok("mixed trace", root["depth"] == 0 and root["service_name"] == "frontend", "frontend span is not the root")
    rec.ok("mixed trace", len(servers) == 1, f"{len(servers)} SERVER spans")
    server_span = servers[0] if servers else {}
    rec.ok("mixed trace", server_span.get("parent_span_id") == root["span_id"], "server span not under the client")
    rec.ok("mixed trace", server_span.get("service_name") == "llm-api", "server span service")
    outer = [s for s in llm if s["parent_span_id"] == server_span.get("span_id")]
    rec.ok("mixed trace", len(outer) == 1, f"LLM spans under the server span: {[s['name'] for s in outer]}")
    rec.ok("mixed trace", 1 <= len(llm) <= 2, f"{len(llm)} LLM spans for one call (llmscope's + the package's)")
    if len(llm) == 2 and outer:
        inner = next(s for s in llm if s is not outer[0])
        rec.ok("mixed trace", inner["parent_span_id"] == outer[0]["span_id"], "nested LLM span parent")
        rec.info["mixed: nesting"] = f"{outer[0]['name']} ⊃ {inner['name']}"
    totals = waterfall["totals"]
    rec.ok("mixed trace", totals["llm_calls"] == 1, f"totals.llm_calls {totals['llm_calls']} for one call")
    rec.ok(
        "mixed trace",
        (totals["input_tokens"], totals["output_tokens"]) == (call.input_tokens, call.output_tokens),
        f"totals tokens {totals['input_tokens']}/{totals['output_tokens']}, "
        f"call {call.input_tokens}/{call.output_tokens}",
    )
    if "cost_usd" in totals and outer:
        rec.ok("mixed trace", totals["cost_usd"] == outer[0].get("cost_usd"), f"totals.cost_usd {totals['cost_usd']}")
    rec.verify()


def _one_call(bench: Bench) -> Call:
    if bench.package.client == "openai":
        import openai

        client = openai.OpenAI(base_url=bench.sim.base_url + "/v1", api_key="k", max_retries=0)
        reply = client.chat.completions.create(model=OPENAI_MODEL, messages=[{"role": "user", "content": QUESTION}])
        assert reply.usage is not None
        return Call(
            "chat",
            "openai",
            OPENAI_MODEL,
            input_tokens=reply.usage.prompt_tokens,
            output_tokens=reply.usage.completion_tokens,
        )
    import anthropic

    aclient = anthropic.Anthropic(base_url=bench.sim.base_url, api_key="k", max_retries=0)
    message = aclient.messages.create(
        model=ANTHROPIC_MODEL, max_tokens=64, messages=[{"role": "user", "content": QUESTION}]
    )
    return _anthropic_call("messages", message)
