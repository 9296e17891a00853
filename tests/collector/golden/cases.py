"""The fixed inputs of the golden files, generated from seeds (the same on every run and machine).

Each generator yields `(case id, input)` pairs. They cover what the removed equivalence tests'
Hypothesis strategies covered: attribute maps mixing every dialect's keys (present, empty and
odd-typed values), span events, flattened and JSON message content, OTLP requests with invalid ids,
out-of-range times/kinds/codes, links, values over the span limits, costs too large to store and
non-UTF-8 strings, the benchmark's realistic traces, every genai-prices model, and stitcher flush
sequences with late parents, repeats, failed writes and window evictions.

`random.Random(seed)` gives the same draws on every platform and Python version; the key lists
below are frozen on purpose (appending a key would reshuffle every random case): keys the
normalizer learns later are covered by the per-key cases, which read the normalizer's own table.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
from genai_prices import data_snapshot
from genai_prices.types import ModelPrice, StartDateConstraint
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from llmscope_collector.processors import normalize
from llmscope_collector.processors.cost import UserPrice
from llmscope_collector.storage.schema import SPAN_SCHEMA

# Every key a normalize column read when the golden files were first recorded, plus members of the
# scanned families and keys nothing reads. Frozen: see the module docstring.
KEYS = (
    "agent.name", "embedding.model_name", "enduser.id", "error.type", "gen_ai.agent.name",
    "gen_ai.completion.0.content", "gen_ai.completion.0.finish_reason", "gen_ai.completion.1.finish_reason",
    "gen_ai.conversation.id", "gen_ai.input.messages", "gen_ai.is_streaming", "gen_ai.openai.api_base",
    "gen_ai.operation.name", "gen_ai.prompt.name", "gen_ai.prompt.version", "gen_ai.provider.name",
    "gen_ai.request.model", "gen_ai.request.stream", "gen_ai.request.temperature", "gen_ai.response.finish_reason",
    "gen_ai.response.finish_reasons", "gen_ai.response.id", "gen_ai.response.model", "gen_ai.response.stop_reason",
    "gen_ai.response.time_to_first_chunk", "gen_ai.system", "gen_ai.tool.call.id", "gen_ai.tool.name",
    "gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_creation_input_tokens",
    "gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens",
    "gen_ai.usage.cache_write.input_tokens", "gen_ai.usage.completion_tokens", "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens", "gen_ai.usage.prompt_tokens", "gen_ai.usage.reasoning.output_tokens",
    "gen_ai.usage.reasoning_tokens", "gen_ai.usage.total_tokens", "gen_ai.user", "llm.choices.0.completion.text",
    "llm.finish_reason", "llm.invocation_parameters", "llm.is_streaming", "llm.model_name", "llm.openai.api_base",
    "llm.prompt_template.version", "llm.prompts.0.prompt.text", "llm.provider", "llm.request.model_name",
    "llm.request.type", "llm.response.finish_reason", "llm.response.model_name", "llm.response.stop_reason",
    "llm.system", "llm.token_count.completion", "llm.token_count.completion_details.reasoning",
    "llm.token_count.prompt", "llm.token_count.prompt_details.cache_read",
    "llm.token_count.prompt_details.cache_write", "llm.token_count.total", "llm.usage.completion_tokens",
    "llm.usage.prompt_tokens", "llm.usage.reasoning_tokens", "llm.usage.total_tokens", "llm.user",
    "llmscope.metadata.session_id", "llmscope.metadata.team", "llmscope.span.kind", "llmscope.stream.ended_by",
    "llmscope.tags", "metadata", "openinference.span.kind", "output.value", "prompt.id", "server.address",
    "server.port", "session.id", "tag.tags", "tool.id", "tool.name", "tool_call.id",
    "traceloop.association.properties.session_id", "traceloop.association.properties.tenant",
    "traceloop.association.properties.user_id", "traceloop.entity.name", "traceloop.prompt.key",
    "traceloop.prompt.version", "traceloop.prompt.version_name", "traceloop.span.kind", "user.id",
)  # fmt: skip
CONTENT_KEYS = (
    "gen_ai.completion", "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.prompt",
    "gen_ai.system_instructions", "gen_ai.tool.call.arguments", "gen_ai.tool.call.result",
    "gen_ai.tool.definitions", "input.value", "llmscope.input", "llmscope.output", "output.value",
    "traceloop.entity.input", "traceloop.entity.output",
)  # fmt: skip
FLAT_PREFIXES = (
    "gen_ai.completion", "gen_ai.prompt", "llm.choices", "llm.input_messages", "llm.output_messages", "llm.prompts",
    "llm.request.functions", "llm.tools",
)  # fmt: skip
FLAT_INDEXES = ("0", "1", "2", "01", "10", "999999", "1000000", "x")
FLAT_RESTS = (
    "message.role", "message.content", "message.tool_call_id", "message.contents.0.message_content.type",
    "message.contents.0.message_content.text", "message.tool_calls.0.tool_call.function.name", "role", "content",
    "tool_calls.0.name", "finish_reason", "prompt.text", "completion.text", "tool.json_schema", "name",
    "parameters", "", "a\n",
)  # fmt: skip
WORDS = (
    "chat", "LLM", "llm", "EMBEDDING", "TOOL", "AGENT", "RETRIEVER", "agent", "tool", "workflow", "task",
    "completion", "embedding", "rerank", "openai", " Azure ", "azure", "google", "vertexai", "gemini", "az.ai.openai",
    "bedrock", "end_turn", "MAX_TOKENS", "tool_use", "stop", "true", "False", "12", " 7 ", "1e3",
    "https://api.example.com:8443/v1", "http://[::1", '{"model": "gpt-4o", "stream": true, "id": "r1", "k": 1}',
    '{"stream": "false"}', '["a", "b", 3, null, true]', '"x"', "[not json", "{", '{"id": "chatcmpl-9"}',
    '{"team": "core", "n": 3, "skip": null}',
)  # fmt: skip
MESSAGE_JSON = (
    '[{"role": "user", "parts": [{"type": "text", "content": "hi"}]}, {"role": "assistant", "parts": []}]',
    '[{"b": 1, "a": [2, {"d": null, "c": "x"}]}]',
    '{"not": "a list"}',
    "[1, 2",
    "plain text",
    "[]",
    '[{"a": 1e}]',
    "[1.5e999]",
    '[{"a":1,"a":2}]',
    '[ {"role":"user"} , 2 ]',
    '["\\ud83d\\ude00", "\\u00e9"]',
    '["\\ud800"]',
    "[1] x",
    " [1]",
    "[[[[[]]]]]",
    '[{"b": 1, "a": {"d": [1.0, 2.50, -0.0, 1E3, 12345678901234567890123]}}]',
    "[1,]",
    '{"role": "user"}',
)
FIRST_CHUNK_EVENTS = ("First Token Stream Event", "gen_ai.content.completion.chunk", "llm.content.completion.chunk")
_ALPHABET = 'abcXYZ09 _.-/:é€😀\n\t"\\{}[],'
_SPECIAL_INTS = (0, 1, -1, 12, 2**31, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64, 10**12)
_INT64_SPECIALS = tuple(i for i in _SPECIAL_INTS if -(2**63) <= i < 2**63)
_SPECIAL_FLOATS = (0.0, -0.0, 1.0, 2.5, 0.25, 1e20, -3.5, 1e-9)


def _text(rng: random.Random, max_size: int = 8, alphabet: str = _ALPHABET) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, max_size)))


def _scalar(rng: random.Random) -> Any:
    """A JSON-compatible attribute value as the decoder produces them (non-finite doubles become strings)."""
    pick = rng.randrange(11)
    if pick == 0:
        return rng.choice((None, "", [], {}))
    if pick <= 3:
        return rng.choice(WORDS)
    if pick == 4:
        return _text(rng)
    if pick == 5:
        return rng.random() < 0.5
    if pick == 6:
        return rng.choice(_SPECIAL_INTS)
    if pick == 7:
        return rng.randint(-(2**64), 2**64) if rng.random() < 0.3 else rng.randint(-5, 3_000_000)
    if pick == 8:
        return rng.choice(_SPECIAL_FLOATS) if rng.random() < 0.5 else round(rng.uniform(-10, 10), 3)
    if pick == 9:
        return rng.choice(MESSAGE_JSON)
    return rng.choice(("NaN", "Infinity", "-Infinity", "aGk="))


def value(rng: random.Random) -> Any:
    """A scalar, or a short list or map of scalars."""
    pick = rng.randrange(10)
    if pick < 7:
        return _scalar(rng)
    if pick < 9:
        return [_scalar(rng) for _ in range(rng.randint(0, 3))]
    return {rng.choice(("model", "stream", "id", "a")): _scalar(rng) for _ in range(rng.randint(0, 3))}


def _event(rng: random.Random, start_ns: int | None) -> dict[str, Any]:
    base = start_ns or 0
    return {
        "name": rng.choice((*FIRST_CHUNK_EVENTS, "exception", "exception", "other")),
        "time_ns": rng.choice((base + rng.randint(-3000, 3000), base + rng.randint(0, 10**9), None, True)),
        "attributes": rng.choice(
            (
                None,
                {"exception.type": rng.choice(("openai.RateLimitError", "", 7, "KeyError"))},
                {"x": _scalar(rng)},
                {},
            )
        ),
    }


# --- normalize ------------------------------------------------------------------------------------

# Values each key is tried with alone: what senders put there, right and wrong.
KEY_VALUES: tuple[Any, ...] = (
    "chat",
    "LLM",
    " Azure ",
    42,
    " 7 ",
    True,
    2.0,
    ["end_turn", "MAX_TOKENS", 3],
    '{"model": "m-json", "stream": true, "id": "r1"}',
    "https://api.example.com:8443/v1",
    "",
    2**63,
)


def normalize_cases() -> Iterator[tuple[str, dict[str, Any]]]:
    """`{attrs, events, start_ns, failed}`: each known key alone, then random mixes and explicit keys."""
    for key in sorted({*KEYS, *normalize._KNOWN_KEYS}):
        for i, sent in enumerate(KEY_VALUES):
            yield f"key:{key}:{i}", {"attrs": {key: sent}, "events": [], "start_ns": None, "failed": False}
    yield from _priority_cases()
    for i, (attrs, events, failed) in enumerate(_EVENT_CASES):
        yield f"event:{i}", {"attrs": attrs, "events": events, "start_ns": _START, "failed": failed}
    rng = random.Random(1401)
    for i in range(700):
        yield f"mix:{i}", _mixed_span(rng)
    rng = random.Random(1402)
    for i in range(150):
        yield f"explicit:{i}", _explicit_span(rng)


def _column_reads() -> dict[str, tuple[str, ...]]:
    """Each canonical column's source keys in the normalizer's priority order (its own table)."""
    reads = {column: keys for column, (keys, _) in normalize._TABLE_COLUMNS.items()}
    reads.update({column: keys for column, (_, keys) in normalize._DERIVED.items()})
    reads["total_tokens"] = normalize._TOTAL_TOKEN_KEYS
    return reads


_PAIR_VALUES: dict[str, tuple[Any, Any]] = {
    "is_stream": (True, False),
    "server_address": ("https://first.example/v1", "https://second.example/v1"),
    "finish_reasons": (["end_turn"], ["length"]),
    "metadata": ('{"k": "first"}', '{"k": "second"}'),
}


def _priority_cases() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every ordered pair of a column's source keys sent together with different values: which one wins."""
    for column, keys in sorted(_column_reads().items()):
        is_int = column.endswith("_tokens")
        first, second = _PAIR_VALUES.get(column, (11, 22) if is_int else (f"{column}-a", f"{column}-b"))
        for a in keys:
            for b in keys:
                if a != b:
                    attrs = {a: first, b: second}
                    yield f"pair:{column}:{a}:{b}", {"attrs": attrs, "events": [], "start_ns": None, "failed": False}


_START = 1_700_000_000 * 10**9


def _ev(name: str, offset_ns: Any, **attributes: Any) -> dict[str, Any]:
    time_ns = offset_ns if not isinstance(offset_ns, int) or isinstance(offset_ns, bool) else _START + offset_ns
    return {"name": name, "time_ns": time_ns, "attributes": attributes}


# Span events that fill columns: (attributes, events, failed).
_EVENT_CASES: tuple[tuple[dict[str, Any], list[dict[str, Any]], bool], ...] = (
    ({}, [_ev("First Token Stream Event", 0)], False),
    ({}, [_ev("First Token Stream Event", -1)], False),
    ({}, [_ev("First Token Stream Event", 1)], False),
    ({}, [_ev("gen_ai.content.completion.chunk", t) for t in (40_000_000, 10_000_000, 90_000_000)], False),
    ({}, [_ev("llm.content.completion.chunk", 5), _ev("First Token Stream Event", 3)], False),
    ({}, [_ev("First Token Stream Event", True), _ev("First Token Stream Event", None)], False),
    ({"gen_ai.response.time_to_first_chunk": 0.5}, [_ev("First Token Stream Event", 1000)], False),
    ({"gen_ai.response.time_to_first_chunk": -1}, [_ev("First Token Stream Event", 1000)], False),
    ({}, [_ev("exception", 1, **{"exception.type": "openai.InternalServerError"})], True),
    ({}, [_ev("exception", 1, **{"exception.type": "KeyError"})], False),
    ({"error.type": "500"}, [_ev("exception", 1, **{"exception.type": "InternalServerError"})], True),
    ({}, [_ev("exception", 1, **{"exception.type": "A"}), _ev("exception", 2, **{"exception.type": "B"})], True),
    ({}, [_ev("exception", 1, **{"exception.type": "A"}), _ev("exception", 2, **{"exception.type": ""})], True),
    ({}, [{"name": "exception", "time_ns": 1, "attributes": None}], True),
    ({}, [_ev("other", 5), _ev("exception", 9)], True),
)


def _mixed_span(rng: random.Random) -> dict[str, Any]:
    attrs = {}
    for _ in range(rng.randint(0, 14)):
        key = rng.choice(KEYS) if rng.random() < 0.85 else _text(rng)
        attrs[key] = rng.choice(WORDS) if rng.random() < 0.3 else value(rng)
    start_ns = rng.choice((None, rng.randint(0, 2000), 1_700_000_000 * 10**9))
    events = [_event(rng, start_ns) for _ in range(rng.choice((0, 0, 1, 2, 3)))]
    return {"attrs": attrs, "events": events, "start_ns": start_ns, "failed": rng.random() < 0.4}


_VERBATIM_KEYS = (
    "gen_ai.response.id", "gen_ai.operation.name", "gen_ai.request.model", "gen_ai.tool.name", "gen_ai.agent.name",
    "server.address", "gen_ai.provider.name",
)  # fmt: skip


def _explicit_span(rng: random.Random) -> dict[str, Any]:
    """Spans whose explicit keys are non-empty strings (the normalizer's fast paths), long ones included."""
    attrs: dict[str, Any] = {}
    for _ in range(rng.randint(0, 6)):
        attrs[rng.choice(KEYS)] = value(rng)
    for key in rng.sample(_VERBATIM_KEYS, rng.randint(1, 5)):
        attrs[key] = rng.choice(WORDS) if rng.random() < 0.8 else value(rng)
    if rng.random() < 0.6:
        reasons = [rng.choice(WORDS) if rng.random() < 0.8 else _scalar(rng) for _ in range(rng.randint(1, 3))]
        attrs["gen_ai.response.finish_reasons"] = reasons
    if rng.random() < 0.25:  # more keys than the normalizer remembers a plan per key tuple for
        attrs.update((f"gen_ai.prompt.{i}.content", "x") for i in range(70))
    return {"attrs": attrs, "events": [], "start_ns": None, "failed": False}


# --- messages -------------------------------------------------------------------------------------


def message_cases() -> Iterator[tuple[str, dict[str, Any]]]:
    """Attribute maps of flattened and JSON message content, in every dialect, with odd keys and values."""
    rng = random.Random(1403)
    for i in range(400):
        yield f"content:{i}", content_attrs(rng, rng.randint(0, 12))
    rng = random.Random(1406)
    for i in range(150):
        yield f"dialect:{i}", dialect_content(rng)


_BLOCKS = (
    {"type": "text", "text": "hello"},
    {"type": "tool_use", "id": "tu_1", "name": "get_weather", "input": {"city": "Paris"}},
    {"type": "tool_result", "tool_use_id": "tu_1", "content": "sunny"},
    {"type": "thinking", "thinking": "let me see"},
    {"type": "reasoning", "text": "because"},
    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    {"type": "image", "url": "https://example.com/cat.png"},
    {"type": "image_url", "image_url": "not-a-dict"},
    {"type": "document", "source": {"data": "x"}},
    "bare string block",
    7,
)
_ROLES = ("user", "assistant", "system", "tool", "agent", "function", "human", "ai", "model", "", None)
_URLS = ("data:image/jpeg;base64,/9j/4AAQ", "data:,plain", "https://example.com/a.png", 5)


def _content_value(rng: random.Random) -> Any:
    pick = rng.randrange(5)
    if pick == 0:
        return rng.choice(("What is the weather?", "", "Sure.", SNOWMAN))
    if pick == 1:
        return json.dumps(rng.sample(_BLOCKS, rng.randint(1, 3)))
    if pick == 2:
        return json.dumps(rng.choice(_BLOCKS))
    return rng.choice((None, 12, ["a", "b"], {"k": 1}, "[not json"))


def _openinference_fields(rng: random.Random) -> dict[str, Any]:
    fields: dict[str, Any] = {"message.role": rng.choice(_ROLES), "message.content": _content_value(rng)}
    for j in range(rng.choice((0, 0, 1, 2))):
        kind = rng.choice(("text", "image", "reasoning", None))
        fields[f"message.contents.{j}.message_content.type"] = kind
        fields[f"message.contents.{j}.message_content.text"] = rng.choice(("part text", None))
        if kind == "image":
            fields[f"message.contents.{j}.message_content.image.image.url"] = rng.choice(_URLS)
    for j in range(rng.choice((0, 0, 1, 2))):
        fields[f"message.tool_calls.{j}.tool_call.id"] = f"call_{j}"
        fields[f"message.tool_calls.{j}.tool_call.function.name"] = "get_order"
        fields[f"message.tool_calls.{j}.tool_call.function.arguments"] = rng.choice(('{"id": 4}', "{bad", None))
    optional = {
        "message.tool_call_id": "call_0",
        "message.function_call_name": "lookup",
        "message.function_call_arguments_json": '{"q": "x"}',
        "message.name": "bob",
        "message.finish_reason": "stop",
    }
    fields.update((k, v) for k, v in optional.items() if rng.random() < 0.2)
    return fields


def _traceloop_fields(rng: random.Random) -> dict[str, Any]:
    fields: dict[str, Any] = {"role": rng.choice(_ROLES), "content": _content_value(rng)}
    for j in range(rng.choice((0, 0, 1, 2))):
        fields[f"tool_calls.{j}.id"] = f"toolu_{j}"
        fields[f"tool_calls.{j}.name"] = "search_docs"
        fields[f"tool_calls.{j}.arguments"] = rng.choice(('{"q": "refund"}', "plain", None))
    optional = {"tool_call_id": "toolu_0", "finish_reason": "end_turn"}
    fields.update((k, v) for k, v in optional.items() if rng.random() < 0.3)
    return fields


def _tool_fields(rng: random.Random, prefix: str) -> dict[str, Any]:
    if prefix == "llm.tools":
        schema = {"type": "function", "function": {"name": "get_weather", "description": "d", "parameters": {}}}
        return {"tool.json_schema": rng.choice((json.dumps(schema), '{"name": "raw"}', "not json"))}
    return {"name": "get_weather", "description": rng.choice(("d", None)), "parameters": rng.choice(("{}", "{x"))}


def dialect_content(rng: random.Random) -> dict[str, Any]:
    """A span's content as one dialect's instrumentation writes it: flattened messages, tools, or JSON."""
    attrs: dict[str, Any] = {"gen_ai.operation.name": "chat"}
    for prefix in rng.sample(FLAT_PREFIXES, rng.randint(1, 3)):
        indexes = sorted(rng.sample(range(4), rng.randint(1, 3))) if rng.random() < 0.3 else range(rng.randint(1, 3))
        for index in indexes:
            if prefix in ("llm.input_messages", "llm.output_messages"):
                fields = _openinference_fields(rng)
            elif prefix in ("gen_ai.prompt", "gen_ai.completion"):
                fields = _traceloop_fields(rng)
            elif prefix in ("llm.prompts", "llm.choices"):
                fields = {"prompt.text" if prefix == "llm.prompts" else "completion.text": _content_value(rng)}
            else:
                fields = _tool_fields(rng, prefix)
            attrs.update((f"{prefix}.{index}.{rest}", v) for rest, v in fields.items())
    if rng.random() < 0.3:
        key = rng.choice(("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions"))
        attrs[key] = rng.choice(MESSAGE_JSON)
    return attrs


def _flat_key(rng: random.Random) -> str:
    return f"{rng.choice(FLAT_PREFIXES)}.{rng.choice(FLAT_INDEXES)}.{rng.choice(FLAT_RESTS)}"


def content_attrs(rng: random.Random, count: int) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for _ in range(count):
        pick = rng.randrange(6)
        key = (
            _flat_key(rng)
            if pick < 2
            else rng.choice(CONTENT_KEYS)
            if pick < 4
            else rng.choice(KEYS)
            if pick == 4
            else _text(rng)
        )
        attrs[key] = rng.choice(MESSAGE_JSON) if rng.random() < 0.4 else value(rng)
    return attrs


# --- decode (OTLP requests) -----------------------------------------------------------------------

DAY_NS = 86_400 * 10**9
TODAY_NS = 20_400 * DAY_NS  # 2025-11-06
SNOWMAN = "\u2603"  # its UTF-8 bytes are replaced by invalid ones in some requests (same length: framing stays valid)
_INVALID_UTF8 = b"\xff\xfe\xff"
_MODELS = ("gpt-4o", "claude-3-5-haiku-latest", "claude-sonnet-4-5", "no-such-model")


@dataclasses.dataclass(frozen=True)
class DecodeCase:
    """One request's bytes and the span limits it is decoded under (`SpanLimits` fields; the rest default)."""

    payload: bytes
    limits: tuple[tuple[str, int], ...]


# The server's span limits the requests are decoded under, in turn: the defaults, then small ones that the
# generated values, keys, names and event lists exceed. A new limit gets a small value here (and the file
# is recorded again), so that what it cuts shows in the golden file.
_LIMITS: tuple[dict[str, int], ...] = (
    {},
    {"max_attributes": 4, "max_value_bytes": 48},
    {"max_attributes": 0, "max_value_bytes": 0},
    {"max_attributes": 1024, "max_value_bytes": 16},
)


def _string(rng: random.Random) -> str:
    pick = rng.randrange(8)
    if pick == 0:
        return _text(rng, 12)
    if pick == 1:
        return rng.choice(WORDS)
    if pick == 2:
        return rng.choice(MESSAGE_JSON)
    if pick == 3:
        docs = [_json_doc(rng, 3) for _ in range(rng.randint(0, 4))]
        return json.dumps(docs, indent=rng.choice((None, 0, 2)), ensure_ascii=rng.random() < 0.5)
    if pick == 4:
        return rng.choice(("gpt-4o", "claude-3-5-haiku-latest", "openai", "anthropic", "chat", "", "1000000000000"))
    if pick == 5:
        return rng.choice(("99999999999999999999999", "-5", "1e30", f"{SNOWMAN}bad{SNOWMAN}"))
    if pick == 6:
        return _text(rng, 120, 'aé€😀{}[]",:')
    return SNOWMAN * rng.randint(1, 30)


def _json_doc(rng: random.Random, depth: int) -> Any:
    pick = rng.randrange(8 if depth else 6)
    if pick < 6:
        return (
            None,
            rng.random() < 0.5,
            rng.randint(-(2**70), 2**70),
            round(rng.uniform(-1e6, 1e6), 4),
            _text(rng, 6),
            rng.choice(("user", "assistant", "text", "hi")),
        )[pick]
    if pick == 6:
        return [_json_doc(rng, depth - 1) for _ in range(rng.randint(0, 3))]
    keys = ("role", "parts", "b", "a", "")
    return {rng.choice(keys): _json_doc(rng, depth - 1) for _ in range(rng.randint(0, 3))}


def _any_value(rng: random.Random, depth: int = 2) -> AnyValue:
    pick = rng.randrange(11 if depth else 9)
    if pick < 3:
        return AnyValue(string_value=_string(rng))
    if pick == 3:
        return AnyValue(int_value=rng.choice((*_INT64_SPECIALS, rng.randint(-(2**63), 2**63 - 1))))
    if pick == 4:
        return AnyValue(bool_value=rng.random() < 0.5)
    if pick == 5:
        special = (float("nan"), float("inf"), float("-inf"), -0.0, 1e300)
        return AnyValue(double_value=rng.choice(special) if rng.random() < 0.4 else rng.uniform(-1e9, 1e9))
    if pick == 6:
        return AnyValue(bytes_value=rng.randbytes(rng.randint(0, 6)))
    if pick <= 8:
        return AnyValue() if pick == 7 else AnyValue(string_value=rng.choice(MESSAGE_JSON))
    if pick == 9:
        values = [_any_value(rng, depth - 1) for _ in range(rng.randint(0, 3))]
        return AnyValue(array_value=ArrayValue(values=values))
    kvs = [KeyValue(key=_text(rng, 6), value=_any_value(rng, depth - 1)) for _ in range(rng.randint(0, 3))]
    return AnyValue(kvlist_value=KeyValueList(values=kvs))


def _kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def _llm_call(rng: random.Random) -> list[KeyValue]:
    """A model call's attributes (tokens up to 10^13: some costs overflow the stored decimal)."""
    tokens: Any = rng.choice((rng.randint(0, 5000), 10**12, "10", str(10**12), -3))
    if rng.random() < 0.15:  # a call that reported no usage (billed nothing if it failed)
        return [
            _kv("gen_ai.operation.name", "chat"),
            _kv("gen_ai.request.model", rng.choice(_MODELS)),
        ]
    return [
        _kv("gen_ai.operation.name", rng.choice(("chat", "chat", "text_completion", "embeddings", "invoke_agent"))),
        _kv("gen_ai.provider.name", rng.choice(("openai", "anthropic", "nope"))),
        _kv("gen_ai.request.model", rng.choice(_MODELS)),
        _kv("gen_ai.usage.input_tokens", tokens),
        _kv("gen_ai.usage.output_tokens", rng.randint(0, 10**13) if rng.random() < 0.1 else rng.randint(0, 5000)),
        *([_kv("gen_ai.usage.cache_read.input_tokens", rng.randint(0, 3000))] if rng.random() < 0.3 else []),
    ]


def _attributes(rng: random.Random, count: int) -> list[KeyValue]:
    kvs = []
    for _ in range(count):
        pick = rng.randrange(10)
        if pick < 4:
            key = rng.choice(KEYS)
        elif pick < 6:
            key = _flat_key(rng)
        elif pick < 8:
            key = rng.choice(CONTENT_KEYS)
        elif pick == 8:
            key = _text(rng, 10)
        else:  # a long key (over the value limits; attribute keys may get their own limit)
            key = "k." + "x" * rng.randint(40, 300)
        if pick in (6, 7) and rng.random() < 0.6:
            kvs.append(KeyValue(key=key, value=AnyValue(string_value=rng.choice(MESSAGE_JSON))))
        else:
            kvs.append(KeyValue(key=key, value=_any_value(rng)))
    return kvs


def _time(rng: random.Random) -> int:
    if rng.random() < 0.85:
        return rng.randint(TODAY_NS - DAY_NS, TODAY_NS + DAY_NS)
    return rng.choice((0, TODAY_NS - 1, TODAY_NS, TODAY_NS - 10**6, TODAY_NS - 10**6 + 1, 2**63 - 1, 2**63, 2**64 - 1))


def _id(rng: random.Random, size: int) -> bytes:
    if rng.random() < 0.9:
        return rng.randint(1, 2 ** (8 * size) - 1).to_bytes(size, "big")
    return rng.choice((b"", bytes(size), bytes(size // 2), b"\x01" * (size * 2), rng.randbytes(rng.randint(0, 17))))


def _span(rng: random.Random, trace_id: bytes, parent: bytes) -> Span:
    start = _time(rng)
    end = rng.choice((start, min(start + rng.randint(0, 10**10), 2**64 - 1), _time(rng)))
    events = [
        Span.Event(
            time_unix_nano=rng.choice((min(start + rng.randint(0, 10**9), 2**64 - 1), _time(rng))),
            name=rng.choice((*FIRST_CHUNK_EVENTS[:2], "exception", "x")),
            attributes=[
                _kv(rng.choice(("exception.type", "exception.message", "x")), rng.choice((*WORDS, _text(rng))))
                for _ in range(rng.randint(0, 2))
            ],
        )
        for _ in range(rng.choice((0,) * 12 + (1, 1, 1, 1, 2, 2, 3, 30)))  # 30: many (counts may get a limit)
    ]
    links = [
        Span.Link(trace_id=_id(rng, 16), span_id=_id(rng, 8), trace_state=_text(rng), attributes=_attributes(rng, 2))
        for _ in range(rng.choice((0, 0, 0, 1, 2)))
    ]
    attributes = (_llm_call(rng) if rng.random() < 0.5 else []) + _attributes(rng, rng.randint(0, 14))
    return Span(
        trace_id=trace_id if rng.random() < 0.9 else _id(rng, 16),
        span_id=_id(rng, 8),
        parent_span_id=parent if rng.random() < 0.8 else rng.choice((b"", bytes(8), rng.randbytes(8))),
        trace_state=rng.choice(("", "", _text(rng))),
        name=rng.choice((_text(rng, 12), _string(rng), "chat gpt-4o", "n" * rng.randint(150, 600))),
        kind=rng.choice((0, 1, 2, 3, 4, 5, 6, 8)),  # type: ignore[arg-type]
        start_time_unix_nano=start,
        end_time_unix_nano=end,
        attributes=attributes,
        events=events,
        links=links,
        status=Status(code=rng.choice((0, 1, 2, 2, 3)), message=rng.choice(("", _text(rng)))),  # type: ignore[arg-type]
    )


def _request(rng: random.Random) -> ExportTraceServiceRequest:
    resource_spans = []
    for _ in range(rng.randint(1, 3)):
        resource = Resource(
            attributes=[
                *([_kv("service.name", rng.choice(("svc", "checkout", "", SNOWMAN)))] if rng.random() < 0.8 else []),
                *_attributes(rng, rng.choice((0, 0, 1, 2))),
            ]
        )
        scopes = []
        for _ in range(rng.randint(1, 2)):
            trace_id = _id(rng, 16)
            spans: list[Span] = []
            for _ in range(rng.randint(0, 4)):
                parent = spans[-1].span_id if spans and rng.random() < 0.6 else b""
                spans.append(_span(rng, trace_id, parent))
            scope = InstrumentationScope(name=rng.choice(("", "llmscope", _text(rng))), version=rng.choice(("", "1.0")))
            scopes.append(ScopeSpans(scope=scope, spans=spans))
        resource_spans.append(ResourceSpans(resource=resource, scope_spans=scopes))
    return ExportTraceServiceRequest(resource_spans=resource_spans)


def decode_cases() -> Iterator[tuple[str, DecodeCase]]:
    """Random requests under each set of span limits (1 in 10 with invalid UTF-8), then the benchmark's traces."""
    rng = random.Random(1404)
    for i in range(160):
        payload = _request(rng).SerializeToString()
        if rng.random() < 0.1:
            payload = payload.replace(SNOWMAN.encode(), _INVALID_UTF8)
        limits = _LIMITS[i % len(_LIMITS)]
        yield f"request:{i}", DecodeCase(payload, tuple(sorted(limits.items())))
    for i, payload in enumerate(_bench_requests()):
        yield f"bench:{i}", DecodeCase(payload, ())


def _bench_requests() -> list[bytes]:
    """Requests of the ingest benchmark's realistic traces (agent, LLM calls with history, tools)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
    try:
        import otlp_traces
    finally:
        sys.path.pop(0)
    requests = otlp_traces.requests(7, 6, 3, TODAY_NS, 60.0)
    return [request.SerializeToString() for request, _ in requests]


# --- pricing --------------------------------------------------------------------------------------

USAGES = (  # input (cache included), output, cache read, cache write
    (1_000, 500, 0, 0),
    (250_000, 2_000, 100_000, 20_000),  # over the usual 128k/200k tier starts
    (100, 50, 300, 10),  # cache beyond input: the exclusive convention (added back)
    (0, 0, 0, 0),
    (200_000, 1, 0, 0),  # exactly at a tier start
    (200_001, 1, 0, 0),
)
PRICE_DAY = dt.date(2025, 6, 1)


@dataclasses.dataclass(frozen=True)
class PriceCase:
    """One genai-prices model priced for each of `USAGES` on each of `days` (UTC days, ns offsets)."""

    provider: str
    model: str
    times_ns: tuple[int, ...]


def price_cases() -> Iterator[tuple[str, PriceCase]]:
    """Every model of the genai-prices snapshot, around each day its price changes too."""
    snapshot = data_snapshot.get_snapshot()
    base = (PRICE_DAY - dt.date(1970, 1, 1)).days * DAY_NS + 12 * 3600 * 10**9
    for provider in snapshot.providers:
        for model in provider.models:
            times = [base]
            if not isinstance(model.prices, ModelPrice):
                for conditional in model.prices:
                    if isinstance(conditional.constraint, StartDateConstraint):
                        day = (conditional.constraint.start_date - dt.date(1970, 1, 1)).days * DAY_NS
                        times += [day - 1, day]
            yield f"{provider.id}/{model.id}", PriceCase(provider.id, model.id, tuple(times))
    yield from call_cases()


Counts = tuple[int | None, int | None, int | None, int | None]


@dataclasses.dataclass(frozen=True)
class CallCase:
    """One `PriceBook.cost` call: provider mappings, model fallbacks, odd counts and times, user prices.

    `db` says whether the answer comes from genai-prices (compared only under the recorded release)."""

    provider: str | None
    models: tuple[str | None, ...]
    start_ns: int
    counts: Counts | None
    error: bool = False
    user_prices: tuple[UserPrice, ...] = ()
    db: bool = True


_NOON = (PRICE_DAY - dt.date(1970, 1, 1)).days * DAY_NS + 12 * 3600 * 10**9
_USER_PRICES = (
    UserPrice("gpt-4o*", Decimal("2.5"), Decimal(10), cache_read=Decimal("1.25")),
    UserPrice("claude-*", Decimal(3), Decimal(15), Decimal("0.3"), Decimal("3.75"), Decimal("0.002"), "Anthropic"),
    UserPrice("custom-model", Decimal("0.125"), Decimal("0.5")),
)
# OTel provider names and the models they serve (genai-prices names the providers differently).
_PROVIDER_MODELS = (
    ("openai", "gpt-4o"), ("azure.ai.openai", "gpt-4o"), ("azure.ai.inference", "gpt-4o-mini"),
    ("anthropic", "claude-3-5-haiku-latest"), ("aws.bedrock", "claude-3-5-sonnet"), ("gcp.gemini", "gemini-1.5-pro"),
    ("gcp.vertex_ai", "gemini-2.0-flash"), ("gcp.gen_ai", "gemini-1.5-flash"), ("x_ai", "grok-2"),
    ("mistral_ai", "mistral-large-latest"), ("moonshot_ai", "kimi-k2"), ("together_ai", "meta-llama/Llama-3-70b"),
    ("deepseek", "deepseek-chat"), ("nope", "gpt-4o"), (None, "gpt-4o"), (None, "claude-3-5-haiku-latest"),
    ("openai", "no-such-model"), (None, "no-such-model"),
)  # fmt: skip
# OTel `gen_ai.provider.name` values and the genai-prices provider that prices their models.
_OTEL_PROVIDERS = (
    ("azure.ai.openai", "azure"), ("azure.ai.inference", "azure"), ("gcp.gemini", "google"),
    ("gcp.vertex_ai", "google"), ("gcp.gen_ai", "google"), ("x_ai", "x-ai"), ("mistral_ai", "mistral"),
    ("moonshot_ai", "moonshotai"), ("together_ai", "together"), ("aws.bedrock", "aws"),
)  # fmt: skip
_ODD_COUNTS: tuple[Counts | None, ...] = (
    None, (None, None, None, None), (-5, 10, None, 3), (10, -1, -2, -3), (0, 0, 5, 0), (3_000_000, 3_000_000, 0, 0),
)  # fmt: skip
_ODD_TIMES = (0, -1, -(10**18), 2**63 - 1, 2**63 - 10**6, _NOON - _NOON % DAY_NS - 1)


def call_cases() -> Iterator[tuple[str, CallCase]]:
    """Provider name mappings, response/request model fallbacks, odd counts and times, errors, user prices."""
    usage = (1200, 300, 200, 100)
    for provider, model in _PROVIDER_MODELS:
        yield f"call:provider:{provider}:{model}", CallCase(provider, (model,), _NOON, usage)
    snapshot = {p.id: p for p in data_snapshot.get_snapshot().providers}
    for otel_name, db_id in _OTEL_PROVIDERS:
        for model in sorted(m.id for m in snapshot[db_id].models)[:4] if db_id in snapshot else ():
            yield f"call:otel:{otel_name}:{model}", CallCase(otel_name, (model,), _NOON, usage)
    fallbacks = (("no-such-model", "gpt-4o"), ("", "gpt-4o"), (None, None), ("gpt-4o", "no-such-model"))
    for i, models in enumerate(fallbacks):
        yield f"call:fallback:{i}", CallCase("openai", models, _NOON, usage)
    for i, counts in enumerate(_ODD_COUNTS):
        for error in (False, True):
            yield f"call:counts:{i}:{error}", CallCase("openai", ("gpt-4o",), _NOON, counts, error)
    for i, start_ns in enumerate(_ODD_TIMES):
        yield f"call:time:{i}", CallCase("anthropic", ("claude-3-5-sonnet-20240620",), start_ns, usage)
    for i, (provider, model) in enumerate(
        (("openai", "gpt-4o-mini"), ("anthropic", "claude-x"), ("Anthropic", "Claude-X"), ("openai", "claude-x"),
         (None, "custom-model"), ("x", "CUSTOM-MODEL"), ("anthropic", "other"))
    ):  # fmt: skip
        for j, counts in enumerate((usage, (100, 10, 300, 50), (1, 1, 0, 0))):
            db = not any(price.matches(provider, model) for price in _USER_PRICES)
            case = CallCase(provider, (model,), _NOON, counts, user_prices=_USER_PRICES, db=db)
            yield f"call:user:{i}:{j}", case


# --- stitch ---------------------------------------------------------------------------------------

STITCH_WINDOW_S = 10.0
_SPAN_IDS = ("s1", "s2", "s3", "s4", "s5", "", None)
_PARENTS = (*_SPAN_IDS, "agent")  # "agent": a parent that is never an LLM span
_DATES = ("2025-06-01", "2025-06-02")


@dataclasses.dataclass(frozen=True)
class StitchPart:
    """One partition of one flush: its rows, whether its span file gets written, clock seconds before it."""

    key: tuple[str, str]
    rows: tuple[dict[str, Any], ...]
    written: bool
    advance: float

    def table(self) -> pa.Table:
        rows, given = self.rows, self.rows[0]
        columns = {
            f.name: pa.array([r.get(f.name) for r in rows], f.type) if f.name in given else pa.nulls(len(rows), f.type)
            for f in SPAN_SCHEMA
        }
        return pa.table(columns, schema=SPAN_SCHEMA)


@dataclasses.dataclass(frozen=True)
class StitchCase:
    flushes: tuple[tuple[StitchPart, ...], ...]
    max_traces: int


def stitch_cases() -> Iterator[tuple[str, StitchCase]]:
    """Flush sequences: spans of chains (mostly each under the one before) arriving once or more, in any
    flush and date, parents before, with or after their children, some span files failing, the clock
    jumping past the window, and a window of 100, 2 or 1 traces."""
    rng = random.Random(1405)
    for i in range(90):
        yield f"flushes:{i}", StitchCase(_flushes(rng), (100, 2, 1)[i % 3])


def _identities(rng: random.Random) -> list[tuple[str, str, str | None, str | None]]:
    identities = []
    for project, trace_id in (("acme", "t1"), ("acme", "t2"), ("globex", "t1")):
        parent = rng.choice((None, "", "agent"))
        for span_id in rng.sample(_SPAN_IDS, rng.randint(0, 5)):
            identities.append((project, trace_id, span_id, parent))
            parent = span_id if rng.random() < 0.8 else rng.choice(_PARENTS)
    return identities


def _tokens(rng: random.Random) -> int | None:
    return rng.choice((None, rng.randint(-3, 3), rng.randint(0, 50_000), rng.randint(2**31, 2**40)))


def _stitch_row(rng: random.Random, identity: tuple[str, str, str | None, str | None]) -> dict[str, Any]:
    _, trace_id, span_id, parent = identity
    fields = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")
    cost = rng.choice((None, Decimal(rng.randint(-(10**15), 10**15)).scaleb(-12), Decimal("0.000123000000")))
    return {
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": parent if rng.random() < 0.75 else rng.choice(_PARENTS),
        "operation": rng.choice(("chat",) * 6 + ("embeddings", "tool", None)),
        "start_ns": rng.randint(0, 100),
        "end_ns": 200,
        "llm_dup": rng.choice((None, True, False)),
        **{f: _tokens(rng) for f in (*fields, "total_tokens")},
        "cost_known": rng.choice((True, True, False, None)),
        "cost_usd": cost,
    }


def _flushes(rng: random.Random) -> tuple[tuple[StitchPart, ...], ...]:
    count = rng.randint(1, 6)
    flushes: list[dict[tuple[str, str], list[dict[str, Any]]]] = [{} for _ in range(count)]
    for identity in _identities(rng):
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            key = (identity[0], rng.choice(_DATES))
            flushes[rng.randrange(count)].setdefault(key, []).append(_stitch_row(rng, identity))
    advances = (0.0,) * 8 + (1.0, STITCH_WINDOW_S - 1, STITCH_WINDOW_S, STITCH_WINDOW_S + 1)
    out = []
    for flush in flushes:
        parts = []
        for key, rows in flush.items():
            rng.shuffle(rows)
            parts.append(StitchPart(key, tuple(rows), rng.random() < 0.8, rng.choice(advances)))
        out.append(tuple(parts))
    return tuple(out)


GENERATORS: dict[str, Callable[[], Iterator[tuple[str, Any]]]] = {
    "normalize": normalize_cases,
    "messages": message_cases,
    "decode": decode_cases,
    "pricing": price_cases,
    "stitch": stitch_cases,
}
