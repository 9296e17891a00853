"""OpenAI Chat Completions, Responses and Embeddings, as JSON and as SSE.

Each endpoint builds the complete response first and streaming replays it, so streamed and
non-streamed answers to the same body agree; that is what instrumentation tests compare.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from dataclasses import dataclass
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

__all__ = [
    "chat_completion",
    "chat_sse_frames",
    "embeddings",
    "error_body",
    "response_sse_frames",
    "responses_create",
]

_ERRORS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "unknown_url"),
    429: ("requests", "rate_limit_exceeded"),
}


def error_body(status: int, message: str) -> dict[str, Any]:
    """OpenAI's error envelope (`error.message/type/param/code`)."""
    kind, code = _ERRORS.get(status, ("server_error" if status >= 500 else "invalid_request_error", None))
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def created_at(seed: int) -> int:
    """A fixed timestamp (varies only with the seed) so responses stay byte-identical on replay."""
    return 1_700_000_000 + seed % 100_000


@dataclass(frozen=True)
class _Tool:
    name: str
    schema: Any


def _json_args(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _prompt_usage(model: str, tools: Any, prefix: list[Any], last: Any, cache: PromptCache) -> tuple[int, int]:
    """(prompt tokens incl. cached, cached tokens): a tools+prefix of >= 8 tokens seen before is cached.

    OpenAI counts cached tokens inside the prompt total, unlike Anthropic.
    """
    prefix_tokens = (len(canonical_json(tools)) // 4 if tools else 0) + count_tokens(prefix)
    total = max(1, prefix_tokens + count_tokens(last))
    cached = 0
    if prefix_tokens >= 8:
        key = "openai:" + hashlib.sha256(canonical_json([model, tools, prefix]).encode()).hexdigest()
        if cache.check_and_add(key):
            cached = prefix_tokens
    return total, cached


def _pick_tool(tools: list[_Tool], choice: Any, answering_tool_output: bool) -> _Tool | None:
    """Call the first (or the forced) tool unless told not to or the last turn is a tool result."""
    if not tools or choice == "none":
        return None
    if isinstance(choice, dict):
        name = choice.get("name") or (choice.get("function") or {}).get("name")
        return next((t for t in tools if t.name == name), tools[0])
    if choice == "required":
        return tools[0]
    return None if answering_tool_output else tools[0]


def _answer(gen: Generator, limit: int | None, stops: list[str]) -> tuple[str, int, str]:
    """(text, tokens, finish): `finish` is "stop" or "length" (cut by the token limit)."""
    words, _ = stop_at(gen.words(gen.answer_length()), stops)
    finish = "stop"
    if limit is not None and len(words) > limit:
        words, finish = words[: max(0, limit)], "length"
    return " ".join(words), max(1, len(words)), finish


def _stops(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [s for s in value if isinstance(s, str)] if isinstance(value, list) else []


def _limit(body: dict[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = body.get(key)
        if isinstance(value, int) and value >= 1:
            return value
    return None


# ----------------------------------------------------------------------------- chat completions


def chat_completion(body: dict[str, Any], seed: int, cache: PromptCache) -> dict[str, Any]:
    """A complete `chat.completion`; `n` choices, tool calls by the shared tool rule."""
    model = body.get("model")
    messages = body.get("messages")
    if not isinstance(model, str):
        raise SimulatorError(400, "you must provide a model parameter")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise SimulatorError(400, "'messages' must be a non-empty array of message objects")
    n = body.get("n") or 1
    if not isinstance(n, int) or not 1 <= n <= 128:
        raise SimulatorError(400, "'n' must be an integer between 1 and 128")

    raw_tools = body.get("tools") or []
    tools = [
        _Tool(t["function"]["name"], t["function"].get("parameters") or {})
        for t in raw_tools
        if isinstance(t, dict) and isinstance(t.get("function"), dict) and isinstance(t["function"].get("name"), str)
    ]
    tool = _pick_tool(tools, body.get("tool_choice"), messages[-1].get("role") == "tool")
    limit = _limit(body, "max_completion_tokens", "max_tokens")
    gen = Generator(seed, body, "openai.chat")

    choices: list[dict[str, Any]] = []
    completion_tokens = 0
    for index in range(n):
        cgen = gen.child(f"choice{index}")
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
        if tool is not None:
            args = _json_args(fill_schema(cgen, tool.schema))
            call_id = "call_" + gen.hex_id(f"call{index}")
            message["tool_calls"] = [
                {"id": call_id, "type": "function", "function": {"name": tool.name, "arguments": args}}
            ]
            completion_tokens += max(1, len(args) // 4)
            finish = "tool_calls"
        else:
            text, tokens, finish = _answer(cgen, limit, _stops(body.get("stop")))
            message["content"] = text
            completion_tokens += tokens
        choices.append({"index": index, "message": message, "logprobs": None, "finish_reason": finish})

    prompt_tokens, cached = _prompt_usage(model, raw_tools, messages[:-1], messages[-1], cache)
    return {
        "id": "chatcmpl-" + gen.hex_id("chatcmpl", 29),
        "object": "chat.completion",
        "created": created_at(seed),
        "model": model,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_" + gen.hex_id("fp", 10),
    }


def _data_frame(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def chat_sse_frames(completion: dict[str, Any], body: dict[str, Any]) -> list[bytes]:
    """Replay a completion as `chat.completion.chunk`s, optional usage chunk, then `[DONE]`."""
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    base: dict[str, Any] = {"id": completion["id"], "object": "chat.completion.chunk"}
    base.update((k, completion[k]) for k in ("created", "model", "service_tier", "system_fingerprint"))

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = dict(base)
        out["choices"] = [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}]
        if include_usage:
            out["usage"] = None
        return out

    chunks: list[dict[str, Any]] = []
    for choice in completion["choices"]:
        index, message = choice["index"], choice["message"]
        calls = message.get("tool_calls")
        if calls:
            for call_index, call in enumerate(calls):
                head = {
                    "index": call_index,
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["function"]["name"], "arguments": ""},
                }
                delta: dict[str, Any] = {"tool_calls": [head]}
                if call_index == 0:
                    delta = {"role": "assistant", "content": None, "refusal": None, **delta}
                chunks.append(chunk(index, delta))
                chunks.extend(
                    chunk(index, {"tool_calls": [{"index": call_index, "function": {"arguments": piece}}]})
                    for piece in split_pieces(call["function"]["arguments"])
                )
        else:
            chunks.append(chunk(index, {"role": "assistant", "content": "", "refusal": None}))
            chunks.extend(chunk(index, {"content": piece}) for piece in split_words(message["content"] or ""))
        chunks.append(chunk(index, {}, choice["finish_reason"]))
    if include_usage:
        chunks.append(dict(base, choices=[], usage=completion["usage"]))
    return [_data_frame(c) for c in chunks] + [b"data: [DONE]\n\n"]


# ----------------------------------------------------------------------------------- responses


def _response_input(body: dict[str, Any]) -> list[Any]:
    value = body.get("input")
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if isinstance(value, list) and value:
        return value
    raise SimulatorError(400, "'input' must be a string or a non-empty array of input items")


def responses_create(body: dict[str, Any], seed: int, cache: PromptCache) -> dict[str, Any]:
    """A complete `response` object: one message item, or a function_call item by the tool rule."""
    model = body.get("model")
    if not isinstance(model, str):
        raise SimulatorError(400, "Missing required parameter: 'model'.")
    items = _response_input(body)
    raw_tools = body.get("tools") or []
    tools = [
        _Tool(t["name"], t.get("parameters") or {})
        for t in raw_tools
        if isinstance(t, dict) and t.get("type") == "function" and isinstance(t.get("name"), str)
    ]
    last = items[-1]
    answering = isinstance(last, dict) and last.get("type") == "function_call_output"
    tool = _pick_tool(tools, body.get("tool_choice"), answering)
    limit = _limit(body, "max_output_tokens")
    gen = Generator(seed, body, "openai.responses")

    status, incomplete = "completed", None
    if tool is not None:
        args = _json_args(fill_schema(gen, tool.schema))
        output: list[dict[str, Any]] = [
            {
                "id": "fc_" + gen.hex_id("fc"),
                "type": "function_call",
                "status": "completed",
                "arguments": args,
                "call_id": "call_" + gen.hex_id("call"),
                "name": tool.name,
            }
        ]
        output_tokens = max(1, len(args) // 4)
    else:
        text, output_tokens, finish = _answer(gen, limit, [])
        if finish == "length":
            status, incomplete = "incomplete", {"reason": "max_output_tokens"}
        part = {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
        output = [
            {
                "id": "msg_" + gen.hex_id("msg"),
                "type": "message",
                "status": status,
                "content": [part],
                "role": "assistant",
            }
        ]

    instructions = body.get("instructions")
    prefix = [instructions or "", *items[:-1]]
    input_tokens, cached = _prompt_usage(model, raw_tools, prefix, last, cache)
    return {
        "id": "resp_" + gen.hex_id("resp", 48),
        "object": "response",
        "created_at": created_at(seed),
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": incomplete,
        "instructions": instructions,
        "max_output_tokens": body.get("max_output_tokens"),
        "model": model,
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": raw_tools,
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        },
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def response_sse_frames(response: dict[str, Any]) -> list[bytes]:
    """Replay a response as Responses-API events, each with `event:` and `sequence_number`."""
    events: list[dict[str, Any]] = []

    def emit(kind: str, **fields: Any) -> None:
        events.append({"type": kind, **fields, "sequence_number": len(events)})

    pending = dict(response, status="in_progress", output=[], usage=None, incomplete_details=None)
    emit("response.created", response=pending)
    emit("response.in_progress", response=pending)
    for out_index, item in enumerate(response["output"]):
        if item["type"] == "function_call":
            emit(
                "response.output_item.added",
                output_index=out_index,
                item=dict(item, status="in_progress", arguments=""),
            )
            for piece in split_pieces(item["arguments"]):
                emit(
                    "response.function_call_arguments.delta",
                    item_id=item["id"],
                    output_index=out_index,
                    delta=piece,
                )
            emit(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=out_index,
                name=item["name"],
                arguments=item["arguments"],
            )
        else:
            emit(
                "response.output_item.added",
                output_index=out_index,
                item=dict(item, status="in_progress", content=[]),
            )
            ids = {"item_id": item["id"], "output_index": out_index}
            for content_index, part in enumerate(item["content"]):
                emit(
                    "response.content_part.added",
                    **ids,
                    content_index=content_index,
                    part=dict(part, text=""),
                )
                for piece in split_words(part["text"]):
                    emit(
                        "response.output_text.delta",
                        **ids,
                        content_index=content_index,
                        delta=piece,
                        logprobs=[],
                    )
                emit(
                    "response.output_text.done",
                    **ids,
                    content_index=content_index,
                    text=part["text"],
                    logprobs=[],
                )
                emit("response.content_part.done", **ids, content_index=content_index, part=part)
        emit("response.output_item.done", output_index=out_index, item=item)
    emit(
        "response.completed" if response["status"] == "completed" else "response.incomplete",
        response=response,
    )
    return [f"event: {e['type']}\ndata: {json.dumps(e, separators=(',', ':'))}\n\n".encode() for e in events]


# ---------------------------------------------------------------------------------- embeddings


def embeddings(body: dict[str, Any], seed: int) -> dict[str, Any]:
    """Deterministic unit vectors per (seed, model, input item); `dimensions` and base64 honoured."""
    model = body.get("model")
    if not isinstance(model, str):
        raise SimulatorError(400, "you must provide a model parameter")
    raw = body.get("input")
    if isinstance(raw, str) or (isinstance(raw, list) and raw and all(isinstance(x, int) for x in raw)):
        inputs: list[Any] = [raw]
    elif isinstance(raw, list) and raw:
        inputs = raw
    else:
        raise SimulatorError(400, "'input' must be a non-empty string or array")
    dims = body.get("dimensions") or 8
    if not isinstance(dims, int) or not 1 <= dims <= 8192:
        raise SimulatorError(400, "'dimensions' must be an integer between 1 and 8192")
    as_base64 = body.get("encoding_format") == "base64"

    data: list[dict[str, Any]] = []
    tokens = 0
    for index, item in enumerate(inputs):
        vector = Generator(seed, [model, item], "openai.embeddings").vector(dims, "v")
        encoded: Any = vector
        if as_base64:
            encoded = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens += len(item) if isinstance(item, list) else count_tokens(item)
    tokens = max(1, tokens)
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
