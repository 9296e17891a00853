"""Anthropic Messages API responses, as JSON and as the exact SSE event sequence.

Shapes follow the public API closely enough for the real `anthropic` client (including its
`messages.stream()` accumulator) to parse them, because instrumentation is tested against it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ._text import (
    Generator,
    PromptCache,
    SimulatorError,
    canonical_json,
    count_tokens,
    fill_schema,
    split_pieces,
    split_words,
    stop_at,
)

__all__ = ["count_tokens_response", "create_message", "error_body", "sse_frames"]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def error_body(status: int, message: str, request_id: str) -> dict[str, Any]:
    """Anthropic's error envelope; the client maps `error.type` and status to exception classes."""
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id}


def _validate(body: dict[str, Any], *, need_max_tokens: bool) -> list[dict[str, Any]]:
    if not isinstance(body.get("model"), str):
        raise SimulatorError(400, "model: Field required")
    if need_max_tokens and (not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1):
        raise SimulatorError(400, "max_tokens: Field required and must be a positive integer")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise SimulatorError(400, "messages: at least one message is required")
    return messages


def _without_cache_control(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k != "cache_control"}
    return value


def _segments(body: dict[str, Any], messages: list[dict[str, Any]]) -> list[tuple[Any, int, bool]]:
    """Prompt blocks in cache order (tools, system, messages): (identity, tokens, has cache_control)."""
    segs: list[tuple[Any, int, bool]] = []
    for tool in body.get("tools") or []:
        ident = _without_cache_control(tool)
        segs.append((["tool", ident], max(1, len(canonical_json(ident)) // 4), _has_cc(tool)))
    system = body.get("system")
    if isinstance(system, str):
        segs.append((["system", system], count_tokens(system), False))
    elif isinstance(system, list):
        for block in system:
            segs.append((["system", _without_cache_control(block)], count_tokens(block), _has_cc(block)))
    for msg in messages:
        role = msg.get("role")
        content = msg.get("content")
        if isinstance(content, list):
            for block in content:
                segs.append(([role, _without_cache_control(block)], count_tokens(block), _has_cc(block)))
        else:
            segs.append(([role, content], count_tokens(content), False))
    return segs


def _has_cc(block: Any) -> bool:
    return isinstance(block, dict) and block.get("cache_control") is not None


def _input_usage(body: dict[str, Any], messages: list[dict[str, Any]], cache: PromptCache) -> dict[str, int]:
    """Split input tokens like Anthropic does: `input_tokens` excludes cache writes and reads."""
    segs = _segments(body, messages)
    total = max(1, sum(tokens for _, tokens, _ in segs))
    last_cc = max((i for i, (_, _, cc) in enumerate(segs) if cc), default=-1)
    created = read = 0
    if last_cc >= 0:
        prefix = segs[: last_cc + 1]
        cached = min(total, sum(tokens for _, tokens, _ in prefix))
        key_material = canonical_json([body.get("model"), [ident for ident, _, _ in prefix]])
        key = "anthropic:" + hashlib.sha256(key_material.encode()).hexdigest()
        if cached > 0:
            if cache.check_and_add(key):
                read = cached
            else:
                created = cached
    return {
        "input_tokens": total - created - read,
        "cache_creation_input_tokens": created,
        "cache_read_input_tokens": read,
    }


def _pick_tool(body: dict[str, Any], messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Which client tool to call, if any: the spec'd rule plus forced `any`/`tool` choices."""
    tools = [
        t
        for t in body.get("tools") or []
        if isinstance(t, dict) and isinstance(t.get("name"), str) and isinstance(t.get("input_schema"), dict)
    ]
    if not tools:
        return None
    choice = body.get("tool_choice")
    kind = choice.get("type") if isinstance(choice, dict) else "auto"
    if kind == "none":
        return None
    if kind == "tool":
        assert isinstance(choice, dict)
        return next((t for t in tools if t["name"] == choice.get("name")), tools[0])
    if kind == "any":
        return tools[0]
    last = messages[-1]
    if last.get("role") != "user":
        return None
    content = last.get("content")
    if isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content):
        return None
    return tools[0]


def create_message(body: dict[str, Any], seed: int, cache: PromptCache) -> dict[str, Any]:
    """The complete Message for a request; streaming replays it as events."""
    messages = _validate(body, need_max_tokens=True)
    gen = Generator(seed, body, "anthropic.messages")
    max_tokens: int = body["max_tokens"]
    usage = _input_usage(body, messages, cache)
    content: list[dict[str, Any]] = []
    stop_reason = "end_turn"
    stop_sequence: str | None = None
    output_tokens = 0

    tool = _pick_tool(body, messages)
    if tool is not None:
        intro = gen.words(gen.integer(3, 6))
        tool_input = fill_schema(gen, tool["input_schema"])
        tool_tokens = max(1, len(canonical_json(tool_input)) // 4)
        if len(intro) + tool_tokens <= max_tokens:
            content = [
                {"type": "text", "text": " ".join(intro)},
                {
                    "type": "tool_use",
                    "id": "toolu_" + gen.hex_id("toolu"),
                    "name": tool["name"],
                    "input": tool_input,
                },
            ]
            stop_reason = "tool_use"
            output_tokens = len(intro) + tool_tokens

    if not content:
        stops = body.get("stop_sequences")
        words, stop_sequence = stop_at(gen.words(gen.answer_length()), stops if isinstance(stops, list) else [])
        if stop_sequence is not None:
            stop_reason = "stop_sequence"
        if len(words) > max_tokens:
            words, stop_reason, stop_sequence = words[:max_tokens], "max_tokens", None
        content = [{"type": "text", "text": " ".join(words)}]
        output_tokens = max(1, len(words))

    return {
        "id": "msg_" + gen.hex_id("msg"),
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": {
            "input_tokens": usage["input_tokens"],
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": usage["cache_creation_input_tokens"],
            "cache_read_input_tokens": usage["cache_read_input_tokens"],
        },
    }


def count_tokens_response(body: dict[str, Any]) -> dict[str, Any]:
    """`/v1/messages/count_tokens`: the total prompt size, with no cache split (as the real API)."""
    messages = _validate(body, need_max_tokens=False)
    return {"input_tokens": max(1, sum(tokens for _, tokens, _ in _segments(body, messages)))}


def _frame(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n".encode()


def sse_frames(message: dict[str, Any]) -> list[bytes]:
    """Replay a finished Message as Anthropic's stream: start, blocks with deltas, delta, stop."""
    usage = message["usage"]
    start = dict(message, content=[], stop_reason=None, stop_sequence=None)
    start["usage"] = {
        "input_tokens": usage["input_tokens"],
        "cache_creation_input_tokens": usage["cache_creation_input_tokens"],
        "cache_read_input_tokens": usage["cache_read_input_tokens"],
        "output_tokens": 1,
    }
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}]
    for index, block in enumerate(message["content"]):
        if block["type"] == "tool_use":
            opening = dict(block, input={})
            deltas = [{"type": "input_json_delta", "partial_json": ""}] + [
                {"type": "input_json_delta", "partial_json": piece}
                for piece in split_pieces(json.dumps(block["input"], separators=(",", ":")))
            ]
        else:
            opening = dict(block, text="")
            deltas = [{"type": "text_delta", "text": piece} for piece in split_words(block["text"])]
        events.append({"type": "content_block_start", "index": index, "content_block": opening})
        if index == 0:
            events.append({"type": "ping"})
        events.extend({"type": "content_block_delta", "index": index, "delta": d} for d in deltas)
        events.append({"type": "content_block_stop", "index": index})
    events.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]},
            "usage": {"output_tokens": usage["output_tokens"]},
        }
    )
    events.append({"type": "message_stop"})
    return [_frame(e) for e in events]
