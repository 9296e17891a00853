"""Anthropic request params → span attributes; Message responses and usage → attributes.

Anthropic reports `input_tokens` WITHOUT cached tokens, while OTel's `gen_ai.usage.input_tokens`
must include them: the total is input + cache_read + cache_creation (the classic double/under-count
bug in peer instrumentations comes from getting this wrong).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmscope_sdk import _attributes as A
from llmscope_sdk._content import ContentPolicy
from llmscope_sdk._providers._shape import given, server_attributes
from llmscope_sdk._providers.anthropic import _messages

PROVIDER_NAME = "anthropic"

# Anthropic stop reasons → OTel finish reasons.
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_call",
    "pause_turn": "pause",
    "refusal": "content_filter",
}


def request_attributes(kwargs: Mapping[str, Any], instance: Any) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        A.OPERATION: "chat",
        A.PROVIDER: PROVIDER_NAME,
        A.SYSTEM: PROVIDER_NAME,
    }
    model = kwargs.get("model")
    if isinstance(model, str):
        attrs[A.REQUEST_MODEL] = model
    for key, attr, kind in _REQUEST_PARAMS:
        if key in kwargs:  # most calls pass one or two of them: test presence before type
            value = kwargs[key]
            if isinstance(value, kind) and not isinstance(value, bool):
                attrs[attr] = value
    if "stop_sequences" in kwargs:
        stops = kwargs["stop_sequences"]
        if isinstance(stops, (list, tuple)) and all(isinstance(s, str) for s in stops):
            attrs[A.REQUEST_STOP_SEQUENCES] = list(stops)
    if kwargs.get("stream") is True:
        attrs[A.REQUEST_STREAM] = True
    attrs.update(server_attributes(instance))
    return attrs


_REQUEST_PARAMS: tuple[tuple[str, str, type | tuple[type, ...]], ...] = (
    ("max_tokens", A.REQUEST_MAX_TOKENS, int),
    ("temperature", A.REQUEST_TEMPERATURE, (int, float)),
    ("top_p", A.REQUEST_TOP_P, (int, float)),
    ("top_k", A.REQUEST_TOP_K, int),
)


def usage_attributes(usage: Any) -> dict[str, Any]:
    """OTel usage attributes from an Anthropic `Usage` (object or dict of the same shape)."""
    if usage is None:
        return {}
    if isinstance(usage, dict):
        raw_input, output = usage.get("input_tokens"), usage.get("output_tokens")
        cache_read, cache_creation = usage.get("cache_read_input_tokens"), usage.get("cache_creation_input_tokens")
    else:
        raw_input, output = getattr(usage, "input_tokens", None), getattr(usage, "output_tokens", None)
        cache_read = getattr(usage, "cache_read_input_tokens", None)
        cache_creation = getattr(usage, "cache_creation_input_tokens", None)
    cache_read = cache_read or 0
    cache_creation = cache_creation or 0
    attrs: dict[str, Any] = {A.USAGE_INPUT: int((raw_input or 0) + cache_read + cache_creation)}
    if output is not None:
        attrs[A.USAGE_OUTPUT] = int(output)
    attrs[A.USAGE_CACHE_READ] = int(cache_read)
    attrs[A.USAGE_CACHE_CREATION] = int(cache_creation)
    return attrs


def request_content(kwargs: Mapping[str, Any], policy: ContentPolicy, attrs: dict[str, Any]) -> None:
    """Opt-in content attributes of the request (no-op unless capture is on)."""
    if not policy.capture:
        return
    messages = kwargs.get("messages")
    if messages is not None and given(messages):
        policy.encode(A.INPUT_MESSAGES, _messages.input_messages(messages), attrs)
    policy.encode(A.SYSTEM_INSTRUCTIONS, _messages.system_instructions(kwargs.get("system")), attrs)
    policy.encode(A.TOOL_DEFINITIONS, _messages.tool_definitions(kwargs.get("tools")), attrs)


def finish_reason(stop_reason: Any) -> str | None:
    return FINISH_REASONS.get(stop_reason, stop_reason) if isinstance(stop_reason, str) else None


def response_attributes(message: Any, policy: ContentPolicy | None = None) -> dict[str, Any]:
    """Attributes from a non-streamed `Message` (detected by shape)."""
    attrs: dict[str, Any] = {}
    msg_id = getattr(message, "id", None)
    if isinstance(msg_id, str):
        attrs[A.RESPONSE_ID] = msg_id
    model = getattr(message, "model", None)
    if isinstance(model, str):
        attrs[A.RESPONSE_MODEL] = model
    stop_reason = getattr(message, "stop_reason", None)
    if isinstance(stop_reason, str):
        attrs[A.RESPONSE_FINISH_REASONS] = [FINISH_REASONS.get(stop_reason, stop_reason)]
    attrs.update(usage_attributes(getattr(message, "usage", None)))
    if policy is not None and policy.capture:
        output = _messages.output_messages(getattr(message, "content", None), finish_reason(stop_reason))
        policy.encode(A.OUTPUT_MESSAGES, output, attrs)
    return attrs
