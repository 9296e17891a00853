"""`llmscope serve --proxy-port`: calls through the proxy land in the collector in process and read
back over the API with model, tokens, cost and conversation; llmscope's auth rules apply; the
provider's key is never stored or logged."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from llmscope_collector.server import EmbeddedServer
from llmscope_collector.settings import Settings
from llmscope_sim import SimulatedProvider
from tests.proxy.conftest import stored_trace

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
PROVIDER_KEY = "sk-provider-secret-4c1d9e"


def _span_detail(server: EmbeddedServer, trace_id: str, span_id: str, headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(f"{server.api_url}/v1/spans/{trace_id}/{span_id}", headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _llm_spans(trace: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in trace["spans"] if s["operation"] == "chat"]


def test_calls_through_the_proxy_show_in_the_waterfall(
    proxied: EmbeddedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert proxied.proxy is not None
    headers = {"traceparent": TRACEPARENT, "x-llmscope-session-id": "chat-7"}
    o = openai.OpenAI(base_url=proxied.proxy.url + "/v1", api_key=PROVIDER_KEY, default_headers=headers)
    a = anthropic.Anthropic(base_url=proxied.proxy.url, api_key=PROVIDER_KEY, default_headers=headers)
    first = o.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Capital of Peru?"}])
    second = a.messages.create(
        model="claude-sonnet-4-6", max_tokens=64, messages=[{"role": "user", "content": "Thanks"}]
    )

    trace = stored_trace(proxied, TRACE_ID)
    chat, message = _llm_spans(trace)
    assert chat["parent_span_id"] == message["parent_span_id"] == PARENT_ID
    assert (chat["provider"], chat["request_model"]) == ("openai", "gpt-4o-mini")
    assert (message["provider"], message["request_model"]) == ("anthropic", "claude-sonnet-4-6")
    assert first.usage is not None
    assert chat["input_tokens"] == first.usage.prompt_tokens and chat["output_tokens"] == first.usage.completion_tokens
    assert message["output_tokens"] == second.usage.output_tokens
    assert chat["cost_known"] and chat["cost_usd"] > 0 and message["cost_known"] and message["cost_usd"] > 0
    assert trace["totals"]["llm_calls"] == 2 and trace["session_id"] == "chat-7"

    detail = _span_detail(proxied, TRACE_ID, chat["span_id"])
    text = json.dumps(detail)
    assert "Capital of Peru?" in text and first.choices[0].message.content in text  # the conversation

    # The provider's key went upstream, and nowhere else: not on disk (WAL included), not in a log.
    for path in Path(proxied.settings.data_dir).rglob("*"):
        if path.is_file():
            assert PROVIDER_KEY.encode() not in path.read_bytes(), path
    assert PROVIDER_KEY not in caplog.text


def test_a_stream_through_the_proxy_has_its_time_to_first_token(proxied: EmbeddedServer) -> None:
    assert proxied.proxy is not None
    o = openai.OpenAI(base_url=proxied.proxy.url + "/v1", api_key="k", default_headers={"traceparent": TRACEPARENT})
    chunks = list(
        o.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Stream please"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    (span,) = _llm_spans(stored_trace(proxied, TRACE_ID))
    usage = chunks[-1].usage
    assert usage is not None and span["output_tokens"] == usage.completion_tokens
    assert span["ttft_ms"] is not None and 0 <= span["ttft_ms"] <= span["duration_ms"]


@pytest.fixture
def keyed(settings: Settings, sim: SimulatedProvider) -> Any:
    config = dataclasses.replace(
        settings,
        auth="required",
        proxy_port=0,
        proxy_openai_base_url=sim.base_url + "/v1",
        proxy_anthropic_base_url=sim.base_url,
    )
    server = EmbeddedServer(config)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_with_keys_required_the_proxy_forwards_nothing_without_one(
    keyed: EmbeddedServer, sim: SimulatedProvider
) -> None:
    assert keyed.proxy is not None
    store = keyed.collector.receivers.auth_store
    store.create_project("shop")
    _, key = store.create_key("shop")
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    refused = httpx.post(f"{keyed.proxy.url}/v1/chat/completions", json=body, headers={"authorization": "Bearer sk"})
    wrong = httpx.post(f"{keyed.proxy.url}/v1/chat/completions", json=body, headers={"x-llmscope-api-key": "lsk_wrong"})
    assert refused.status_code == wrong.status_code == 401
    assert refused.json()["error"]["type"] == "invalid_api_key"
    assert sim.requests == []  # nothing reached the provider

    ok = httpx.post(
        f"{keyed.proxy.url}/v1/chat/completions",
        json=body,
        headers={"authorization": "Bearer sk", "x-llmscope-api-key": key, "traceparent": TRACEPARENT},
    )
    assert ok.status_code == 200
    trace = stored_trace(keyed, TRACE_ID, headers={"x-llmscope-api-key": key})
    assert trace["project"] == "shop" and trace["totals"]["llm_calls"] == 1


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_with_only_its_base_url_changed(proxied: EmbeddedServer) -> None:
    assert proxied.proxy is not None
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "From a shell script"}]})
    out = subprocess.run(
        [
            "curl", "-sS", "--fail-with-body", f"{proxied.proxy.url}/v1/chat/completions",
            "-H", "content-type: application/json", "-H", f"authorization: Bearer {PROVIDER_KEY}",
            "-H", f"traceparent: {TRACEPARENT}", "-d", body,
        ],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    answer = json.loads(out.stdout)
    (span,) = _llm_spans(stored_trace(proxied, TRACE_ID))
    assert span["response_id"] == answer["id"]
    assert span["input_tokens"] == answer["usage"]["prompt_tokens"]
    assert span["cost_known"] and span["cost_usd"] > 0
    assert "From a shell script" in json.dumps(_span_detail(proxied, TRACE_ID, span["span_id"]))
