"""How captured content is stored, and how a span's attributes are rebuilt from it.

A contract of the stored data shared by both directions: `processors.messages` splits content out
of a span's attributes into items (kind, source attribute, canonical JSON body: hashed, stored once
in the `content` dataset), and the query layer puts the span's attributes back together from its
items for the span detail (`rehydrate_attributes`). The attribute keys each dialect carries content
in, the canonical JSON and the rebuilding live here so both sides read them from one place.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

ENCODE_SORTED = msgspec.json.Encoder(order="sorted")
"""The canonical JSON encoder (`canonical_json`'s first try; `processors.messages` inlines that try)."""

# JSON-valued attributes, each a whole value of one content kind.
JSON_MESSAGE_KEYS = {"gen_ai.input.messages": "input", "gen_ai.output.messages": "output"}
JSON_WHOLE_KEYS = {
    "gen_ai.system_instructions": "system",
    "gen_ai.tool.definitions": "tools",
}
# Opaque payloads (stored as they came, one item each).
VALUE_KEYS = {
    "input.value": "input_value",
    "output.value": "output_value",
    "llmscope.input": "input_value",
    "llmscope.output": "output_value",
    "traceloop.entity.input": "input_value",
    "traceloop.entity.output": "output_value",
    "gen_ai.tool.call.arguments": "tool_arguments",
    "gen_ai.tool.call.result": "tool_result",
    "gen_ai.prompt": "input_value",
    "gen_ai.completion": "output_value",
    # The Vercel AI SDK's (`ai.prompt` on the outer span, the provider-ready messages on each call).
    "ai.prompt": "input_value",
    "ai.prompt.messages": "input_value",
    "ai.prompt.tools": "tools",
    "ai.response.text": "output_value",
    "ai.response.toolCalls": "output_value",
    "ai.response.object": "output_value",
    "ai.toolCall.args": "tool_arguments",
    "ai.toolCall.result": "tool_result",
}
# Flattened, indexed dialects: prefix → content kind.
FLAT_PREFIXES = {
    "llm.input_messages": "input",
    "llm.output_messages": "output",
    "gen_ai.prompt": "input",
    "gen_ai.completion": "output",
    "llm.prompts": "input",
    "llm.choices": "output",
    "llm.tools": "tools",
    "llm.request.functions": "tools",
}
MESSAGE_KINDS = frozenset({"input", "output", "tools"})


def dumps(value: Any) -> str:
    return canonical_json(value)[1]


def canonical_json(value: Any) -> tuple[bytes, str]:
    """A value's canonical JSON (sorted keys) as UTF-8 bytes and as text; what msgspec cannot encode
    (or encodes to bytes that are not UTF-8) goes through `json.dumps` with `str` for unknown types."""
    try:
        raw = ENCODE_SORTED.encode(value)
        return raw, raw.decode()
    except (TypeError, msgspec.EncodeError, UnicodeDecodeError):
        body = json.dumps(value, sort_keys=True, default=str)
        return body.encode(), body


def rehydrate_attributes(attrs: Mapping[str, Any], items: Iterable[tuple[str, str, Any]]) -> dict[str, Any]:
    """The span's original attributes from the light ones plus its content `(kind, source, body)` items."""
    out = dict(attrs)
    grouped: dict[str, list[Any]] = {}
    for kind, source, body in items:
        if source in JSON_MESSAGE_KEYS and kind in MESSAGE_KINDS:
            grouped.setdefault(source, []).append(body)
        elif source in FLAT_PREFIXES and kind in MESSAGE_KINDS and isinstance(body, dict):
            index = body.get("_index", len(grouped.setdefault(source, [])))
            grouped.setdefault(source, []).append(None)
            for rest, value in (body.get("_raw") or {}).items():
                out[f"{source}.{index}.{rest}"] = value
        elif source in JSON_WHOLE_KEYS:
            out[source] = body if isinstance(body, str) else dumps(body)
        else:
            out[source] = body
    for source, bodies in grouped.items():
        if source in JSON_MESSAGE_KEYS:
            out[source] = dumps(bodies)
    return out


def display_value(body: Any) -> Any:
    """A stored body as shown to users: the normalized value without the `_raw` source keys."""
    if isinstance(body, dict) and "_raw" in body:
        if "value" in body and set(body) <= {"value", "_raw", "_index"}:
            return body["value"]
        return {k: v for k, v in body.items() if k not in ("_raw", "_index")}
    return body
