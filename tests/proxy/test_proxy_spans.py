"""The capture proxy with its spans captured in memory: the real clients through it, against the
simulated provider. A call through the proxy must give the span the SDK gives for the same call,
pass bytes, headers and errors through unchanged, and stream without buffering."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from llmscope.testing import capture_spans
from llmscope_proxy import ProxyConfig, ProxyServer
from llmscope_sim import SimulatedProvider
from tests.proxy.conftest import CapturedSpans

CHAT_MODEL = "gpt-4o-mini"
CLAUDE = "claude-sonnet-4-6"
USER = [{"role": "user", "content": "What is the capital of France?"}]

Call = Callable[[openai.OpenAI, anthropic.Anthropic], Any]


def _chat(o: openai.OpenAI, _a: anthropic.Anthropic) -> Any:
    return o.chat.completions.create(model=CHAT_MODEL, messages=USER, temperature=0.2, max_tokens=50, seed=3)


def _chat_stream(o: openai.OpenAI, _a: anthropic.Anthropic) -> Any:
    stream = o.chat.completions.create(
        model=CHAT_MODEL, messages=USER, stream=True, stream_options={"include_usage": True}
    )
    return list(stream)


def _chat_tools(o: openai.OpenAI, _a: anthropic.Anthropic) -> Any:
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    return o.chat.completions.create(model=CHAT_MODEL, messages=USER, tools=[tool], tool_choice="required")


def _responses(o: openai.OpenAI, _a: anthropic.Anthropic) -> Any:
    return o.responses.create(model=CHAT_MODEL, input="Say hi", instructions="Be brief", max_output_tokens=40)


def _responses_stream(o: openai.OpenAI, _a: anthropic.Anthropic) -> Any:
    return list(o.responses.create(model=CHAT_MODEL, input="Say hi", stream=True))


def _embeddings(o: openai.OpenAI, _a: anthropic.Anthropic) -> Any:
    return o.embeddings.create(model="text-embedding-3-small", input=["one", "two"])


def _messages(_o: openai.OpenAI, a: anthropic.Anthropic) -> Any:
    return a.messages.create(model=CLAUDE, max_tokens=64, system="Be brief", messages=USER)


def _messages_stream(_o: openai.OpenAI, a: anthropic.Anthropic) -> Any:
    with a.messages.stream(model=CLAUDE, max_tokens=64, messages=USER) as stream:
        return stream.get_final_message()


CALLS: dict[str, Call] = {
    "chat": _chat,
    "chat-stream": _chat_stream,
    "chat-tools": _chat_tools,
    "responses": _responses,
    "responses-stream": _responses_stream,
    "embeddings": _embeddings,
    "messages": _messages,
    "messages-stream": _messages_stream,
}

# Differ between any two calls whatever makes them: timing, and where the client connected.
_VOLATILE = {"gen_ai.response.time_to_first_chunk"}


def _clients(base: str, **headers: str) -> tuple[openai.OpenAI, anthropic.Anthropic]:
    o = openai.OpenAI(base_url=base + "/v1", api_key="sk-test-openai", max_retries=0, default_headers=headers)
    a = anthropic.Anthropic(base_url=base, api_key="sk-ant-test", max_retries=0, default_headers=headers)
    return o, a


@pytest.mark.parametrize("name", list(CALLS))
def test_a_call_through_the_proxy_gives_the_sdks_span(
    name: str, sim: SimulatedProvider, proxy: ProxyServer, captured: CapturedSpans
) -> None:
    with capture_spans(capture_content=True) as sdk:  # instrumented, straight to the provider
        direct = CALLS[name](*_clients(sim.base_url))
    sim.clear(cache=True)  # the second call must not hit the provider's prompt cache
    proxied = CALLS[name](*_clients(proxy.url))  # not instrumented: only the proxy sees it
    assert proxy.recorder.flush(10)

    assert len(sdk.llm_spans) == 1 and len(captured.items) == 1
    sdk_span, (proxy_span, proxy_attrs, _) = sdk.llm_spans[0], captured.items[0]
    sdk_attrs = {k: list(v) if isinstance(v, tuple) else v for k, v in dict(sdk_span.attributes or {}).items()}
    if name == "embeddings":  # the client asks for base64 on the wire when the app did not say: the
        assert proxy_attrs.pop("gen_ai.request.encoding_formats") == ["base64"]  # proxy sees the wire
    assert {k: v for k, v in proxy_attrs.items() if k not in _VOLATILE} == {
        k: v for k, v in sdk_attrs.items() if k not in _VOLATILE
    }
    assert proxy_span.name == sdk_span.name
    assert proxy_span.kind == 3  # CLIENT
    assert ("gen_ai.response.time_to_first_chunk" in proxy_attrs) == name.endswith("-stream")
    assert type(proxied) is type(direct)


def test_headers_pass_through_and_llmscope_headers_stay_behind(
    sim: SimulatedProvider, proxy: ProxyServer, captured: CapturedSpans
) -> None:
    o, _ = _clients(
        proxy.url,
        **{
            "x-llmscope-api-key": "lsk-not-for-the-provider",
            "x-llmscope-session-id": "chat-42",
            "x-llmscope-user-id": "u-9",
            "x-llmscope-tags": "beta, checkout",
            "x-llmscope-prompt-name": "support",
            "x-llmscope-prompt-version": "3",
            "x-llmscope-metadata-tenant": "acme",
            "x-custom-app-header": "kept",
        },
    )
    _chat(o, None)  # type: ignore[arg-type]
    assert proxy.recorder.flush(10)
    seen = sim.requests[-1].headers
    assert seen["authorization"] == "Bearer sk-test-openai"
    assert seen["x-custom-app-header"] == "kept"
    assert not [k for k in seen if k.lower().startswith("x-llmscope-")]
    ((_, attrs, credentials),) = captured.items
    assert credentials == {"x-llmscope-api-key": "lsk-not-for-the-provider"}
    assert attrs["session.id"] == attrs["gen_ai.conversation.id"] == "chat-42"
    assert attrs["user.id"] == "u-9"
    assert attrs["llmscope.tags"] == ["beta", "checkout"]
    assert attrs["gen_ai.prompt.name"] == "support" and attrs["gen_ai.prompt.version"] == "3"
    assert attrs["llmscope.metadata.tenant"] == "acme"
    assert not [v for v in attrs.values() if isinstance(v, str) and "sk-test-openai" in v]


def test_traceparent_makes_the_proxy_span_a_child(proxy: ProxyServer, captured: CapturedSpans) -> None:
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    o, _ = _clients(proxy.url, traceparent=f"00-{trace_id}-{parent_id}-01")
    _chat(o, None)  # type: ignore[arg-type]
    assert proxy.recorder.flush(10)
    ((span, _, _),) = captured.items
    assert span.trace_id.hex() == trace_id
    assert span.parent_span_id.hex() == parent_id


def test_upstream_errors_pass_through_unchanged_and_are_recorded(
    sim: SimulatedProvider, proxy: ProxyServer, captured: CapturedSpans
) -> None:
    body = {"model": CHAT_MODEL, "messages": USER}
    sim.fail_next(429)
    direct = httpx.post(f"{sim.base_url}/v1/chat/completions", json=body, headers={"authorization": "Bearer k"})
    sim.fail_next(429)
    through = httpx.post(f"{proxy.url}/v1/chat/completions", json=body, headers={"authorization": "Bearer k"})
    assert through.status_code == direct.status_code == 429
    assert through.content == direct.content
    assert through.headers.get("retry-after") == direct.headers.get("retry-after") is not None
    assert proxy.recorder.flush(10)
    ((span, attrs, _),) = captured.items
    assert attrs["error.type"] == "openai.RateLimitError"
    assert attrs["http.response.status_code"] == 429
    assert span.status.code == 2  # ERROR


def test_the_sdk_and_the_proxy_name_an_upstream_error_alike(
    sim: SimulatedProvider, proxy: ProxyServer, captured: CapturedSpans
) -> None:
    sdk_types: list[object] = []
    for status in (400, 401, 404, 500):
        with capture_spans() as sdk:
            sim.fail_next(status)
            with pytest.raises(anthropic.APIStatusError):
                _messages(*_clients(sim.base_url))
        sdk_types += [a["error.type"] for a in sdk.attributes()]
        sim.fail_next(status)
        with pytest.raises(anthropic.APIStatusError):
            _messages(*_clients(proxy.url))
    assert proxy.recorder.flush(10)
    assert [a["error.type"] for a in captured.attributes()] == sdk_types
    assert sdk_types[0] == "anthropic.BadRequestError" and len(sdk_types) == 4


def test_unreachable_upstream_is_a_502_in_the_providers_shape(captured: CapturedSpans) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    config = ProxyConfig(openai_base_url=dead + "/v1", anthropic_base_url=dead, connect_timeout_s=2)
    with ProxyServer(config, captured, lambda _c: None, host="127.0.0.1", port=0) as proxy:
        o, a = _clients(proxy.url)
        with pytest.raises(openai.APIStatusError) as oerr:
            _chat(o, a)
        with pytest.raises(anthropic.APIStatusError) as aerr:
            _messages(o, a)
        assert proxy.recorder.flush(10)
    assert oerr.value.status_code == 502 and "unreachable" in oerr.value.message
    assert aerr.value.status_code == 502 and aerr.value.body["error"]["type"] == "api_error"  # type: ignore[index]
    assert [a["error.type"] for a in captured.attributes()] == [
        "openai.APIConnectionError",
        "anthropic.APIConnectionError",
    ]


def test_unknown_routes_and_non_json_bodies(
    sim: SimulatedProvider, proxy: ProxyServer, captured: CapturedSpans
) -> None:
    missing = httpx.get(f"{proxy.url}/v2/whatever")
    assert missing.status_code == 404 and "no route" in missing.json()["error"]["message"]
    garbage = httpx.post(
        f"{proxy.url}/v1/chat/completions", content=b"not json", headers={"content-type": "text/plain"}
    )
    direct = httpx.post(
        f"{sim.base_url}/v1/chat/completions", content=b"not json", headers={"content-type": "text/plain"}
    )
    assert (garbage.status_code, garbage.content) == (direct.status_code, direct.content)
    tokens = httpx.post(
        f"{proxy.url}/v1/messages/count_tokens", json={"model": CLAUDE, "messages": USER}, headers={"x-api-key": "k"}
    )
    assert tokens.status_code == 200 and tokens.json()["input_tokens"] > 0
    assert proxy.recorder.flush(10)
    assert captured.items == []  # neither a broken request nor count_tokens is a model call


class _GatedUpstream:
    """An SSE upstream that sends one event, then waits for the test before sending the rest."""

    def __init__(self) -> None:
        self.release = threading.Event()
        gate = self.release

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("connection", "close")
                self.end_headers()
                chunk = {"id": "c1", "model": CHAT_MODEL, "choices": [{"index": 0, "delta": {"content": "Hel"}}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
                gate.wait(20)
                done = {
                    "id": "c1",
                    "model": CHAT_MODEL,
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                }
                try:
                    self.wfile.write(f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the proxy closed this call because its client went away (the disconnect test)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def gated() -> Iterator[_GatedUpstream]:
    yield _GatedUpstream()


def test_a_stream_is_relayed_chunk_by_chunk(gated: _GatedUpstream, captured: CapturedSpans) -> None:
    """The first event reaches the client while the upstream still holds the rest back."""
    with gated as base:
        config = ProxyConfig(openai_base_url=base + "/v1", anthropic_base_url=base)
        with ProxyServer(config, captured, lambda _c: None, host="127.0.0.1", port=0) as proxy:
            body = {"model": CHAT_MODEL, "messages": USER, "stream": True}
            with httpx.stream("POST", f"{proxy.url}/v1/chat/completions", json=body, timeout=30) as response:
                lines = response.iter_lines()
                first = next(line for line in lines if line)
                assert not gated.release.is_set()  # the upstream has not sent the rest yet
                assert json.loads(first.removeprefix("data: "))["choices"][0]["delta"]["content"] == "Hel"
                gated.release.set()
                rest = [line for line in lines if line]
            assert rest[-1] == "data: [DONE]"
            assert proxy.recorder.flush(10)
    ((_, attrs, _),) = captured.items
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert attrs["llmscope.stream.ended_by"] == "exhausted"


def test_a_client_that_disconnects_mid_stream_ends_the_span_cancelled(
    gated: _GatedUpstream, captured: CapturedSpans
) -> None:
    with gated as base:
        config = ProxyConfig(openai_base_url=base + "/v1", anthropic_base_url=base)
        with ProxyServer(config, captured, lambda _c: None, host="127.0.0.1", port=0) as proxy:
            body = {"model": CHAT_MODEL, "messages": USER, "stream": True}
            with httpx.stream("POST", f"{proxy.url}/v1/chat/completions", json=body, timeout=30) as response:
                next(line for line in response.iter_lines() if line)
            # the client is gone; the upstream is still holding its stream open
            for _ in range(200):
                if proxy.recorder.flush(1) and captured.items:
                    break
                threading.Event().wait(0.05)
            gated.release.set()
    ((span, attrs, _),) = captured.items
    assert attrs["llmscope.stream.ended_by"] == "cancelled"
    assert attrs["error.type"] == "cancelled"
    assert span.status.code == 2
