"""The Responses API: request params, `Response` objects and their input/output items → attributes.

Responses has no choices: its finish reason comes from `status` (+ `incomplete_details.reason`),
its one output message is built from all output items, and `instructions` go to
`gen_ai.system_instructions` (they are not part of the input history).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from llmscope_sdk import _attributes as A
from llmscope_sdk._content import ContentPolicy
from llmscope_sdk._providers._shape import field, given
from llmscope_sdk._providers.openai import _extract, _messages
from llmscope_sdk._providers.openai._messages import Message, Part

_INCOMPLETE = {"max_output_tokens": "length", "content_filter": "content_filter"}
_TOOL_CALLS = ("function_call", "custom_tool_call")


def request(kwargs: Mapping[str, Any], instance: Any, policy: ContentPolicy) -> tuple[str, dict[str, Any]]:
    attrs = request_attributes(kwargs, instance)
    request_content(kwargs, policy, attrs)
    return _extract.span_name("chat", kwargs), attrs


def request_attributes(kwargs: Mapping[str, Any], instance: Any) -> dict[str, Any]:
    attrs = _extract.base_attributes("chat", kwargs, instance)
    attrs[A.OPENAI_API_TYPE] = "responses"
    _extract.common_request(kwargs, attrs)
    if _extract.integer(kwargs.get("max_output_tokens")):
        attrs[A.REQUEST_MAX_TOKENS] = kwargs["max_output_tokens"]
    text = kwargs.get("text")
    kind = _extract.output_type(kwargs.get("text_format")) or (
        _extract.output_type(field(text, "format")) if given(text) else None
    )
    if kind:
        attrs[A.OUTPUT_TYPE] = kind
    conversation = kwargs.get("conversation")
    conversation_id = conversation if isinstance(conversation, str) else field(conversation, "id")
    if isinstance(conversation_id, str) and conversation_id:
        attrs[A.CONVERSATION_ID] = conversation_id
    return attrs


def request_content(kwargs: Mapping[str, Any], policy: ContentPolicy, attrs: dict[str, Any]) -> None:
    if not policy.capture:
        return
    value = kwargs.get("input")
    if given(value):
        policy.encode(A.INPUT_MESSAGES, input_messages(value), attrs)
    instructions = kwargs.get("instructions")
    if isinstance(instructions, str) and instructions:
        policy.encode(A.SYSTEM_INSTRUCTIONS, [{"type": "text", "content": instructions}], attrs)
    policy.encode(A.TOOL_DEFINITIONS, tool_definitions(kwargs.get("tools")), attrs)


def _content_part(part: Any) -> Part:
    kind = field(part, "type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "content": field(part, "text", "")}
    if kind == "refusal":
        return {"type": "refusal", "content": field(part, "refusal", "")}
    if kind == "input_image":
        if field(part, "file_id"):
            return {"type": "file", "modality": "image", "file_id": field(part, "file_id")}
        return _messages.media_part(field(part, "image_url"), "image")
    if kind == "input_file":
        if field(part, "file_id"):
            return {"type": "file", "modality": "document", "file_id": field(part, "file_id")}
        return _messages.media_part(field(part, "file_url") or field(part, "file_data"), "document")
    return {"type": str(kind)}


def _content_parts(content: Any) -> list[Part]:
    if isinstance(content, str):
        return [{"type": "text", "content": content}] if content else []
    return [_content_part(part) for part in content] if given(content) else []


def _reasoning(item: Any) -> Part:
    texts = [field(s, "text") for s in [*(field(item, "summary") or ()), *(field(item, "content") or ())]]
    return {"type": "reasoning", "content": "\n".join(t for t in texts if isinstance(t, str))}


def _item_parts(item: Any) -> list[Part]:
    """Parts of one input or output item (messages, tool calls, reasoning, hosted tools)."""
    kind = field(item, "type")
    if kind in (None, "message"):
        return _content_parts(field(item, "content"))
    if kind == "function_call":
        args = _messages.arguments(field(item, "arguments"))
        return [{"type": "tool_call", "id": field(item, "call_id"), "name": field(item, "name"), "arguments": args}]
    if kind == "custom_tool_call":
        return [
            {
                "type": "tool_call",
                "id": field(item, "call_id"),
                "name": field(item, "name"),
                "arguments": field(item, "input"),
            }
        ]
    if kind in ("function_call_output", "custom_tool_call_output"):
        return [{"type": "tool_call_response", "id": field(item, "call_id"), "response": field(item, "output")}]
    if kind == "reasoning":
        return [_reasoning(item)]
    if isinstance(kind, str) and kind.endswith("_call"):
        return [{"type": "server_tool_call", "id": field(item, "id"), "name": kind, "server_tool_call": {"type": kind}}]
    return [{"type": str(kind)}]


def _role(item: Any) -> str:
    kind = field(item, "type")
    if kind in ("function_call_output", "custom_tool_call_output"):
        return "tool"
    role = field(item, "role")
    return role if isinstance(role, str) else "assistant"


def input_messages(value: Any) -> list[Message]:
    """`input` is a string (one user turn) or a list of items, one message each."""
    if isinstance(value, str):
        return [{"role": "user", "parts": [{"type": "text", "content": value}]}]
    return [{"role": _role(item), "parts": _item_parts(item)} for item in value]


def output_messages(items: Iterable[Any], reason: str | None) -> list[Message]:
    """All output items of one response form its single assistant message."""
    parts = [part for item in items for part in _item_parts(item)]
    return [{"role": "assistant", "parts": parts, "finish_reason": reason or "error"}]


def tool_definitions(tools: Any) -> list[dict[str, Any]] | None:
    """Responses tools are already flat; hosted tools (web_search, ...) keep their type as name."""
    if not given(tools):
        return None
    defs = []
    for tool in tools:
        kind = str(field(tool, "type", "function"))
        definition: dict[str, Any] = {"type": kind, "name": field(tool, "name") or kind}
        if field(tool, "description"):
            definition["description"] = field(tool, "description")
        if kind == "function" and field(tool, "parameters") is not None:
            definition["parameters"] = field(tool, "parameters")
        defs.append(definition)
    return defs or None


def finish_reason(response: Any) -> str | None:
    """From the terminal status; None while the response is still in progress."""
    status = field(response, "status")
    if status == "completed":
        calls = any(field(item, "type") in _TOOL_CALLS for item in field(response, "output") or [])
        return "tool_call" if calls else "stop"
    if status == "incomplete":
        reason = field(field(response, "incomplete_details"), "reason")
        return _INCOMPLETE.get(reason, reason) if isinstance(reason, str) else "length"
    if status in ("failed", "cancelled"):
        return "error"
    return None


def response_attributes(response: Any, policy: ContentPolicy, items: Iterable[Any] | None = None) -> dict[str, Any]:
    """Attributes from a `Response`; `items` overrides its output (a stream cut before completion)."""
    attrs = _extract.identity_attributes(response)
    reason = finish_reason(response)
    if reason:
        attrs[A.RESPONSE_FINISH_REASONS] = [reason]
    attrs.update(_extract.usage_attributes(field(response, "usage"), "input_tokens", "output_tokens"))
    output = list(items) if items is not None else field(response, "output") or []
    if policy.capture and output:
        policy.encode(A.OUTPUT_MESSAGES, output_messages(output, reason), attrs)
    return attrs
