"""Captured content: every dialect → OTel message JSON, split out of attributes, rebuilt losslessly."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from llmscope_collector.processors.messages import display_value, rehydrate_attributes, split_content


def _rebuilt(attrs: dict[str, Any]) -> dict[str, Any]:
    split = split_content(attrs)
    return rehydrate_attributes(split.attributes, [(i.kind, i.source, json.loads(i.body)) for i in split.items])


def _values(attrs: dict[str, Any], kind: str) -> list[Any]:
    return [display_value(json.loads(i.body)) for i in split_content(attrs).items if i.kind == kind]


def test_otel_json_messages_become_one_item_per_message() -> None:
    history = [
        {"role": "user", "parts": [{"type": "text", "content": "hi"}]},
        {"role": "assistant", "parts": [{"type": "text", "content": "hello"}]},
    ]
    attrs = {
        "gen_ai.input.messages": json.dumps(history),
        "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "be brief"}]),
        "gen_ai.request.model": "m",
    }
    split = split_content(attrs)
    assert split.attributes == {"gen_ai.request.model": "m"}
    assert [i.kind for i in split.items] == ["system", "input", "input"]
    assert _values(attrs, "input") == history


def test_same_message_in_two_calls_has_the_same_hash() -> None:
    first = [{"role": "user", "parts": [{"type": "text", "content": "q1"}]}]
    second = [*first, {"role": "assistant", "parts": [{"type": "text", "content": "a1"}]}]
    h1 = {i.hash for i in split_content({"gen_ai.input.messages": json.dumps(first)}).items}
    h2 = {i.hash for i in split_content({"gen_ai.input.messages": second}).items}  # structured AnyValue form
    assert h1 < h2 and len(h2) == 2


def test_openinference_flattened_messages_and_tool_calls() -> None:
    attrs = {
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": "sys",
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.contents.0.message_content.type": "image",
        "llm.input_messages.1.message.contents.0.message_content.image.image.url": "data:image/png;base64,AAA",
        "llm.input_messages.2.message.role": "tool",
        "llm.input_messages.2.message.tool_call_id": "c1",
        "llm.input_messages.2.message.content": "42",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.tool_calls.0.tool_call.id": "c2",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "add",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"a": 1}',
        "llm.tools.0.tool.json_schema": json.dumps({"type": "function", "function": {"name": "add", "parameters": {}}}),
    }
    assert _values(attrs, "input") == [
        {"role": "system", "parts": [{"type": "text", "content": "sys"}]},
        {"role": "user", "parts": [{"type": "blob", "modality": "image", "mime_type": "image/png", "content": "AAA"}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "42"}]},
    ]
    assert _values(attrs, "output") == [
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "c2", "name": "add", "arguments": {"a": 1}}]}
    ]
    assert _values(attrs, "tools") == [{"type": "function", "name": "add", "description": None, "parameters": {}}]
    assert split_content(attrs).attributes == {}


def test_traceloop_indexed_prompts_with_anthropic_blocks() -> None:
    blocks = [{"type": "text", "text": "look"}, {"type": "tool_use", "id": "t1", "name": "f", "input": {"x": 1}}]
    attrs = {
        "gen_ai.prompt.0.role": "user",
        "gen_ai.prompt.0.content": "question",
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": json.dumps(blocks),
        "gen_ai.completion.0.finish_reason": "tool_use",
        "gen_ai.prompt.name": "kept-as-attribute",
    }
    assert _values(attrs, "output") == [
        {
            "role": "assistant",
            "parts": [
                {"type": "text", "content": "look"},
                {"type": "tool_call", "id": "t1", "name": "f", "arguments": {"x": 1}},
            ],
            "finish_reason": "tool_use",
        }
    ]
    assert split_content(attrs).attributes == {"gen_ai.prompt.name": "kept-as-attribute"}


def test_generic_io_values_are_moved_whole() -> None:
    attrs = {"input.value": '{"q": 1}', "input.mime_type": "application/json", "output.value": "done"}
    split = split_content(attrs)
    assert split.attributes == {"input.mime_type": "application/json"}
    assert [(i.kind, i.source) for i in split.items] == [
        ("input_value", "input.value"),
        ("output_value", "output.value"),
    ]


def test_rebuilt_attributes_equal_the_original() -> None:
    attrs = {
        "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.content": "a",
        "llm.input_messages.3.message.role": "user",  # gap in the indexes survives too
        "llm.input_messages.3.message.content": "b",
        "input.value": "raw",
        "gen_ai.tool.call.arguments": {"k": [1, 2]},
        "other": 1,
    }
    assert _rebuilt(attrs) == attrs


_CONTENT_KEYS = st.sampled_from(
    [
        "input.value",
        "output.value",
        "gen_ai.prompt",
        "gen_ai.tool.call.result",
        "llm.input_messages.0.message.role",
        "llm.input_messages.0.message.content",
        "llm.input_messages.1.message.tool_calls.0.tool_call.id",
        "llm.output_messages.0.message.contents.0.message_content.text",
        "gen_ai.prompt.0.content",
        "gen_ai.prompt.2.role",
        "gen_ai.completion.0.tool_calls.1.arguments",
        "llm.tools.0.tool.json_schema",
        "llm.request.functions.1.parameters",
        "llm.prompts.0.prompt.text",
        "llm.choices.0.completion.text",
    ]
)
_FLAT_SOURCES = {
    "llm.input_messages",
    "llm.output_messages",
    "gen_ai.prompt",
    "gen_ai.completion",
    "llm.prompts",
    "llm.choices",
    "llm.tools",
    "llm.request.functions",
}
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.text(max_size=20), st.sampled_from(["[1,", "{}", "[]"])
)
_VALUES = st.recursive(_SCALARS, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=4), kids))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.one_of(_CONTENT_KEYS, st.text(max_size=12)), _VALUES, max_size=10))
def test_split_never_crashes_and_flattened_or_opaque_content_rebuilds_exactly(attrs: dict[str, Any]) -> None:
    split = split_content(attrs)
    # Every attribute moved into an item left the light attributes (a flattened dialect's source is
    # its key prefix, e.g. `llm.choices`, which an unrelated attribute may also be named).
    flat = {i.source for i in split.items if i.source in _FLAT_SOURCES and i.kind in ("input", "output", "tools")}
    moved = {i.source for i in split.items} - flat
    assert not set(split.attributes) & moved
    for item in split.items:
        json.loads(item.body)
    assert _rebuilt(attrs) == attrs
