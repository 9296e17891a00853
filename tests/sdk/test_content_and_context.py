"""Opt-in content capture (JSON per the conventions, redaction, marked truncation) and the
session / user / tags / metadata / prompt scopes flowing to every span, across threads and tasks."""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
from typing import Any

import anthropic
import pytest

import llmscope_sdk
from llmscope.testing import CapturedSpans
from llmscope_sdk._content import capture_from_env
from llmscope_sim import SimulatedProvider

MODEL = "claude-sonnet-4-6"
TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]


def _ours(exporter: CapturedSpans) -> list[Any]:
    return [s for s in exporter.spans if s.instrumentation_scope.name == "llmscope"]


def _client(sim: SimulatedProvider) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=sim.base_url, api_key="k", max_retries=0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", False),
        ("false", False),
        ("true", True),
        ("TRUE", True),
        ("SPAN_ONLY", True),
        ("span_and_event", True),
        ("NO_CONTENT", False),
        ("EVENT_ONLY", False),
        ("bogus", False),
    ],
)
def test_capture_env_values(value: str, expected: bool) -> None:
    assert capture_from_env({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": value}) is expected


def test_content_off_by_default(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    _client(sim).messages.create(model=MODEL, max_tokens=20, messages=[{"role": "user", "content": "secret"}])
    (span,) = _ours(spans)
    assert not any(k.startswith("gen_ai.input") or k.startswith("gen_ai.output") for k in span.attributes or {})


def test_tool_round_trip_content_json(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    llmscope_sdk.instrument(capture_content=True)
    client = _client(sim)
    first = client.messages.create(
        model=MODEL,
        max_tokens=100,
        system="Be brief.",
        tools=TOOLS,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": "weather in Paris?"}],
    )
    tool_use = next(b for b in first.content if b.type == "tool_use")
    second = client.messages.create(
        model=MODEL,
        max_tokens=100,
        tools=TOOLS,  # type: ignore[arg-type]
        messages=[
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": first.content},  # type: ignore[typeddict-item]
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "rainy"}]},
        ],
    )
    a, b = (dict(s.attributes or {}) for s in _ours(spans))
    assert list(a["gen_ai.response.finish_reasons"]) == ["tool_call"]
    assert json.loads(a["gen_ai.system_instructions"]) == [{"type": "text", "content": "Be brief."}]
    assert json.loads(a["gen_ai.tool.definitions"])[0]["name"] == "get_weather"
    out = json.loads(a["gen_ai.output.messages"])
    call = next(p for p in out[0]["parts"] if p["type"] == "tool_call")
    assert call == {"type": "tool_call", "id": tool_use.id, "name": "get_weather", "arguments": tool_use.input}
    assert out[0]["finish_reason"] == "tool_call"
    inputs = json.loads(b["gen_ai.input.messages"])
    assert inputs[-1] == {
        "role": "tool",
        "parts": [{"type": "tool_call_response", "id": tool_use.id, "response": "rainy"}],
    }
    assert json.loads(b["gen_ai.output.messages"])[0]["parts"][0]["content"] == second.content[0].text  # type: ignore[union-attr]


def test_streamed_output_content_matches_final_message(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    llmscope_sdk.instrument(capture_content=True)
    with _client(sim).messages.stream(
        model=MODEL,
        max_tokens=60,
        tools=TOOLS,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": "weather?"}],
    ) as stream:
        final = stream.get_final_message()
    (span,) = _ours(spans)
    parts = json.loads(dict(span.attributes or {})["gen_ai.output.messages"])[0]["parts"]
    expected = [
        {"type": "text", "content": b.text}
        if b.type == "text"
        else {"type": "tool_call", "id": b.id, "name": b.name, "arguments": b.input}  # type: ignore[union-attr]
        for b in final.content
    ]
    assert parts == expected


def test_redaction_hook_and_truncation_marker(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    def redact(name: str, value: Any) -> Any:
        return None if name == "gen_ai.output.messages" else json.dumps(value).replace("hunter2", "[REDACTED]")

    llmscope_sdk.instrument(capture_content=True, redact=redact, max_content_chars=100)
    long_text = "hunter2 is my password " + "x" * 500
    _client(sim).messages.create(model=MODEL, max_tokens=20, messages=[{"role": "user", "content": long_text}])
    attrs = dict(_ours(spans)[0].attributes or {})
    assert "gen_ai.output.messages" not in attrs
    assert "hunter2" not in attrs["gen_ai.input.messages"] and "[REDACTED]" in attrs["gen_ai.input.messages"]
    assert attrs["gen_ai.input.messages"].endswith("chars]") and "…[truncated" in attrs["gen_ai.input.messages"]
    assert list(attrs["llmscope.content.truncated"]) == ["gen_ai.input.messages"]


def test_session_user_tags_metadata_prompt_flow_to_spans(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    client = _client(sim)
    tracer = llmscope_sdk.configure().get_tracer("app")
    with (
        llmscope_sdk.session("s-123", user_id="u-9"),
        llmscope_sdk.tags("beta", "eu"),
        llmscope_sdk.metadata(plan="pro"),
        llmscope_sdk.prompt("summarize", version=3),
        tracer.start_as_current_span("handler"),
    ):
        client.messages.create(model=MODEL, max_tokens=20, messages=[{"role": "user", "content": "hi"}])
    client.messages.create(model=MODEL, max_tokens=20, messages=[{"role": "user", "content": "outside"}])
    handler = next(s for s in spans.spans if s.name == "handler")
    inside, outside = (dict(s.attributes or {}) for s in _ours(spans))
    h = dict(handler.attributes or {})
    assert h["session.id"] == "s-123" and h["user.id"] == "u-9" and list(h["llmscope.tags"]) == ["beta", "eu"]
    assert "gen_ai.conversation.id" not in h and "gen_ai.prompt.name" not in h  # only on GenAI spans
    assert inside["session.id"] == inside["gen_ai.conversation.id"] == "s-123"
    assert inside["llmscope.metadata.plan"] == "pro"
    assert inside["gen_ai.prompt.name"] == "summarize" and inside["gen_ai.prompt.version"] == "3"
    assert not any(k in outside for k in ("session.id", "user.id", "llmscope.tags", "gen_ai.prompt.name"))


def test_scope_crosses_threads_with_copied_context_and_tasks(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    client = _client(sim)
    aclient = anthropic.AsyncAnthropic(base_url=sim.base_url, api_key="k", max_retries=0)

    def call() -> None:
        client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "t"}])

    async def two_tasks() -> None:
        async def one() -> None:
            await aclient.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "a"}])

        await asyncio.gather(asyncio.create_task(one()), asyncio.create_task(one()))

    @llmscope_sdk.session("s-deco", user_id="u-deco")
    def handler() -> None:
        ctx = contextvars.copy_context()
        thread = threading.Thread(target=ctx.run, args=(call,))
        thread.start()
        thread.join()
        asyncio.run(two_tasks())

    handler()
    sessions = [dict(s.attributes or {}).get("session.id") for s in _ours(spans)]
    assert sessions == ["s-deco"] * 3


def test_trace_decorator_kinds_nesting_and_errors(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    client = _client(sim)

    @llmscope_sdk.trace(kind="tool")
    def get_weather(city: str) -> str:
        return f"rain in {city}"

    @llmscope_sdk.trace(name="planner", kind="agent")
    def agent(question: str) -> str:
        client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": question}])
        return get_weather("Paris")

    @llmscope_sdk.trace
    def broken() -> None:
        raise KeyError("missing")

    assert agent("weather?") == "rain in Paris"
    with pytest.raises(KeyError, match="missing"):
        broken()
    by_name = {s.name: s for s in spans.spans}
    root, tool, llm = by_name["invoke_agent planner"], by_name["execute_tool get_weather"], by_name[f"chat {MODEL}"]
    assert tool.parent is not None and tool.parent.span_id == root.context.span_id
    assert llm.parent is not None and llm.parent.span_id == root.context.span_id
    assert dict(root.attributes or {})["gen_ai.agent.name"] == "planner"
    assert dict(tool.attributes or {})["gen_ai.tool.name"] == "get_weather"
    assert "gen_ai.tool.call.arguments" not in (tool.attributes or {})  # capture is off
    err = by_name[next(n for n in by_name if n.endswith("broken"))]
    assert dict(err.attributes or {})["error.type"] == "KeyError" and err.status.status_code.name == "ERROR"


def test_trace_decorator_generators_and_async_capture(spans: CapturedSpans) -> None:
    llmscope_sdk.instrument(capture_content=True)
    tracer = llmscope_sdk.configure().get_tracer("app")

    @llmscope_sdk.trace(kind="retrieval")
    def docs(n: int) -> Any:
        yield from range(n)

    @llmscope_sdk.trace(kind="tool")
    async def lookup(key: str) -> dict[str, str]:
        await asyncio.sleep(0)
        return {"key": key, "value": "v"}

    @llmscope_sdk.trace
    async def agen() -> Any:
        for i in range(3):
            yield i

    async def consume() -> list[int]:
        return [i async for i in agen()]

    with tracer.start_as_current_span("outer") as outer:
        got = []
        for item in docs(3):
            # the generator's span must not be current here, between its yields
            from opentelemetry import trace as otel_trace

            assert otel_trace.get_current_span() is outer
            got.append(item)
    assert got == [0, 1, 2]
    assert asyncio.run(lookup("k")) == {"key": "k", "value": "v"}
    assert asyncio.run(consume()) == [0, 1, 2]
    gen_early = docs(10)
    next(gen_early)
    gen_early.close()
    by_name = {s.name: s for s in spans.spans}
    tool = dict(by_name["execute_tool lookup"].attributes or {})
    assert json.loads(tool["gen_ai.tool.call.arguments"]) == {"key": "k"}
    assert json.loads(tool["gen_ai.tool.call.result"]) == {"key": "k", "value": "v"}
    retrievals = [s for s in spans.spans if s.name.startswith("retrieval")]
    assert len(retrievals) == 2 and all(s.end_time for s in retrievals)
