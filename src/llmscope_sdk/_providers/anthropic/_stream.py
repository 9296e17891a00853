"""Folds Anthropic stream events (message_start … message_stop) into the final response attributes.

Usage arrives in two places: `message_start` carries input/cache counts, each `message_delta` the
cumulative output (and, on newer API versions, updated input/cache) counts; the last value wins.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from llmscope_sdk import _attributes as A
from llmscope_sdk._content import ContentPolicy
from llmscope_sdk._providers._shape import field
from llmscope_sdk._providers.anthropic import _extract, _messages

_USAGE_KEYS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


class MessageAccumulator:
    def __init__(self, policy: ContentPolicy) -> None:
        self._policy = policy
        self._id: str | None = None
        self._model: str | None = None
        self._stop_reason: str | None = None
        self._usage: dict[str, int] = {}
        self._blocks: dict[int, dict[str, Any]] = {}
        self._seen = False
        self.snapshot: Callable[[], Any] | None = None

    def on_chunk(self, event: Any) -> None:
        kind = field(event, "type")
        self._seen = True
        if kind == "message_start":
            message = field(event, "message")
            self._id = field(message, "id", self._id)
            self._model = field(message, "model", self._model)
            self._take_usage(field(message, "usage"))
        elif kind == "message_delta":
            self._stop_reason = field(field(event, "delta"), "stop_reason") or self._stop_reason
            self._take_usage(field(event, "usage"))
        elif self._policy.capture and kind in ("content_block_start", "content_block_delta"):
            self._take_content(kind, event)

    def _take_usage(self, usage: Any) -> None:
        if usage is None:
            return
        for key in _USAGE_KEYS:
            value = field(usage, key)
            if isinstance(value, int):
                self._usage[key] = value

    def _take_content(self, kind: str, event: Any) -> None:
        index = field(event, "index", 0)
        if kind == "content_block_start":
            block = field(event, "content_block")
            self._blocks[index] = {
                "type": field(block, "type"),
                "id": field(block, "id"),
                "name": field(block, "name"),
                "text": "",
                "thinking": "",
                "json": "",
            }
            return
        block = self._blocks.setdefault(index, {"type": "text", "text": "", "thinking": "", "json": ""})
        delta = field(event, "delta")
        delta_type = field(delta, "type")
        if delta_type == "text_delta":
            block["text"] += field(delta, "text", "")
        elif delta_type == "input_json_delta":
            block["json"] += field(delta, "partial_json", "")
        elif delta_type == "thinking_delta":
            block["thinking"] += field(delta, "thinking", "")

    def _content_blocks(self) -> list[dict[str, Any]]:
        blocks = []
        for _, raw in sorted(self._blocks.items()):
            block = {
                "type": raw["type"],
                "text": raw["text"],
                "thinking": raw["thinking"],
                "id": raw.get("id"),
                "name": raw.get("name"),
            }
            if raw["type"] in ("tool_use", "server_tool_use"):
                try:
                    block["input"] = json.loads(raw["json"]) if raw["json"] else {}
                except ValueError:
                    block["input"] = raw["json"]
            blocks.append(block)
        return blocks

    def attributes(self) -> dict[str, Any]:
        if not self._seen and self.snapshot is not None:
            return _extract.response_attributes(self.snapshot(), self._policy)
        attrs: dict[str, Any] = {}
        if self._id:
            attrs[A.RESPONSE_ID] = self._id
        if self._model:
            attrs[A.RESPONSE_MODEL] = self._model
        reason = _extract.finish_reason(self._stop_reason)
        if reason:
            attrs[A.RESPONSE_FINISH_REASONS] = [reason]
        if self._usage:
            attrs.update(_extract.usage_attributes(self._usage))
        if self._policy.capture and self._blocks:
            self._policy.encode(A.OUTPUT_MESSAGES, _messages.output_messages(self._content_blocks(), reason), attrs)
        return attrs
