"""Folds OpenAI stream chunks into the final response attributes (the shared proxy does the rest).

Chat Completions: usage comes only in a last, choice-less chunk and only when the request set
`stream_options={"include_usage": True}`; without it the token counts stay unset (never 0).
Tool calls arrive as deltas keyed by `index` (id and name first, then argument pieces) and are
reassembled per choice. Responses: every lifecycle event carries the response so far and the
terminal one (`response.completed`/`incomplete`/`failed`) the whole of it, usage included.
"""

from __future__ import annotations

from typing import Any

from llmscope_sdk import _attributes as A
from llmscope_sdk._content import ContentPolicy
from llmscope_sdk._providers._shape import field
from llmscope_sdk._providers.openai import _extract, _messages, _responses


class _Choice:
    """One choice of a streamed completion, rebuilt in the shape of a `ChatCompletionMessage`."""

    __slots__ = ("content", "finish_reason", "function_call", "refusal", "tool_calls")

    def __init__(self) -> None:
        self.content = ""
        self.refusal = ""
        self.finish_reason: str | None = None
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.function_call: dict[str, str] | None = None

    def take(self, delta: Any) -> None:
        self.content += field(delta, "content") or ""
        self.refusal += field(delta, "refusal") or ""
        for call in field(delta, "tool_calls") or []:
            index = field(call, "index", len(self.tool_calls))
            slot = self.tool_calls.setdefault(index, {"type": "function", "function": {"name": "", "arguments": ""}})
            slot["id"] = field(call, "id") or slot.get("id")
            slot["type"] = field(call, "type") or slot["type"]
            _append(slot["function"], field(call, "function"))
        function_call = field(delta, "function_call")
        if function_call is not None:
            self.function_call = self.function_call or {"name": "", "arguments": ""}
            _append(self.function_call, function_call)

    def message(self) -> dict[str, Any]:
        calls = [call for _, call in sorted(self.tool_calls.items())]
        return {
            "content": self.content,
            "refusal": self.refusal,
            "tool_calls": calls,
            "function_call": self.function_call,
        }


def _append(target: dict[str, Any], delta: Any) -> None:
    target["name"] += field(delta, "name") or ""
    target["arguments"] += field(delta, "arguments") or ""


class ChatAccumulator:
    def __init__(self, policy: ContentPolicy) -> None:
        self._policy = policy
        self._identity: dict[str, Any] = {}
        self._usage: Any = None
        self._choices: dict[int, _Choice] = {}

    def on_chunk(self, chunk: Any) -> None:
        if A.RESPONSE_ID not in self._identity:  # every chunk repeats id/model: read them once
            self._identity = _extract.identity_attributes(chunk)
        usage = field(chunk, "usage")
        if usage is not None:
            self._usage = usage
        for choice in field(chunk, "choices") or []:
            state = self._choices.setdefault(field(choice, "index", 0), _Choice())
            state.finish_reason = field(choice, "finish_reason") or state.finish_reason
            if self._policy.capture:
                state.take(field(choice, "delta"))

    def attributes(self) -> dict[str, Any]:
        attrs = dict(self._identity)
        choices = [choice for _, choice in sorted(self._choices.items())]
        if choices:
            attrs[A.RESPONSE_FINISH_REASONS] = [_extract.finish_reason(c.finish_reason) or "error" for c in choices]
        attrs.update(_extract.usage_attributes(self._usage, "prompt_tokens", "completion_tokens"))
        if self._policy.capture and choices:
            output = [_messages.output_message(c.message(), _extract.finish_reason(c.finish_reason)) for c in choices]
            self._policy.encode(A.OUTPUT_MESSAGES, output, attrs)
        return attrs


class ResponseAccumulator:
    def __init__(self, policy: ContentPolicy) -> None:
        self._policy = policy
        self._response: Any = None
        self._items: dict[int, Any] = {}

    def on_chunk(self, event: Any) -> None:
        response = field(event, "response")
        if response is not None:
            self._response = response
        elif self._policy.capture and field(event, "type") == "response.output_item.done":
            self._items[field(event, "output_index", len(self._items))] = field(event, "item")

    def attributes(self) -> dict[str, Any]:
        if self._response is None:
            return {}
        finished = _responses.finish_reason(self._response) is not None
        items = None if finished else [item for _, item in sorted(self._items.items())]
        return _responses.response_attributes(self._response, self._policy, items)
