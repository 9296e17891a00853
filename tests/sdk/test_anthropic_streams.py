"""Anthropic streams through the real client: the span covers the whole stream and ends exactly
once on every exit path, and the caller sees exactly the events it would see uninstrumented."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import anthropic
import pytest
from opentelemetry.trace import StatusCode

import llmscope_sdk
from llmscope.testing import CapturedSpans
from llmscope_sim import SimulatedProvider

MODEL = "claude-sonnet-4-6"
MESSAGES = [{"role": "user", "content": "tell me a story about streams"}]


def _ours(exporter: CapturedSpans) -> list[Any]:
    return [s for s in exporter.spans if s.instrumentation_scope.name == "llmscope"]


def _client(sim: SimulatedProvider) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=sim.base_url, api_key="k", max_retries=0)


def _dump(events: list[Any]) -> list[dict[str, Any]]:
    return [e.model_dump() for e in events]


def test_exhausted_stream_same_events_and_full_usage(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    client = _client(sim)
    instrumented = list(client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES, stream=True))
    llmscope_sdk.uninstrument()
    plain = list(client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES, stream=True))
    assert _dump(instrumented) == _dump(plain)

    (span,) = _ours(spans)
    attrs = dict(span.attributes or {})
    final = client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES)
    assert attrs["gen_ai.request.stream"] is True
    assert attrs["gen_ai.response.id"] == final.id
    assert attrs["gen_ai.usage.input_tokens"] == final.usage.input_tokens
    assert attrs["gen_ai.usage.output_tokens"] == final.usage.output_tokens
    assert list(attrs["gen_ai.response.finish_reasons"]) == ["stop"]
    assert 0 < attrs["gen_ai.response.time_to_first_chunk"] < 5
    assert attrs["llmscope.stream.ended_by"] == "exhausted"
    assert span.end_time >= span.start_time


def test_break_then_drop_ends_span_once(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    client = _client(sim)
    for _event in client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES, stream=True):
        break
    gc.collect()
    (span,) = _ours(spans)
    assert dict(span.attributes or {})["llmscope.stream.ended_by"] == "abandoned"
    assert span.status.status_code == StatusCode.UNSET


def test_close_and_context_manager(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    client = _client(sim)
    stream = client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES, stream=True)
    next(iter(stream))
    stream.close()
    stream.close()  # idempotent: still one span
    with client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES, stream=True) as s2:
        next(iter(s2))
    ended = [dict(s.attributes or {})["llmscope.stream.ended_by"] for s in _ours(spans)]
    assert ended == ["closed", "closed"]


def test_broken_stream_records_error_and_reraises(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    client = _client(sim)
    with pytest.raises(Exception) as info:
        list(
            client.messages.create(
                model=MODEL,
                max_tokens=100,
                messages=MESSAGES,
                stream=True,
                extra_headers={"x-sim-disconnect": "mid-stream"},
            )
        )
    (span,) = _ours(spans)
    attrs = dict(span.attributes or {})
    assert span.status.status_code == StatusCode.ERROR
    assert attrs["error.type"].endswith(type(info.value).__qualname__)
    assert attrs["llmscope.stream.ended_by"] == "error"
    assert attrs["gen_ai.response.id"]  # what arrived before the break is kept


def test_stream_helper_text_stream_and_final_message(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    client = _client(sim)
    with client.messages.stream(model=MODEL, max_tokens=100, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == final.content[0].text  # type: ignore[union-attr]
    (span,) = _ours(spans)
    attrs = dict(span.attributes or {})
    assert span.name == f"chat {MODEL}"
    assert attrs["gen_ai.response.id"] == final.id
    assert attrs["gen_ai.usage.output_tokens"] == final.usage.output_tokens
    assert attrs["gen_ai.response.time_to_first_chunk"] > 0
    assert attrs["llmscope.stream.ended_by"] == "exhausted"


def test_stream_helper_exited_early(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    client = _client(sim)
    with client.messages.stream(model=MODEL, max_tokens=100, messages=MESSAGES) as stream:
        next(iter(stream))
    (span,) = _ours(spans)
    assert dict(span.attributes or {})["llmscope.stream.ended_by"] == "closed"


def test_async_stream_create_and_helper(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    client = anthropic.AsyncAnthropic(base_url=sim.base_url, api_key="k", max_retries=0)

    async def run() -> tuple[list[Any], Any]:
        stream = await client.messages.create(model=MODEL, max_tokens=80, messages=MESSAGES, stream=True)
        events = [event async for event in stream]
        async with client.messages.stream(model=MODEL, max_tokens=80, messages=MESSAGES) as helper:
            final = await helper.get_final_message()
        return events, final

    events, final = asyncio.run(run())
    first, second = _ours(spans)
    assert events[0].type == "message_start"
    for span in (first, second):
        attrs = dict(span.attributes or {})
        assert attrs["gen_ai.response.id"] == final.id
        assert attrs["gen_ai.usage.output_tokens"] == final.usage.output_tokens
        assert attrs["llmscope.stream.ended_by"] == "exhausted"


def test_async_stream_break_is_ended(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    client = anthropic.AsyncAnthropic(base_url=sim.base_url, api_key="k", max_retries=0)

    async def run() -> None:
        stream = await client.messages.create(model=MODEL, max_tokens=80, messages=MESSAGES, stream=True)
        async for _event in stream:
            break
        await stream.close()

    asyncio.run(run())
    (span,) = _ours(spans)
    assert dict(span.attributes or {})["llmscope.stream.ended_by"] == "closed"
