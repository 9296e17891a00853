"""Captured content: every dialect → OTel message JSON, split out of attributes, rebuilt losslessly."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from llmscope_collector.processors import canonical_native, messages
from llmscope_collector.processors.messages import display_value, rehydrate_attributes, split_content, split_hashed
from llmscope_collector.storage.content_items import JSON_MESSAGE_KEYS, JSON_WHOLE_KEYS, VALUE_KEYS


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


# The content-address contract, stated plainly: a JSON-text attribute is decoded whole by msgspec; a
# message list gives one item per element, anything else one item of the value as it came; a body is
# the value's JSON with sorted keys (json.dumps for what msgspec cannot encode), its hash the 128-bit
# BLAKE2b of the body's UTF-8. Stored content is addressed by these: they must never change.
def _address(value: Any) -> tuple[str, str]:
    try:
        body = msgspec.json.encode(value, order="sorted").decode()
    except (TypeError, msgspec.EncodeError, UnicodeDecodeError):
        body = json.dumps(value, sort_keys=True, default=str)
    return hashlib.blake2b(body.encode(), digest_size=16).hexdigest(), body


def _decoded(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return msgspec.json.decode(value)
        except msgspec.DecodeError:
            return value
    return value


def _reference_split(attrs: dict[str, Any]) -> tuple[dict[str, Any], list[Any], list[tuple[str, str]]]:
    refs, pairs = [], []

    def add(kind: str, source: str, value: Any) -> None:
        pair = _address(value)
        refs.append((kind, source, pair[0], len(pair[1])))
        pairs.append(pair)

    for key, kind in JSON_WHOLE_KEYS.items():
        if key in attrs:
            add(kind, key, _decoded(attrs[key]))
    for key, kind in JSON_MESSAGE_KEYS.items():
        if key in attrs:
            value = _decoded(attrs[key])
            for message in value if isinstance(value, list) else ():
                add(kind, key, message)
            if not isinstance(value, list):
                add(f"{kind}_value", key, attrs[key])
    for key, kind in VALUE_KEYS.items():
        if key in attrs:
            add(kind, key, attrs[key])
    content = {*JSON_WHOLE_KEYS, *JSON_MESSAGE_KEYS, *VALUE_KEYS}
    return {k: v for k, v in attrs.items() if k not in content}, refs, pairs


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["é", "日本", "\u2028", "\x00", 'a\\b"c']),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=4),
    max_leaves=12,
)
_MESSAGES = st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "tool"]), "parts": _JSON}) | _JSON


@st.composite
def _element_text(draw: st.DrawFn, pool: list[str]) -> str:
    """One array element as text: one sent before (so the memo sees it again), or a message written
    any way JSON allows (separators, key order, escapes, NaN, whitespace), or text a decoder rejects."""
    again: bool = draw(st.booleans())
    if pool and again:
        return draw(st.sampled_from(pool))
    odd = ["1e999", "1E400", "-1e500", "01", "-", '"\\q"', '{"a": 1,}', "tru", '"\\ud800"', "nul"]
    if draw(st.integers(0, 5)) == 0:
        text = draw(st.sampled_from(odd))
    else:
        seps = draw(st.sampled_from([(",", ":"), (", ", ": "), (" ,", " :")]))
        value = draw(_MESSAGES)
        text = json.dumps(value, separators=seps, sort_keys=draw(st.booleans()), ensure_ascii=draw(st.booleans()))
    text = draw(st.sampled_from(["", " ", "\n"])) + text + draw(st.sampled_from(["", " ", "\t"]))
    pool.append(text)
    return text


@st.composite
def _content_value(draw: st.DrawFn, pool: list[str]) -> Any:
    texts = draw(st.lists(_element_text(pool), max_size=5))
    text = draw(st.sampled_from(["[", " [", "{"])) + ",".join(texts) + draw(st.sampled_from(["]", "] ", "", "]x"]))
    return draw(st.sampled_from([text, text, text, texts[0] if texts else "", json.dumps(texts)]) | _JSON)


@st.composite
def _spans_sharing_content(draw: st.DrawFn) -> list[dict[str, Any]]:
    pool: list[str] = []
    keys = st.sampled_from([*JSON_MESSAGE_KEYS, *JSON_WHOLE_KEYS, "input.value", "gen_ai.request.model"])
    spans = [draw(st.dictionaries(keys, _content_value(pool), max_size=4)) for _ in range(draw(st.integers(1, 4)))]
    return spans + draw(st.lists(st.sampled_from(spans), max_size=3))  # whole spans resent too


def _memo_size() -> int:
    memos: list[dict[Any, tuple[str, str]]] = [messages._WHOLE_MEMO, messages._MESSAGE_MEMO]
    return sum(len(key) + len(pair[1]) for memo in memos for key, pair in memo.items())


@settings(max_examples=300, deadline=None)
@given(_spans_sharing_content(), st.sampled_from([None, 600, 0]), st.booleans())
def test_content_hashes_and_bodies_are_the_content_address_contract(
    spans: list[dict[str, Any]], budget: int | None, native: bool
) -> None:
    # The default memo keeps what earlier examples put in it (so they hit); a small one clears every
    # few entries, and 0 holds nothing: the results never depend on what the process saw before.
    # With the C extension's canonical JSON (where it is built) and without it (as where it is not).
    default = messages._MEMO_CHARS
    loaded = canonical_native.canonical, canonical_native.AVAILABLE
    if not native:
        canonical_native.canonical, canonical_native.AVAILABLE = canonical_native._none, False
    if budget is not None:
        messages._MEMO_CHARS = budget
        messages._WHOLE_MEMO.clear()
        messages._MESSAGE_MEMO.clear()
        messages._memo_held = 0
    try:
        for attrs in spans:
            assert split_hashed(dict(attrs)) == _reference_split(attrs)
            split = split_content(attrs)
            assert [(i.hash, i.body) for i in split.items] == _reference_split(attrs)[2]
        if budget is not None:
            assert messages._memo_held == _memo_size() <= budget
    finally:
        messages._MEMO_CHARS = default
        canonical_native.canonical, canonical_native.AVAILABLE = loaded


def test_without_the_extension_split_hashed_is_the_python_split(monkeypatch: Any) -> None:
    # Where the C extension is not built (AVAILABLE false), the span's split never reaches `split_span`.
    def unbuilt(*args: Any) -> Any:
        raise AssertionError("split_span called without the extension")

    monkeypatch.setattr(canonical_native, "AVAILABLE", False)
    monkeypatch.setattr(canonical_native, "canonical", canonical_native._none)
    monkeypatch.setattr(canonical_native, "split_span", unbuilt)
    chat = '[{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]'
    for attrs in ({"gen_ai.input.messages": chat, "gen_ai.system_instructions": "[1]"}, {"http.method": "GET"}):
        assert split_hashed(dict(attrs)) == _reference_split(attrs)
