"""OpenAI streams through the real client: the span covers the whole stream and ends exactly once on
every exit path, usage is read from the stream when the API sends it (and left unset when it does
not), and the caller sees exactly the chunks it would see uninstrumented."""

from __future__ import annotations

import asyncio
import gc
import json
from typing import Any

import openai
import pytest
from opentelemetry.trace import StatusCode

import llmscope_sdk
from llmscope.testing import CapturedSpans
from llmscope_sim import SimulatedProvider
from tests.sdk.test_openai import cached_tokens, chat_helpers, needs_responses

MODEL = "gpt-4o"
MESSAGES: Any = [{"role": "user", "content": "tell me a story about streams"}]
TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}},
        },
    }
]
USAGE = {"include_usage": True}
BROKEN = {"x-sim-disconnect": "mid-stream"}


def _ours(exporter: CapturedSpans) -> list[Any]:
    return [s for s in exporter.spans if s.instrumentation_scope.name == "llmscope"]


def _attrs(span: Any) -> dict[str, Any]:
    return dict(span.attributes or {})


def _client(sim: SimulatedProvider) -> openai.OpenAI:
    return openai.OpenAI(base_url=sim.base_url + "/v1", api_key="k", max_retries=0)


def _async_client(sim: SimulatedProvider) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=sim.base_url + "/v1", api_key="k", max_retries=0)


def _dump(chunks: list[Any]) -> list[dict[str, Any]]:
    return [c.model_dump() for c in chunks]


# ----------------------------------------------------------------------- chat: create(stream=True)


def test_exhausted_stream_with_usage_same_chunks(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    client = _client(sim)
    kwargs: dict[str, Any] = {"model": MODEL, "messages": MESSAGES, "stream": True, "stream_options": USAGE}
    instrumented = list(client.chat.completions.create(**kwargs))
    llmscope_sdk.uninstrument()
    plain = list(client.chat.completions.create(**kwargs))
    assert _dump(instrumented) == _dump(plain)

    (span,) = _ours(spans)
    attrs = _attrs(span)
    usage = plain[-1].usage
    assert usage is not None
    assert attrs["gen_ai.request.stream"] is True and attrs["openai.api.type"] == "chat_completions"
    assert attrs["gen_ai.response.id"] == plain[0].id and attrs["gen_ai.response.model"] == plain[0].model
    assert attrs["openai.response.system_fingerprint"] == plain[0].system_fingerprint
    assert attrs["gen_ai.usage.input_tokens"] == usage.prompt_tokens
    assert attrs["gen_ai.usage.output_tokens"] == usage.completion_tokens
    assert list(attrs["gen_ai.response.finish_reasons"]) == ["stop"]
    assert attrs["gen_ai.response.time_to_first_chunk"] > 0
    assert attrs["llmscope.stream.ended_by"] == "exhausted"


def test_without_include_usage_token_counts_stay_unset(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    chunks = list(_client(sim).chat.completions.create(model=MODEL, messages=MESSAGES, stream=True))
    assert all(c.usage is None for c in chunks)
    attrs = _attrs(_ours(spans)[0])
    assert not any(k.startswith("gen_ai.usage.") for k in attrs)  # unknown, not 0
    assert list(attrs["gen_ai.response.finish_reasons"]) == ["stop"]


def test_streamed_cached_tokens_counted_once(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    client = _client(sim)
    system = {"role": "system", "content": "A long shared prefix for the prompt cache. " * 20}
    last = []
    for question in ("first", "second"):
        messages = [system, {"role": "user", "content": question}]
        last.append(
            list(client.chat.completions.create(model=MODEL, messages=messages, stream=True, stream_options=USAGE))[-1]
        )  # type: ignore[arg-type]
    for span, chunk in zip(_ours(spans), last, strict=True):
        usage = chunk.usage
        assert usage is not None
        assert _attrs(span)["gen_ai.usage.input_tokens"] == usage.prompt_tokens
        assert _attrs(span)["gen_ai.usage.cache_read.input_tokens"] == cached_tokens(usage)
    assert cached_tokens(last[1].usage) > 0


def test_streamed_tool_calls_reassembled_by_index(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    llmscope_sdk.instrument(capture_content=True)
    client = _client(sim)
    kwargs: dict[str, Any] = {"model": MODEL, "messages": MESSAGES, "tools": TOOLS, "n": 2}
    chunks = list(client.chat.completions.create(**kwargs, stream=True, stream_options=USAGE))
    final = client.chat.completions.create(**kwargs)  # the simulator streams exactly this completion
    assert sum(1 for c in chunks for choice in c.choices if choice.delta.tool_calls) > 2  # really in pieces

    attrs = _attrs(_ours(spans)[0])
    assert list(attrs["gen_ai.response.finish_reasons"]) == ["tool_call", "tool_call"]
    expected = [
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "id": call.id,
                    "name": call.function.name,
                    "arguments": json.loads(call.function.arguments),
                }  # type: ignore[union-attr]
                for call in choice.message.tool_calls or []
            ],
            "finish_reason": "tool_call",
        }
        for choice in final.choices
    ]
    assert json.loads(attrs["gen_ai.output.messages"]) == expected


def test_break_then_drop_ends_span_once(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    for _chunk in _client(sim).chat.completions.create(model=MODEL, messages=MESSAGES, stream=True):
        break
    gc.collect()
    (span,) = _ours(spans)
    assert _attrs(span)["llmscope.stream.ended_by"] == "abandoned"
    assert span.status.status_code == StatusCode.UNSET


def test_close_and_context_manager(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    client = _client(sim)
    stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    next(iter(stream))
    stream.close()
    stream.close()  # idempotent: still one span
    with client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True) as second:
        next(iter(second))
    assert [_attrs(s)["llmscope.stream.ended_by"] for s in _ours(spans)] == ["closed", "closed"]


def test_broken_stream_records_error_and_reraises(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    client = _client(sim)
    received: list[Any] = []
    with pytest.raises(Exception) as info:
        for chunk in client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True, extra_headers=BROKEN):
            received.append(chunk)
    llmscope_sdk.uninstrument()
    with pytest.raises(type(info.value)):  # the very same exception type as without instrumentation
        list(client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True, extra_headers=BROKEN))

    (span,) = _ours(spans)
    attrs = _attrs(span)
    assert span.status.status_code == StatusCode.ERROR
    assert attrs["error.type"].endswith(type(info.value).__qualname__)
    assert attrs["llmscope.stream.ended_by"] == "error"
    assert attrs["gen_ai.response.id"] == received[0].id  # what arrived before the break is kept
    assert list(attrs["gen_ai.response.finish_reasons"]) == ["error"]


def test_async_stream_exhausted_and_closed(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    client = _async_client(sim)

    async def run() -> list[Any]:
        stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True, stream_options=USAGE)
        chunks = [chunk async for chunk in stream]
        early = await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
        async for _chunk in early:
            break
        await early.close()
        async with await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True) as third:
            await third.__anext__()
        return chunks

    chunks = asyncio.run(run())
    first, second, third = _ours(spans)
    assert _attrs(first)["gen_ai.usage.output_tokens"] == chunks[-1].usage.completion_tokens
    assert _attrs(first)["llmscope.stream.ended_by"] == "exhausted"
    assert _attrs(second)["llmscope.stream.ended_by"] == "closed"
    assert _attrs(third)["llmscope.stream.ended_by"] == "closed"


def test_async_broken_stream(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    client = _async_client(sim)

    async def run() -> None:
        stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True, extra_headers=BROKEN)
        async for _chunk in stream:
            pass

    with pytest.raises(Exception) as info:
        asyncio.run(run())
    (span,) = _ours(spans)
    assert span.status.status_code == StatusCode.ERROR
    assert _attrs(span)["error.type"].endswith(type(info.value).__qualname__)


# --------------------------------------------------------------------- chat: the stream() helper


def test_chat_stream_helper_one_span_sync(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    client = _client(sim)
    with chat_helpers(client).stream(model=MODEL, messages=MESSAGES, stream_options=USAGE) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_completion()
    assert "content.delta" in events
    (span,) = _ours(spans)
    attrs = _attrs(span)
    assert final.usage is not None
    assert attrs["gen_ai.response.id"] == final.id
    assert attrs["gen_ai.usage.output_tokens"] == final.usage.completion_tokens
    assert attrs["llmscope.stream.ended_by"] == "exhausted"

    with chat_helpers(client).stream(model=MODEL, messages=MESSAGES) as early:
        next(iter(early))
    assert _attrs(_ours(spans)[1])["llmscope.stream.ended_by"] == "closed"  # ended on exit, not at GC
    assert len(_ours(spans)) == 2


def test_chat_stream_helper_one_span_async(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    client = _async_client(sim)

    async def run() -> Any:
        async with chat_helpers(client).stream(model=MODEL, messages=MESSAGES, stream_options=USAGE) as stream:
            return await stream.get_final_completion()

    final = asyncio.run(run())
    (span,) = _ours(spans)
    assert _attrs(span)["gen_ai.response.id"] == final.id
    assert _attrs(span)["gen_ai.usage.input_tokens"] == final.usage.prompt_tokens


def test_chat_stream_helper_error_on_enter(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    client = _client(sim)
    with (
        pytest.raises(openai.InternalServerError),
        chat_helpers(client).stream(model=MODEL, messages=MESSAGES, extra_headers={"x-sim-error": "500"}),
    ):
        pass
    client.chat.completions.create(model=MODEL, messages=MESSAGES)  # a later plain call gets its own span
    failed, plain = _ours(spans)
    assert _attrs(failed)["error.type"] == "openai.InternalServerError"
    assert "gen_ai.request.stream" not in _attrs(plain) and plain.status.status_code == StatusCode.UNSET


# ---------------------------------------------------------------------------- responses streams


@needs_responses
def test_responses_create_stream_sync(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    client = _client(sim)
    instrumented = list(client.responses.create(model=MODEL, input="hi there", stream=True))
    llmscope_sdk.uninstrument()
    plain = list(client.responses.create(model=MODEL, input="hi there", stream=True))
    assert _dump(instrumented) == _dump(plain)
    completed = plain[-1].response  # type: ignore[union-attr]
    (span,) = _ours(spans)
    attrs = _attrs(span)
    assert attrs["openai.api.type"] == "responses" and attrs["gen_ai.request.stream"] is True
    assert attrs["gen_ai.response.id"] == completed.id
    assert attrs["gen_ai.usage.input_tokens"] == completed.usage.input_tokens
    assert attrs["gen_ai.usage.output_tokens"] == completed.usage.output_tokens
    assert list(attrs["gen_ai.response.finish_reasons"]) == ["stop"]
    assert attrs["llmscope.stream.ended_by"] == "exhausted"


@needs_responses
def test_responses_stream_broken_keeps_partial_output(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    llmscope_sdk.instrument(capture_content=True)
    with pytest.raises(Exception):  # noqa: B017 - whatever the client raises for a dropped connection
        list(_client(sim).responses.create(model=MODEL, input="hi", stream=True, extra_headers=BROKEN))
    attrs = _attrs(_ours(spans)[0])
    assert attrs["llmscope.stream.ended_by"] == "error" and attrs["gen_ai.response.id"].startswith("resp_")
    assert "gen_ai.usage.input_tokens" not in attrs and "gen_ai.response.finish_reasons" not in attrs


@needs_responses
def test_responses_stream_helper_sync(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    llmscope_sdk.instrument(capture_content=True)
    client = _client(sim)
    with client.responses.stream(model=MODEL, input="hi", tools=[{"type": "function", **TOOLS[0]["function"]}]) as s:
        final = s.get_final_response()
    with client.responses.stream(model=MODEL, input="hi") as early:
        next(iter(early))
    done, closed = _ours(spans)
    attrs = _attrs(done)
    assert attrs["gen_ai.response.id"] == final.id
    assert attrs["gen_ai.usage.output_tokens"] == final.usage.output_tokens  # type: ignore[union-attr]
    assert list(attrs["gen_ai.response.finish_reasons"]) == ["tool_call"]
    call = final.output[0]
    assert json.loads(attrs["gen_ai.output.messages"])[0]["parts"][0]["id"] == call.call_id  # type: ignore[union-attr]
    assert attrs["llmscope.stream.ended_by"] == "exhausted"
    assert _attrs(closed)["llmscope.stream.ended_by"] == "closed"


@needs_responses
def test_responses_stream_helper_and_create_async(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    client = _async_client(sim)

    async def run() -> tuple[Any, list[Any]]:
        async with client.responses.stream(model=MODEL, input="hi") as helper:
            final = await helper.get_final_response()
        stream = await client.responses.create(model=MODEL, input="hi", stream=True)
        events = [event async for event in stream]
        return final, events

    final, events = asyncio.run(run())
    assert events[-1].type == "response.completed"
    for span in _ours(spans):
        attrs = _attrs(span)
        assert attrs["gen_ai.response.id"] == final.id
        assert attrs["gen_ai.usage.output_tokens"] == final.usage.output_tokens
        assert attrs["llmscope.stream.ended_by"] == "exhausted"
    assert len(_ours(spans)) == 2


@needs_responses
def test_responses_stream_of_stored_response_is_not_a_new_call(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    manager = _client(sim).responses.stream(response_id="resp_123")
    with pytest.raises(openai.NotFoundError), manager:  # the simulator stores no responses
        pass
    assert _ours(spans) == []


def test_concurrent_async_helpers_keep_their_own_spans(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    client = _async_client(sim)

    async def one(question: str) -> Any:
        messages = [{"role": "user", "content": question}]
        slow = {"x-sim-chunk-delay-ms": "2"}
        async with chat_helpers(client).stream(model=MODEL, messages=messages, extra_headers=slow) as stream:
            return await stream.get_final_completion()

    async def run() -> list[Any]:
        return list(await asyncio.gather(one("first question"), one("second question")))

    finals = asyncio.run(run())
    ids = sorted(_attrs(s)["gen_ai.response.id"] for s in _ours(spans))
    assert ids == sorted(f.id for f in finals) and len(set(ids)) == 2
