"""The real openai client (sync and async) against the simulated provider, instrumented: chat
completions, responses and embeddings, errors, cached tokens, content capture and never-harm."""

from __future__ import annotations

import asyncio
import inspect
import json
from typing import Any

import openai
import pytest
import wrapt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.trace import SpanKind, StatusCode

import llmscope_sdk
from llmscope.testing import CapturedSpans
from llmscope_sim import SimulatedProvider

MODEL = "gpt-4o"
EMBEDDING_MODEL = "text-embedding-3-small"
USER = [{"role": "user", "content": "hello there"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]
LONG_SYSTEM = {"role": "system", "content": "You answer questions about a long shared context. " * 20}


def _ours(exporter: CapturedSpans) -> list[Any]:
    return [s for s in exporter.spans if s.instrumentation_scope.name == "llmscope"]


def _attrs(span: Any) -> dict[str, Any]:
    return dict(span.attributes or {})


def _client(sim: SimulatedProvider) -> openai.OpenAI:
    return openai.OpenAI(base_url=sim.base_url + "/v1", api_key="k", max_retries=0)


def _async_client(sim: SimulatedProvider) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=sim.base_url + "/v1", api_key="k", max_retries=0)


# The Responses API arrived in openai 1.66; the oldest supported 1.x line lacks it.
needs_responses = pytest.mark.skipif(
    not hasattr(openai.OpenAI, "responses"), reason="openai client has no Responses API"
)


def cached_tokens(usage: Any, details: str = "prompt_tokens_details") -> int:
    """Older 1.x clients keep the details object as an untyped dict."""
    value = getattr(usage, details)
    return int(value["cached_tokens"] if isinstance(value, dict) else value.cached_tokens)


def _port(sim: SimulatedProvider) -> int:
    return int(sim.base_url.rsplit(":", 1)[1])


# ----------------------------------------------------------------------------- chat completions


def test_sync_chat_span_attributes(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    completion = _client(sim).chat.completions.create(
        model=MODEL,
        messages=USER,  # type: ignore[arg-type]
        max_tokens=64,
        temperature=0.5,
        top_p=1,
        frequency_penalty=0.1,
        presence_penalty=0.2,
        seed=42,
        stop="END",
        service_tier="default",
        response_format={"type": "json_object"},
    )
    (span,) = _ours(spans)
    attrs = _attrs(span)
    assert span.name == f"chat {MODEL}" and span.kind == SpanKind.CLIENT
    assert attrs["gen_ai.operation.name"] == "chat" and attrs["openai.api.type"] == "chat_completions"
    assert attrs["gen_ai.provider.name"] == "openai" and attrs["gen_ai.system"] == "openai"
    assert attrs["gen_ai.request.model"] == MODEL and attrs["gen_ai.response.model"] == completion.model
    assert attrs["gen_ai.response.id"] == completion.id
    assert attrs["gen_ai.request.max_tokens"] == 64 and attrs["gen_ai.request.seed"] == 42
    assert attrs["gen_ai.request.temperature"] == 0.5 and attrs["gen_ai.request.top_p"] == 1.0
    assert attrs["gen_ai.request.frequency_penalty"] == 0.1 and attrs["gen_ai.request.presence_penalty"] == 0.2
    assert list(attrs["gen_ai.request.stop_sequences"]) == ["END"]
    assert attrs["gen_ai.output.type"] == "json"
    assert attrs["openai.request.service_tier"] == "default"
    assert attrs["openai.response.service_tier"] == completion.service_tier
    assert attrs["openai.response.system_fingerprint"] == completion.system_fingerprint
    assert "gen_ai.request.choice.count" not in attrs and "gen_ai.request.stream" not in attrs
    assert list(attrs["gen_ai.response.finish_reasons"]) == ["stop"]
    assert completion.usage is not None
    assert attrs["gen_ai.usage.input_tokens"] == completion.usage.prompt_tokens
    assert attrs["gen_ai.usage.output_tokens"] == completion.usage.completion_tokens
    assert attrs["gen_ai.usage.reasoning.output_tokens"] == 0
    assert attrs["server.address"] == "127.0.0.1" and attrs["server.port"] == _port(sim)
    assert span.status.status_code == StatusCode.UNSET
    assert not any(k.startswith(("gen_ai.input", "gen_ai.output.messages")) for k in attrs)  # content off


def test_max_completion_tokens_wins(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    if (
        "max_completion_tokens"
        not in inspect.signature(openai.resources.chat.completions.Completions.create).parameters
    ):
        pytest.skip("openai client predates max_completion_tokens")
    _client(sim).chat.completions.create(model=MODEL, messages=USER, max_completion_tokens=9, max_tokens=99)  # type: ignore[arg-type]
    assert _attrs(_ours(spans)[0])["gen_ai.request.max_tokens"] == 9


def test_async_chat_is_child_of_current_span(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    tracer = llmscope_sdk.configure().get_tracer("test")

    async def call() -> Any:
        with tracer.start_as_current_span("parent"):
            return await _async_client(sim).chat.completions.create(model=MODEL, messages=USER, max_tokens=16)  # type: ignore[arg-type]

    completion = asyncio.run(call())
    parent = next(s for s in spans.spans if s.name == "parent")
    (span,) = _ours(spans)
    assert span.parent is not None and span.parent.span_id == parent.context.span_id
    assert _attrs(span)["gen_ai.response.id"] == completion.id
    assert _attrs(span)["gen_ai.request.max_tokens"] == 16


def test_n_choices_one_finish_reason_each(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    llmscope_sdk.instrument(capture_content=True)
    completion = _client(sim).chat.completions.create(model=MODEL, messages=USER, n=3, max_tokens=4)  # type: ignore[arg-type]
    attrs = _attrs(_ours(spans)[0])
    assert attrs["gen_ai.request.choice.count"] == 3
    assert list(attrs["gen_ai.response.finish_reasons"]) == [c.finish_reason for c in completion.choices]
    outputs = json.loads(attrs["gen_ai.output.messages"])
    assert [o["parts"][0]["content"] for o in outputs] == [c.message.content for c in completion.choices]


def test_tool_call_round_trip_content(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    llmscope_sdk.instrument(capture_content=True)
    client = _client(sim)
    messages: list[Any] = [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Paris?"}]
    first = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)  # type: ignore[arg-type]
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    messages += [first.choices[0].message, {"role": "tool", "tool_call_id": call.id, "content": "rainy"}]
    second = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)  # type: ignore[arg-type]

    a, b = (_attrs(s) for s in _ours(spans))
    assert list(a["gen_ai.response.finish_reasons"]) == ["tool_call"]
    assert json.loads(a["gen_ai.tool.definitions"]) == [
        {"type": "function", "name": "get_weather", **{k: v for k, v in TOOLS[0]["function"].items() if k != "name"}}
    ]
    expected_call = {
        "type": "tool_call",
        "id": call.id,
        "name": "get_weather",
        "arguments": json.loads(call.function.arguments),  # type: ignore[union-attr]
    }
    assert json.loads(a["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [expected_call], "finish_reason": "tool_call"}
    ]
    inputs = json.loads(b["gen_ai.input.messages"])
    assert inputs[0] == {"role": "developer", "parts": [{"type": "text", "content": "Be brief."}]}
    assert inputs[2] == {"role": "assistant", "parts": [expected_call]}
    assert inputs[3] == {"role": "tool", "parts": [{"type": "tool_call_response", "id": call.id, "response": "rainy"}]}
    assert "gen_ai.system_instructions" not in b  # chat keeps system/developer turns in the history
    assert json.loads(b["gen_ai.output.messages"])[0]["parts"] == [
        {"type": "text", "content": second.choices[0].message.content}
    ]


def test_image_parts_become_uri_and_blob(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    llmscope_sdk.instrument(capture_content=True)
    content = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.test/cat.png"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
    ]
    _client(sim).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": content}])  # type: ignore[list-item]
    parts = json.loads(_attrs(_ours(spans)[0])["gen_ai.input.messages"])[0]["parts"]
    assert parts == [
        {"type": "text", "content": "what is this?"},
        {"type": "uri", "modality": "image", "uri": "https://example.test/cat.png"},
        {"type": "blob", "modality": "image", "mime_type": "image/png", "content": "iVBORw0K"},
    ]


@pytest.mark.parametrize("status", [400, 429, 500])
def test_error_is_recorded_and_reraised_unchanged(sim: SimulatedProvider, spans: CapturedSpans, status: int) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        _client(sim).chat.completions.create(
            model=MODEL,
            messages=USER,  # type: ignore[arg-type]
            extra_headers={"x-sim-error": str(status)},
        )
    assert info.value.status_code == status
    (span,) = _ours(spans)
    attrs = _attrs(span)
    assert span.status.status_code == StatusCode.ERROR
    assert attrs["error.type"] == f"openai.{type(info.value).__qualname__}"
    assert attrs["http.response.status_code"] == status
    assert any(e.name == "exception" for e in span.events)


def test_azure_client_is_azure_provider(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    client = openai.AzureOpenAI(base_url=sim.base_url + "/v1", api_key="k", api_version="2024-10-21", max_retries=0)
    with pytest.raises(openai.NotFoundError):  # the simulator has no Azure deployment routes
        client.chat.completions.create(model=MODEL, messages=USER)  # type: ignore[arg-type]
    attrs = _attrs(_ours(spans)[0])
    assert attrs["gen_ai.provider.name"] == "azure.ai.openai" and attrs["gen_ai.system"] == "az.ai.openai"
    assert attrs["error.type"] == "openai.NotFoundError"


def test_cached_tokens_counted_once(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    client = _client(sim)
    results = [
        client.chat.completions.create(model=MODEL, messages=[LONG_SYSTEM, {"role": "user", "content": q}])  # type: ignore[list-item]
        for q in ("first question", "second question")
    ]
    for span, completion in zip(_ours(spans), results, strict=True):
        usage = completion.usage
        assert usage is not None
        attrs = _attrs(span)
        assert attrs["gen_ai.usage.input_tokens"] == usage.prompt_tokens  # already includes cached tokens
        assert attrs["gen_ai.usage.cache_read.input_tokens"] == cached_tokens(usage)
    second = results[1].usage
    assert second is not None
    assert 0 < cached_tokens(second) < second.prompt_tokens  # the prefix cache did hit


def test_with_raw_response_returns_raw_and_reads_parsed_body(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    raw = _client(sim).chat.completions.with_raw_response.create(model=MODEL, messages=USER)  # type: ignore[arg-type]
    assert hasattr(raw, "http_response")  # the raw object, unchanged
    completion = raw.parse()
    attrs = _attrs(_ours(spans)[0])
    assert attrs["gen_ai.response.id"] == completion.id
    assert completion.usage is not None and attrs["gen_ai.usage.output_tokens"] == completion.usage.completion_tokens


def test_with_streaming_response_body_is_left_to_the_user(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    client = _client(sim)
    with client.chat.completions.with_streaming_response.create(model=MODEL, messages=USER) as response:  # type: ignore[arg-type]
        lines = [line for line in response.iter_lines() if line]
    assert json.loads(lines[0])["object"] == "chat.completion"
    (span,) = _ours(spans)
    assert _attrs(span)["gen_ai.request.model"] == MODEL


def chat_helpers(client: Any) -> Any:
    """`parse`/`stream` live on `chat.completions`, or on `beta.chat.completions` in older 1.x clients."""
    return client.chat.completions if hasattr(client.chat.completions, "stream") else client.beta.chat.completions


def test_chat_parse_helper_gets_one_span(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    completion = chat_helpers(_client(sim)).parse(
        model=MODEL,
        messages=USER,  # type: ignore[arg-type]
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
    )
    (span,) = _ours(spans)  # 1.x's beta helper calls `create` inside: still one span
    assert _attrs(span)["gen_ai.response.id"] == completion.id and _attrs(span)["gen_ai.output.type"] == "json"


# ----------------------------------------------------------------------------------- responses


@needs_responses
def test_responses_create_sync_and_async(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    llmscope_sdk.instrument(capture_content=True)
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "input": "Say hi.",
        "instructions": "Be brief.",
        "max_output_tokens": 50,
        "temperature": 0.3,
        "text": {"format": {"type": "text"}},
    }
    sync_response = _client(sim).responses.create(**kwargs)

    async def call() -> Any:
        return await _async_client(sim).responses.create(**kwargs)

    async_response = asyncio.run(call())
    for span, response in zip(_ours(spans), (sync_response, async_response), strict=True):
        attrs = _attrs(span)
        assert span.name == f"chat {MODEL}"
        assert attrs["openai.api.type"] == "responses" and attrs["gen_ai.operation.name"] == "chat"
        assert attrs["gen_ai.response.id"] == response.id
        assert attrs["gen_ai.request.max_tokens"] == 50 and attrs["gen_ai.request.temperature"] == 0.3
        assert attrs["gen_ai.output.type"] == "text"
        assert list(attrs["gen_ai.response.finish_reasons"]) == ["stop"]
        assert attrs["gen_ai.usage.input_tokens"] == response.usage.input_tokens
        assert attrs["gen_ai.usage.output_tokens"] == response.usage.output_tokens
        assert json.loads(attrs["gen_ai.system_instructions"]) == [{"type": "text", "content": "Be brief."}]
        assert json.loads(attrs["gen_ai.input.messages"]) == [
            {"role": "user", "parts": [{"type": "text", "content": "Say hi."}]}
        ]
        assert json.loads(attrs["gen_ai.output.messages"]) == [
            {"role": "assistant", "parts": [{"type": "text", "content": response.output_text}], "finish_reason": "stop"}
        ]


@needs_responses
def test_responses_tool_round_trip_and_cache(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    llmscope_sdk.instrument(capture_content=True)
    client = _client(sim)
    tools: Any = [{"type": "function", **TOOLS[0]["function"]}]
    instructions = LONG_SYSTEM["content"]
    first = client.responses.create(model=MODEL, input="Paris?", tools=tools, instructions=instructions)
    call = first.output[0]
    assert call.type == "function_call"
    items: Any = [
        {"role": "user", "content": "Paris?"},
        call,
        {"type": "function_call_output", "call_id": call.call_id, "output": "rainy"},
    ]
    second = client.responses.create(model=MODEL, input=items, tools=tools, instructions=instructions)
    a, b = (_attrs(s) for s in _ours(spans))
    assert list(a["gen_ai.response.finish_reasons"]) == ["tool_call"]
    assert json.loads(a["gen_ai.tool.definitions"])[0]["name"] == "get_weather"
    expected_call = {
        "type": "tool_call",
        "id": call.call_id,
        "name": "get_weather",
        "arguments": json.loads(call.arguments),
    }
    assert json.loads(a["gen_ai.output.messages"])[0]["parts"] == [expected_call]
    inputs = json.loads(b["gen_ai.input.messages"])
    assert inputs[1] == {"role": "assistant", "parts": [expected_call]}
    assert inputs[2] == {
        "role": "tool",
        "parts": [{"type": "tool_call_response", "id": call.call_id, "response": "rainy"}],
    }
    assert b["gen_ai.usage.input_tokens"] == second.usage.input_tokens  # type: ignore[union-attr]


@needs_responses
def test_responses_cached_tokens_counted_once(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    client = _client(sim)
    instructions = LONG_SYSTEM["content"]
    results = [client.responses.create(model=MODEL, input=q, instructions=instructions) for q in ("one", "two")]
    for span, response in zip(_ours(spans), results, strict=True):
        assert response.usage is not None
        attrs = _attrs(span)
        assert attrs["gen_ai.usage.input_tokens"] == response.usage.input_tokens
        assert attrs["gen_ai.usage.cache_read.input_tokens"] == cached_tokens(response.usage, "input_tokens_details")
    assert results[1].usage is not None and cached_tokens(results[1].usage, "input_tokens_details") > 0


@needs_responses
def test_responses_incomplete_is_length(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    response = _client(sim).responses.create(model=MODEL, input="Tell me a long story.", max_output_tokens=1)
    assert response.status == "incomplete"
    assert list(_attrs(_ours(spans)[0])["gen_ai.response.finish_reasons"]) == ["length"]


# ---------------------------------------------------------------------------------- embeddings


@pytest.mark.parametrize("encoding", ["float", "base64"])
def test_embeddings_sync_and_async(sim: SimulatedProvider, spans: CapturedSpans, encoding: str) -> None:
    kwargs: dict[str, Any] = {
        "model": EMBEDDING_MODEL,
        "input": ["a", "bb"],
        "encoding_format": encoding,
        "dimensions": 12,
    }
    sync_result = _client(sim).embeddings.create(**kwargs)

    async def call() -> Any:
        return await _async_client(sim).embeddings.create(**kwargs)

    async_result = asyncio.run(call())
    for span, result in zip(_ours(spans), (sync_result, async_result), strict=True):
        attrs = _attrs(span)
        assert span.name == f"embeddings {EMBEDDING_MODEL}" and span.kind == SpanKind.CLIENT
        assert attrs["gen_ai.operation.name"] == "embeddings" and attrs["gen_ai.provider.name"] == "openai"
        assert list(attrs["gen_ai.request.encoding_formats"]) == [encoding]
        assert attrs["gen_ai.embeddings.dimension.count"] == 12
        assert attrs["gen_ai.usage.input_tokens"] == result.usage.prompt_tokens
        assert "gen_ai.usage.output_tokens" not in attrs


def test_embeddings_dimension_from_response(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    for encoding in ("float", "base64"):
        _client(sim).embeddings.create(model=EMBEDDING_MODEL, input="x", encoding_format=encoding)  # type: ignore[arg-type]
    assert [_attrs(s)["gen_ai.embeddings.dimension.count"] for s in _ours(spans)] == [8, 8]  # simulator default


# ------------------------------------------------------------------------ lifecycle, never-harm


def test_uninstrument_restores_and_instrument_is_idempotent(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    client = _client(sim)
    classes = (openai.resources.chat.completions.Completions, openai.resources.embeddings.AsyncEmbeddings)
    llmscope_sdk.instrument()  # second call: must not double-wrap
    assert all(isinstance(cls.__dict__["create"], wrapt.FunctionWrapper) for cls in classes)
    assert not isinstance(classes[0].__dict__["create"].__wrapped__, wrapt.FunctionWrapper)
    client.chat.completions.create(model=MODEL, messages=USER)  # type: ignore[arg-type]
    assert len(_ours(spans)) == 1
    llmscope_sdk.uninstrument()
    assert not any(isinstance(cls.__dict__["create"], wrapt.FunctionWrapper) for cls in classes)
    client.chat.completions.create(model=MODEL, messages=USER)  # type: ignore[arg-type]
    client.embeddings.create(model=EMBEDDING_MODEL, input="x")
    assert len(_ours(spans)) == 1


def test_telemetry_failure_never_reaches_the_user(
    sim: SimulatedProvider, spans: CapturedSpans, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmscope_sdk._providers.openai import _extract

    def broken(*_: object) -> dict[str, Any]:
        raise RuntimeError("bug in llmscope")

    monkeypatch.setenv("LLMSCOPE_RAISE_INTERNAL_ERRORS", "0")
    monkeypatch.setattr(_extract, "chat_request_attributes", broken)
    completion = _client(sim).chat.completions.create(model=MODEL, messages=USER)  # type: ignore[arg-type]
    assert completion.choices[0].message.content  # the user's result is intact
    assert _ours(spans) == []  # that call ran untraced


words = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=30)
chat_requests = st.fixed_dictionaries(
    {"messages": st.lists(words, min_size=0, max_size=3).map(lambda ts: [{"role": "user", "content": t} for t in ts])},
    optional={
        "max_tokens": st.integers(-1, 60),
        "stop": st.one_of(
            st.sampled_from(["the", "a"]), st.lists(st.sampled_from(["alpha", "beta", "the"]), max_size=2)
        ),
        "n": st.integers(0, 3),
        "tools": st.just(TOOLS),
        "tool_choice": st.sampled_from(["auto", "none", "required"]),
        "stream": st.booleans(),
        "stream_options": st.just({"include_usage": True}),
        "extra_headers": st.sampled_from([{"x-sim-error": "400"}, {"x-sim-error": "500"}, {"x-sim-error": "429"}]),
    },
)


def _outcome(client: openai.OpenAI, request: dict[str, Any]) -> tuple[str, Any]:
    try:
        result = client.chat.completions.create(model=MODEL, **request)
        if request.get("stream"):
            return "ok", [chunk.model_dump() for chunk in result]
        return "ok", result.model_dump()
    except openai.APIStatusError as exc:
        return type(exc).__name__, (exc.status_code, exc.message, exc.body)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=chat_requests)
def test_identical_results_and_errors_with_and_without(
    sim: SimulatedProvider, spans: CapturedSpans, request: dict[str, Any]
) -> None:
    client = _client(sim)
    llmscope_sdk.uninstrument()
    _outcome(client, request)  # warm the simulator's prefix cache so both compared calls see a hit
    llmscope_sdk.instrument(capture_content=True)
    with_instrumentation = _outcome(client, request)
    llmscope_sdk.uninstrument()
    without = _outcome(client, request)
    llmscope_sdk.instrument()
    assert with_instrumentation == without


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
part_types = st.sampled_from(["text", "image_url", "input_audio", "file", "refusal", "input_text", "input_image"])
item_types = st.sampled_from(["message", "function_call", "function_call_output", "reasoning", "web_search_call"])
parts = st.fixed_dictionaries({"type": part_types}, optional={"text": json_values, "image_url": json_values})
items = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "developer", "tool", "function"])},
    optional={
        "type": item_types,
        "content": st.one_of(st.text(max_size=10), st.lists(parts, max_size=3), st.none()),
        "tool_calls": st.lists(
            st.fixed_dictionaries(
                {
                    "id": st.text(max_size=5),
                    "function": st.fixed_dictionaries({"name": st.text(max_size=5), "arguments": st.text(max_size=12)}),
                }
            ),
            max_size=2,
        ),
        "arguments": st.text(max_size=12),
        "summary": st.lists(st.fixed_dictionaries({"text": st.text(max_size=8)}), max_size=2),
    },
)


@given(messages=st.lists(items, max_size=4))
def test_content_conversion_is_total_and_json(messages: list[dict[str, Any]]) -> None:
    """Odd or partly-typed message shapes never break content capture, and always give JSON."""
    from llmscope_sdk._providers.openai import _messages, _responses

    chat = _messages.input_messages(messages)
    responses = _responses.input_messages(messages)
    assert len(chat) == len(responses) == len(messages)
    assert all(isinstance(m["parts"], list) for m in chat + responses)
    json.dumps([chat, responses], default=str)


def test_less_common_parts() -> None:
    from llmscope_sdk._providers.openai import _messages, _responses

    chat = _messages.input_messages(
        [
            {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}}]},
            {"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]},
            {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": '{"a": 1}'}},
            {"role": "function", "name": "f", "content": "done"},
        ]
    )
    assert [m["parts"][0] for m in chat] == [
        {"type": "blob", "modality": "audio", "mime_type": "audio/wav", "content": "UklG"},
        {"type": "file", "modality": "document", "file_id": "file-1"},
        {"type": "tool_call", "id": None, "name": "f", "arguments": {"a": 1}},
        {"type": "tool_call_response", "id": None, "response": "done"},
    ]
    assert chat[3]["role"] == "tool" and chat[3]["name"] == "f"
    reasoning = {"type": "reasoning", "summary": [{"type": "summary_text", "text": "thinking"}]}
    hosted = {"type": "web_search_call", "id": "ws_1", "status": "completed"}
    assert _responses.output_messages([reasoning, hosted], "stop")[0]["parts"] == [
        {"type": "reasoning", "content": "thinking"},
        {
            "type": "server_tool_call",
            "id": "ws_1",
            "name": "web_search_call",
            "server_tool_call": {"type": "web_search_call"},
        },
    ]
