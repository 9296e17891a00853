"""OpenAI chat messages and content parts → OTel GenAI message parts (JSON per the v1.41 schemas).

Only used when content capture is on. Messages may be dicts (what the user sends) or the client's
pydantic models (an assistant message passed back into the history), so everything is read by
shape. System/developer messages stay in the input messages: chat has no separate instructions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from llmscope_sdk._providers._shape import field, given

Part = dict[str, Any]
Message = dict[str, Any]


def arguments(raw: Any) -> Any:
    """Tool-call arguments arrive as a JSON string; the schema prefers the parsed object."""
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def media_part(url: Any, modality: str) -> Part:
    """A `data:` URL becomes an inline blob, anything else a uri part."""
    if isinstance(url, str) and url.startswith("data:") and "," in url:
        header, data = url[5:].split(",", 1)
        return {"type": "blob", "modality": modality, "mime_type": header.split(";", 1)[0] or None, "content": data}
    return {"type": "uri", "modality": modality, "uri": url}


def _file_part(file: Any) -> Part:
    if field(file, "file_id"):
        return {"type": "file", "modality": "document", "file_id": field(file, "file_id")}
    return media_part(field(file, "file_data"), "document")


def _content_part(part: Any) -> Part:
    kind = field(part, "type")
    if kind == "text":
        return {"type": "text", "content": field(part, "text", "")}
    if kind == "image_url":
        return media_part(field(field(part, "image_url"), "url"), "image")
    if kind == "input_audio":
        audio = field(part, "input_audio")
        mime = f"audio/{field(audio, 'format')}" if field(audio, "format") else None
        return {"type": "blob", "modality": "audio", "mime_type": mime, "content": field(audio, "data")}
    if kind == "file":
        return _file_part(field(part, "file"))
    if kind == "refusal":
        return {"type": "refusal", "content": field(part, "refusal", "")}
    return {"type": str(kind)}


def content_parts(content: Any) -> list[Part]:
    if isinstance(content, str):
        return [{"type": "text", "content": content}] if content else []
    if not given(content):
        return []
    return [_content_part(part) for part in content]


def tool_call_part(call: Any) -> Part:
    """A `function` tool call (or a `custom` one, whose input is free text)."""
    kind = field(call, "type", "function")
    if kind == "custom":
        custom = field(call, "custom")
        return {
            "type": "tool_call",
            "id": field(call, "id"),
            "name": field(custom, "name"),
            "arguments": field(custom, "input"),
        }
    function = field(call, "function")
    return {
        "type": "tool_call",
        "id": field(call, "id"),
        "name": field(function, "name"),
        "arguments": arguments(field(function, "arguments")),
    }


def _tool_response(content: Any) -> Any:
    """A tool result is a string or a list of text parts: recorded as one string."""
    if not given(content) or isinstance(content, str):
        return content if given(content) else None
    texts = [field(part, "text") for part in content if field(part, "type") == "text"]
    return "\n".join(t for t in texts if isinstance(t, str))


def message_parts(message: Any) -> list[Part]:
    """Parts of a user/system/assistant message: content, refusal, tool calls, legacy function call."""
    out = content_parts(field(message, "content"))
    refusal = field(message, "refusal")
    if isinstance(refusal, str) and refusal:
        out.append({"type": "refusal", "content": refusal})
    calls = field(message, "tool_calls")
    if given(calls):
        out.extend(tool_call_part(call) for call in calls)
    function_call = field(message, "function_call")
    if given(function_call):
        out.append(tool_call_part({"type": "function", "function": function_call}))
    return out


def input_messages(messages: Iterable[Any]) -> list[Message]:
    out = []
    for message in messages:
        role = field(message, "role", "user")
        if role in ("tool", "function"):
            response = _tool_response(field(message, "content"))
            parts = [{"type": "tool_call_response", "id": field(message, "tool_call_id"), "response": response}]
            entry: Message = {"role": "tool", "parts": parts}
        else:
            entry = {"role": role, "parts": message_parts(message)}
        name = field(message, "name")
        if isinstance(name, str):
            entry["name"] = name
        out.append(entry)
    return out


def output_message(message: Any, finish_reason: str | None) -> Message:
    return {"role": "assistant", "parts": message_parts(message), "finish_reason": finish_reason or "error"}


def _definition(kind: str, spec: Any) -> dict[str, Any]:
    definition: dict[str, Any] = {"type": kind, "name": field(spec, "name")}
    if field(spec, "description"):
        definition["description"] = field(spec, "description")
    if kind == "function" and field(spec, "parameters") is not None:
        definition["parameters"] = field(spec, "parameters")
    return definition


def tool_definitions(tools: Any, functions: Any = None) -> list[dict[str, Any]] | None:
    """Flatten `{type: function, function: {name, description, parameters}}` (and legacy `functions`)."""
    defs = []
    if given(tools):
        for tool in tools:
            kind = str(field(tool, "type", "function"))
            defs.append(_definition(kind, field(tool, kind)))
    if given(functions):
        defs.extend(_definition("function", function) for function in functions)
    return defs or None
