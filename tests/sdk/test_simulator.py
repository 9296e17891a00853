"""The simulated provider driven by the REAL anthropic and openai clients (sync and async), no mocks."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import signal
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from llmscope_sim import RecordedRequest, SimulatedProvider

MODEL_A = "claude-sim-1"
MODEL_O = "gpt-sim-1"
USER: Any = [{"role": "user", "content": "Tell me about observability for language model apps."}]
WEATHER_TOOL: Any = {
    "name": "get_weather",
    "description": "Weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "days": {"type": "integer"},
            "metric": {"type": "boolean"},
        },
        "required": ["city", "days"],
    },
}
OAI_TOOL: Any = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": WEATHER_TOOL["input_schema"]},
}
RESP_TOOL: Any = {"type": "function", "name": "get_weather", "parameters": WEATHER_TOOL["input_schema"]}


@pytest.fixture
def sim() -> Iterator[SimulatedProvider]:
    with SimulatedProvider(seed=0) as provider:
        yield provider


def ant(sim: SimulatedProvider, **kw: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=sim.base_url, api_key="test", **{"max_retries": 0, **kw})


def oai(sim: SimulatedProvider, **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=sim.base_url + "/v1", api_key="test", **{"max_retries": 0, **kw})


def text_of(message: anthropic.types.Message) -> str:
    block = message.content[0]
    assert block.type == "text"
    return block.text


def error_type(body: object) -> object:
    assert isinstance(body, dict)
    return body["error"]["type"]


def raw_post(sim: SimulatedProvider, path: str, data: bytes, headers: dict[str, str] | None = None) -> Any:
    req = urllib.request.Request(sim.base_url + path, data=data, method="POST", headers=headers or {})
    return urllib.request.urlopen(req, timeout=5)


# ------------------------------------------------------------------------------------ anthropic


def test_anthropic_create_sync(sim: SimulatedProvider) -> None:
    msg = ant(sim).messages.create(model=MODEL_A, max_tokens=200, messages=USER)
    assert re.fullmatch(r"msg_[0-9a-f]{24}", msg.id)
    assert msg.model == MODEL_A and msg.role == "assistant" and msg.stop_reason == "end_turn"
    text = text_of(msg)
    assert 8 <= len(text.split()) <= 40
    assert msg.usage.output_tokens == len(text.split())
    assert msg.usage.input_tokens == len(USER[0]["content"].split())
    assert msg.usage.cache_creation_input_tokens == 0 and msg.usage.cache_read_input_tokens == 0
    assert msg._request_id and msg._request_id.startswith("req_")
    [rec] = sim.requests
    assert isinstance(rec, RecordedRequest)
    assert (rec.method, rec.path, rec.body["model"]) == ("POST", "/v1/messages", MODEL_A)
    assert "anthropic-version" in rec.headers


def test_anthropic_create_async_and_max_tokens(sim: SimulatedProvider) -> None:
    async def run() -> anthropic.types.Message:
        async with anthropic.AsyncAnthropic(base_url=sim.base_url, api_key="t", max_retries=0) as client:
            return await client.messages.create(model=MODEL_A, max_tokens=3, messages=USER)

    msg = asyncio.run(run())
    assert msg.stop_reason == "max_tokens"
    assert msg.usage.output_tokens == 3 == len(text_of(msg).split())


def test_anthropic_stop_sequence(sim: SimulatedProvider) -> None:
    client = ant(sim)
    # Answers have >= 8 words, so a space always matches: only the first word survives.
    msg = client.messages.create(model=MODEL_A, max_tokens=200, messages=USER, stop_sequences=["zzz", " "])
    assert msg.stop_reason == "stop_sequence" and msg.stop_sequence == " "
    assert len(text_of(msg).split()) == 1 == msg.usage.output_tokens


def test_anthropic_raw_sse_wire_format(sim: SimulatedProvider) -> None:
    body = {"model": MODEL_A, "max_tokens": 50, "messages": USER, "stream": True}
    with raw_post(sim, "/v1/messages", json.dumps(body).encode(), {"content-type": "application/json"}) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        assert resp.headers["transfer-encoding"] == "chunked"
        raw = resp.read().decode()
    events = [block.split("\n")[0].removeprefix("event: ") for block in raw.strip().split("\n\n")]
    assert events[:3] == ["message_start", "content_block_start", "ping"]
    assert events[-4:] == ["content_block_delta", "content_block_stop", "message_delta", "message_stop"]


def test_anthropic_create_stream_events(sim: SimulatedProvider) -> None:
    client = ant(sim)
    plain = client.messages.create(model=MODEL_A, max_tokens=200, messages=USER)
    events: list[Any] = list(client.messages.create(model=MODEL_A, max_tokens=200, messages=USER, stream=True))
    types = [e.type for e in events]
    assert types[0] == "message_start" and types[-2:] == ["message_delta", "message_stop"]
    assert types[1] == "content_block_start" and types[-3] == "content_block_stop"
    assert events[0].message.usage.output_tokens == 1
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    assert text == text_of(plain)  # stream flag does not change the answer
    assert events[-2].usage.output_tokens == plain.usage.output_tokens


def test_anthropic_stream_helper_sync_and_async(sim: SimulatedProvider) -> None:
    with ant(sim).messages.stream(model=MODEL_A, max_tokens=200, messages=USER) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text_of(final) == text
    assert final.usage.output_tokens == len(text.split()) and final.stop_reason == "end_turn"
    assert final.usage.input_tokens == len(USER[0]["content"].split())

    async def run() -> tuple[str, anthropic.types.Message]:
        client = anthropic.AsyncAnthropic(base_url=sim.base_url, api_key="t", max_retries=0)
        async with client, client.messages.stream(model=MODEL_A, max_tokens=200, messages=USER) as s:
            chunks = [t async for t in s.text_stream]
            return "".join(chunks), await s.get_final_message()

    async_text, async_final = asyncio.run(run())
    assert async_text == text and async_final.id == final.id


def test_anthropic_tool_use_round_trip(sim: SimulatedProvider) -> None:
    client = ant(sim)
    first = client.messages.create(model=MODEL_A, max_tokens=300, messages=USER, tools=[WEATHER_TOOL])
    assert first.stop_reason == "tool_use"
    assert [b.type for b in first.content] == ["text", "tool_use"]
    call = first.content[1]
    assert call.type == "tool_use" and call.name == "get_weather" and call.id.startswith("toolu_")
    assert isinstance(call.input["city"], str) and isinstance(call.input["days"], int)
    assert call.input["metric"] is True

    with client.messages.stream(model=MODEL_A, max_tokens=300, messages=USER, tools=[WEATHER_TOOL]) as s:
        streamed = s.get_final_message()
    assert getattr(streamed.content[1], "input", None) == call.input  # input_json_delta reassembled

    history = [
        *USER,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "Sunny, 21C"}],
        },
    ]
    second = client.messages.create(model=MODEL_A, max_tokens=300, messages=history, tools=[WEATHER_TOOL])
    assert second.stop_reason == "end_turn" and [b.type for b in second.content] == ["text"]

    none = client.messages.create(
        model=MODEL_A, max_tokens=300, messages=USER, tools=[WEATHER_TOOL], tool_choice={"type": "none"}
    )
    assert none.stop_reason == "end_turn"


def test_anthropic_prompt_caching(sim: SimulatedProvider) -> None:
    client = ant(sim)
    system: Any = [
        {"type": "text", "text": "You are a careful assistant. " * 20, "cache_control": {"type": "ephemeral"}}
    ]
    kw: dict[str, Any] = {"model": MODEL_A, "max_tokens": 50, "system": system, "messages": USER}
    total = client.messages.count_tokens(model=MODEL_A, system=system, messages=USER).input_tokens
    first = client.messages.create(**kw).usage
    second = client.messages.create(**kw).usage
    user_tokens = len(USER[0]["content"].split())
    assert first.cache_creation_input_tokens == 100 and first.cache_read_input_tokens == 0
    assert second.cache_read_input_tokens == 100 and second.cache_creation_input_tokens == 0
    assert first.input_tokens == second.input_tokens == user_tokens  # excludes cached tokens
    assert total == user_tokens + 100
    other = client.messages.create(**{**kw, "model": "claude-other"}).usage  # caches are per model
    assert other.cache_creation_input_tokens == 100


def test_anthropic_error_injection(sim: SimulatedProvider) -> None:
    client = ant(sim)
    with pytest.raises(anthropic.InternalServerError) as err500:
        client.messages.create(model=MODEL_A, max_tokens=10, messages=USER, extra_headers={"x-sim-error": "500"})
    assert err500.value.status_code == 500
    assert error_type(err500.value.body) == "api_error"
    assert err500.value.response.headers["request-id"].startswith("req_")
    with pytest.raises(anthropic.RateLimitError) as err429:
        client.messages.create(model=MODEL_A, max_tokens=10, messages=USER, extra_headers={"x-sim-error": "429"})
    assert err429.value.response.headers["retry-after"] == "0"
    with pytest.raises(anthropic.APIStatusError) as err529:
        client.messages.create(model=MODEL_A, max_tokens=10, messages=USER, extra_headers={"x-sim-error": "529"})
    assert error_type(err529.value.body) == "overloaded_error"

    sim.fail_next(kind="disconnect")
    with pytest.raises(anthropic.APIConnectionError):
        client.messages.create(model=MODEL_A, max_tokens=10, messages=USER)
    sim.fail_next(kind="timeout", delay_s=10)
    with pytest.raises(anthropic.APITimeoutError):
        client.messages.create(model=MODEL_A, max_tokens=10, messages=USER, timeout=0.3)
    sim.fail_next(status=503, count=2)
    for _ in range(2):
        with pytest.raises(anthropic.APIStatusError, match="503"):
            client.messages.create(model=MODEL_A, max_tokens=10, messages=USER)
    assert client.messages.create(model=MODEL_A, max_tokens=10, messages=USER).type == "message"


def test_x_sim_error_fails_only_the_first_attempt(sim: SimulatedProvider) -> None:
    msg = ant(sim, max_retries=1).messages.create(
        model=MODEL_A, max_tokens=10, messages=USER, extra_headers={"x-sim-error": "429"}
    )
    assert msg.type == "message"
    assert [r.headers["x-stainless-retry-count"] for r in sim.requests] == ["0", "1"]


def test_mid_stream_disconnect(sim: SimulatedProvider) -> None:
    headers = {"x-sim-disconnect": "mid-stream"}
    seen: list[str] = []
    # anthropic 2.x does not wrap transport errors raised while iterating a stream.
    with pytest.raises(Exception, match="incomplete chunked read"):
        for event in ant(sim).messages.create(
            model=MODEL_A, max_tokens=50, messages=USER, stream=True, extra_headers=headers
        ):
            seen.append(event.type)
    assert seen == ["message_start", "content_block_start"]  # the ping is swallowed by the client
    with pytest.raises(openai.APIConnectionError):
        for _ in oai(sim).chat.completions.create(model=MODEL_O, messages=USER, stream=True, extra_headers=headers):
            pass


# --------------------------------------------------------------------------------------- openai


def test_openai_chat_sync_and_async(sim: SimulatedProvider) -> None:
    done = oai(sim).chat.completions.create(model=MODEL_O, messages=USER, n=2)
    assert done.id.startswith("chatcmpl-") and done.object == "chat.completion" and done.model == MODEL_O
    assert done.created == 1_700_000_000 and done.system_fingerprint
    assert [c.index for c in done.choices] == [0, 1] and done.choices[0].message.content
    assert done.choices[0].message.content != done.choices[1].message.content
    usage = done.usage
    assert usage is not None and usage.prompt_tokens == len(USER[0]["content"].split())
    words = sum(len((c.message.content or "").split()) for c in done.choices)
    assert usage.completion_tokens == words and usage.total_tokens == usage.prompt_tokens + words
    assert usage.completion_tokens_details and usage.completion_tokens_details.reasoning_tokens == 0

    async def run() -> openai.types.chat.ChatCompletion:
        async with openai.AsyncOpenAI(base_url=sim.base_url + "/v1", api_key="t", max_retries=0) as client:
            return await client.chat.completions.create(model=MODEL_O, messages=USER, max_tokens=2)

    cut = asyncio.run(run())
    assert cut.choices[0].finish_reason == "length" and cut.usage and cut.usage.completion_tokens == 2


def test_openai_chat_streaming_usage_chunk(sim: SimulatedProvider) -> None:
    client = oai(sim)
    plain = client.chat.completions.create(model=MODEL_O, messages=USER)
    chunks = list(client.chat.completions.create(model=MODEL_O, messages=USER, stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.usage is None for c in chunks) and chunks[-1].choices[0].finish_reason == "stop"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == plain.choices[0].message.content

    with_usage = list(
        client.chat.completions.create(
            model=MODEL_O, messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )
    assert with_usage[-1].choices == [] and with_usage[-1].usage == plain.usage
    assert all(c.usage is None for c in with_usage[:-1])

    async def run() -> list[str]:
        async with openai.AsyncOpenAI(base_url=sim.base_url + "/v1", api_key="t", max_retries=0) as aclient:
            stream = await aclient.chat.completions.create(model=MODEL_O, messages=USER, stream=True)
            return [c.choices[0].delta.content or "" async for c in stream]

    assert "".join(asyncio.run(run())) == plain.choices[0].message.content


def test_openai_tool_calls_streaming_reassembled(sim: SimulatedProvider) -> None:
    client = oai(sim)
    plain = client.chat.completions.create(model=MODEL_O, messages=USER, tools=[OAI_TOOL])
    assert plain.choices[0].finish_reason == "tool_calls"
    [call] = plain.choices[0].message.tool_calls or []
    assert call.type == "function"
    assert call.id.startswith("call_") and call.function.name == "get_weather"
    args = json.loads(call.function.arguments)
    assert set(args) == {"city", "days", "metric"}

    pieces: dict[int, dict[str, str]] = {}
    for chunk in client.chat.completions.create(model=MODEL_O, messages=USER, tools=[OAI_TOOL], stream=True):
        for tc in chunk.choices[0].delta.tool_calls or []:
            slot = pieces.setdefault(tc.index, {"id": "", "name": "", "args": ""})
            slot["id"] += tc.id or ""
            slot["name"] += (tc.function and tc.function.name) or ""
            slot["args"] += (tc.function and tc.function.arguments) or ""
    assert pieces == {0: {"id": call.id, "name": "get_weather", "args": call.function.arguments}}

    with client.chat.completions.stream(model=MODEL_O, messages=USER, tools=[OAI_TOOL]) as s:
        final = s.get_final_completion()
    [final_call] = final.choices[0].message.tool_calls or []
    assert final_call.function.arguments == call.function.arguments

    answered = [
        *USER,
        {"role": "assistant", "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny"},
    ]
    after = client.chat.completions.create(model=MODEL_O, messages=answered, tools=[OAI_TOOL])
    assert after.choices[0].finish_reason == "stop" and after.choices[0].message.content


def test_openai_prefix_cache(sim: SimulatedProvider) -> None:
    client = oai(sim)
    messages = [{"role": "system", "content": "You are a careful assistant. " * 4}, *USER]
    first = client.chat.completions.create(model=MODEL_O, messages=messages)
    second = client.chat.completions.create(model=MODEL_O, messages=messages)
    assert first.usage and second.usage
    assert first.usage.prompt_tokens_details and first.usage.prompt_tokens_details.cached_tokens == 0
    assert second.usage.prompt_tokens_details and second.usage.prompt_tokens_details.cached_tokens == 20
    assert second.usage.prompt_tokens == first.usage.prompt_tokens == 20 + len(USER[0]["content"].split())


def test_openai_responses_create_and_stream(sim: SimulatedProvider) -> None:
    client = oai(sim)
    resp = client.responses.create(model=MODEL_O, input="Summarize the trace.", instructions="Be brief.")
    assert resp.id.startswith("resp_") and resp.status == "completed" and resp.model == MODEL_O
    assert resp.output_text and resp.usage and resp.usage.output_tokens == len(resp.output_text.split())
    assert resp.usage.input_tokens == 5 and resp.usage.output_tokens_details.reasoning_tokens == 0

    events: list[Any] = list(
        client.responses.create(model=MODEL_O, input="Summarize the trace.", instructions="Be brief.", stream=True)
    )
    types = [e.type for e in events]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert types.count("response.output_text.delta") >= 4
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].response.usage == resp.usage

    with client.responses.stream(model=MODEL_O, input="Summarize the trace.", instructions="Be brief.") as s:
        deltas = [e.delta for e in s if e.type == "response.output_text.delta"]
        final = s.get_final_response()
    assert "".join(deltas) == final.output_text == resp.output_text

    called = client.responses.create(model=MODEL_O, input="Weather?", tools=[RESP_TOOL])
    [item] = called.output
    assert item.type == "function_call" and item.name == "get_weather"
    with client.responses.stream(model=MODEL_O, input="Weather?", tools=[RESP_TOOL]) as s:
        streamed = s.get_final_response().output[0]
    assert streamed.type == "function_call" and streamed.arguments == item.arguments
    follow: Any = [
        {"role": "user", "content": "Weather?"},
        {"type": "function_call", "call_id": item.call_id, "name": item.name, "arguments": item.arguments},
        {"type": "function_call_output", "call_id": item.call_id, "output": "Sunny"},
    ]
    assert client.responses.create(model=MODEL_O, input=follow, tools=[RESP_TOOL]).output_text

    async def run() -> str:
        aclient = openai.AsyncOpenAI(base_url=sim.base_url + "/v1", api_key="t", max_retries=0)
        kw: dict[str, Any] = {"model": MODEL_O, "input": "Summarize the trace.", "instructions": "Be brief."}
        async with aclient, aclient.responses.stream(**kw) as st:
            return (await st.get_final_response()).output_text

    assert asyncio.run(run()) == resp.output_text


def test_openai_embeddings_float_and_base64(sim: SimulatedProvider) -> None:
    client = oai(sim)
    floats = client.embeddings.create(model="emb-sim", input=["alpha beta", "gamma"], encoding_format="float")
    assert [d.index for d in floats.data] == [0, 1] and len(floats.data[0].embedding) == 8
    assert floats.usage.prompt_tokens == floats.usage.total_tokens == 3
    assert abs(sum(x * x for x in floats.data[0].embedding) - 1.0) < 1e-5
    # Without encoding_format the client itself asks for base64 and decodes it.
    default = client.embeddings.create(model="emb-sim", input=["alpha beta", "gamma"])
    assert [d.embedding for d in default.data] == [d.embedding for d in floats.data]
    b64 = client.embeddings.create(model="emb-sim", input="alpha beta", encoding_format="base64")
    encoded = b64.data[0].embedding
    assert isinstance(encoded, str)
    assert list(struct.unpack("<8f", base64.b64decode(encoded))) == floats.data[0].embedding
    small = client.embeddings.create(model="emb-sim", input="x", dimensions=3, encoding_format="float")
    assert len(small.data[0].embedding) == 3
    assert sim.requests[1].body["encoding_format"] == "base64"


# -------------------------------------------------------------------------------- server basics


def test_determinism_across_servers_and_seeds(sim: SimulatedProvider) -> None:
    def ask(provider: SimulatedProvider) -> tuple[str, str, str]:
        a = ant(provider).messages.create(model=MODEL_A, max_tokens=100, messages=USER)
        o = oai(provider).chat.completions.create(model=MODEL_O, messages=USER)
        return a.id, text_of(a), o.choices[0].message.content or ""

    first = ask(sim)
    assert ask(sim) == first
    with SimulatedProvider(seed=0) as same:
        assert ask(same) == first
    with SimulatedProvider(seed=1) as other:
        changed = ask(other)
    assert all(x != y for x, y in zip(changed, first, strict=True))


def test_errors_not_found_malformed_and_recording(sim: SimulatedProvider) -> None:
    with pytest.raises(openai.NotFoundError):
        oai(sim).models.list()
    with pytest.raises(urllib.error.HTTPError) as bad:
        raw_post(sim, "/v1/messages", b"{not json", {"anthropic-version": "2023-06-01"})
    assert bad.value.code == 400 and json.load(bad.value)["error"]["type"] == "invalid_request_error"
    with pytest.raises(anthropic.BadRequestError):
        ant(sim).messages.create(model=MODEL_A, max_tokens=10, messages=[])
    assert [r.path for r in sim.requests] == ["/v1/models", "/v1/messages", "/v1/messages"]
    sim.clear()
    assert sim.requests == []


def test_delays(sim: SimulatedProvider) -> None:
    client = ant(sim)
    start = time.perf_counter()
    client.messages.create(model=MODEL_A, max_tokens=10, messages=USER, extra_headers={"x-sim-delay-ms": "150"})
    assert time.perf_counter() - start >= 0.15
    stamps: list[float] = []
    start = time.perf_counter()
    for _ in client.messages.create(
        model=MODEL_A, max_tokens=3, messages=USER, stream=True, extra_headers={"x-sim-chunk-delay-ms": "20"}
    ):
        stamps.append(time.perf_counter() - start)
    assert stamps[-1] - stamps[0] >= 0.1  # ~8 events after the first, 20 ms apart


def test_stop_is_idempotent_and_prompt_with_open_connections() -> None:
    sim = SimulatedProvider(seed=3).start()
    client = ant(sim)
    client.messages.create(model=MODEL_A, max_tokens=5, messages=USER)  # leaves a pooled keep-alive socket
    sim.fail_next(kind="timeout", delay_s=30)
    start = time.perf_counter()
    sim.stop()
    sim.stop()
    assert time.perf_counter() - start < 2
    with pytest.raises(RuntimeError):
        _ = sim.base_url


def test_module_entry_point() -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmscope_sim", "--port", "0", "--seed", "7"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        match = re.fullmatch(r"listening on (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        client = anthropic.Anthropic(base_url=match.group(1), api_key="t", max_retries=0)
        assert client.messages.create(model=MODEL_A, max_tokens=5, messages=USER).type == "message"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
