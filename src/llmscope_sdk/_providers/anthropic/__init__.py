"""Patch targets for the `anthropic` client (both the 0.x/1.x and the 2.x lines)."""

from __future__ import annotations

from llmscope_sdk._providers._registry import PatchTarget
from llmscope_sdk._providers.anthropic._patch import (
    async_messages_create,
    async_messages_stream,
    messages_create,
    messages_stream,
)

MODULE = "anthropic.resources.messages"

TARGETS: tuple[PatchTarget, ...] = (
    PatchTarget(MODULE, "Messages", "create", messages_create),
    PatchTarget(MODULE, "AsyncMessages", "create", async_messages_create),
    PatchTarget(MODULE, "Messages", "stream", messages_stream),
    PatchTarget(MODULE, "AsyncMessages", "stream", async_messages_stream),
)

__all__ = ["TARGETS"]
