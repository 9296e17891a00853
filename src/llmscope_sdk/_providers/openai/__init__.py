"""Patch targets for the `openai` client (the 1.x line and 3.x alike).

Module paths moved between versions (e.g. `chat/completions.py` became a package; `parse`/`stream`
lived under `beta.chat` before they moved to `chat`), so a target is declared only where its module
exists, and the instrumentor skips classes that lack a method.
"""

from __future__ import annotations

import importlib.util

from llmscope_sdk._providers._registry import PatchTarget
from llmscope_sdk._providers.openai import _extract, _responses
from llmscope_sdk._providers.openai._patch import (
    Api,
    Factory,
    Handoff,
    async_create,
    async_stream,
    sync_create,
    sync_stream,
)
from llmscope_sdk._providers.openai._stream import ChatAccumulator, ResponseAccumulator

CHAT = Api("chat", _extract.chat_request, _extract.chat_response_attributes, ChatAccumulator, Handoff("chat"))
RESPONSES = Api(
    "responses", _responses.request, _responses.response_attributes, ResponseAccumulator, Handoff("responses")
)
EMBEDDINGS = Api("embeddings", _extract.embeddings_request, _extract.embeddings_response_attributes)

CHAT_MODULE = "openai.resources.chat.completions"
BETA_CHAT_MODULE = "openai.resources.beta.chat.completions"
RESPONSES_MODULE = "openai.resources.responses"
EMBEDDINGS_MODULE = "openai.resources.embeddings"


def _resource(module: str, cls: str, methods: dict[str, Factory]) -> list[PatchTarget]:
    return [PatchTarget(module, cls, method, factory) for method, factory in methods.items()]


def _exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _candidates() -> list[PatchTarget]:
    chat = {"create": sync_create(CHAT), "parse": sync_create(CHAT), "stream": sync_stream(CHAT)}
    async_chat = {"create": async_create(CHAT), "parse": async_create(CHAT), "stream": async_stream(CHAT)}
    beta_chat = {"parse": sync_create(CHAT), "stream": sync_stream(CHAT)}
    async_beta_chat = {"parse": async_create(CHAT), "stream": async_stream(CHAT)}
    responses = {"create": sync_create(RESPONSES), "parse": sync_create(RESPONSES), "stream": sync_stream(RESPONSES)}
    async_responses = {
        "create": async_create(RESPONSES),
        "parse": async_create(RESPONSES),
        "stream": async_stream(RESPONSES),
    }
    return [
        *_resource(CHAT_MODULE, "Completions", chat),
        *_resource(CHAT_MODULE, "AsyncCompletions", async_chat),
        *_resource(BETA_CHAT_MODULE, "Completions", beta_chat),
        *_resource(BETA_CHAT_MODULE, "AsyncCompletions", async_beta_chat),
        *_resource(RESPONSES_MODULE, "Responses", responses),
        *_resource(RESPONSES_MODULE, "AsyncResponses", async_responses),
        *_resource(EMBEDDINGS_MODULE, "Embeddings", {"create": sync_create(EMBEDDINGS)}),
        *_resource(EMBEDDINGS_MODULE, "AsyncEmbeddings", {"create": async_create(EMBEDDINGS)}),
    ]


TARGETS: tuple[PatchTarget, ...] = tuple(target for target in _candidates() if _exists(target.module))

__all__ = ["TARGETS"]
