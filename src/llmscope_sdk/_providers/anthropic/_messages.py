"""Anthropic content blocks → OTel GenAI message parts (JSON per the v1.41 message schemas).

Only used when content capture is on. Tool results are `tool_call_response` parts, a user turn
made only of tool results gets role `tool`, thinking becomes `reasoning`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from llmscope_sdk._providers._shape import field, given


def _tool_result_content(content: Any) -> Any:
    if isinstance(content, str) or content is None:
        return content
    blocks = list(content)
    if blocks and all(field(block, "type") == "text" for block in blocks):
        return "\n".join(str(field(block, "text", "")) for block in blocks)
    return [_part(block) for block in blocks]


def _part(block: Any) -> dict[str, Any]:
    kind = field(block, "type")
    if kind == "text":
        return {"type": "text", "content": field(block, "text", "")}
    if kind == "tool_use":
        return {
            "type": "tool_call",
            "id": field(block, "id"),
            "name": field(block, "name"),
            "arguments": field(block, "input"),
        }
    if kind == "server_tool_use":
        return {
            "type": "server_tool_call",
            "id": field(block, "id"),
            "name": field(block, "name"),
            "server_tool_call": field(block, "input"),
        }
    if kind == "tool_result":
        return {
            "type": "tool_call_response",
            "id": field(block, "tool_use_id"),
            "response": _tool_result_content(field(block, "content")),
        }
    if kind == "thinking":
        return {"type": "reasoning", "content": field(block, "thinking", "")}
    if kind in ("image", "document"):
        return _media_part(kind, field(block, "source"))
    return {"type": str(kind)}


def _media_part(kind: str, source: Any) -> dict[str, Any]:
    modality = "image" if kind == "image" else "document"
    source_type = field(source, "type")
    if source_type == "base64":
        return {
            "type": "blob",
            "modality": modality,
            "mime_type": field(source, "media_type"),
            "content": field(source, "data"),
        }
    if source_type == "url":
        return {"type": "uri", "modality": modality, "uri": field(source, "url")}
    if source_type == "file":
        return {"type": "file", "modality": modality, "file_id": field(source, "file_id")}
    return {"type": kind}


def parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    if not given(content):
        return []
    return [_part(block) for block in content]


def input_messages(messages: Iterable[Any]) -> list[dict[str, Any]]:
    out = []
    for message in messages:
        message_parts = parts(field(message, "content"))
        role = field(message, "role", "user")
        if message_parts and all(p["type"] == "tool_call_response" for p in message_parts):
            role = "tool"
        out.append({"role": role, "parts": message_parts})
    return out


def system_instructions(system: Any) -> list[dict[str, Any]] | None:
    return parts(system) if given(system) else None


def tool_definitions(tools: Any) -> list[dict[str, Any]] | None:
    if not given(tools):
        return None
    defs = []
    for tool in tools:
        definition = {"type": "function", "name": field(tool, "name")}
        if field(tool, "description"):
            definition["description"] = field(tool, "description")
        if field(tool, "input_schema") is not None:
            definition["parameters"] = field(tool, "input_schema")
        else:
            definition["type"] = str(field(tool, "type", "function"))
        defs.append(definition)
    return defs


def output_messages(content: Any, finish_reason: str | None) -> list[dict[str, Any]]:
    return [{"role": "assistant", "parts": parts(content), "finish_reason": finish_reason or "error"}]
