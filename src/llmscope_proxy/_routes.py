"""The routes the proxy forwards, and how each one becomes a span: the SDK's own extractors.

A route names its upstream (OpenAI-compatible or Anthropic-compatible) and, for LLM calls, an
`Api` from the SDK: request JSON → (span name, attributes), response JSON → attributes, and the
accumulator that folds a stream's events. The request body is exactly the keyword arguments the
client library sent, so reading it with the SDK's code gives the span the SDK would have made.
Routes without an `Api` (`/v1/models`, `count_tokens`) are forwarded untraced: they are not calls
to a model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

from llmscope_sdk._content import ContentPolicy
from llmscope_sdk._providers.anthropic import _extract as anthropic_extract
from llmscope_sdk._providers.anthropic._stream import MessageAccumulator
from llmscope_sdk._providers.openai import CHAT, EMBEDDINGS, RESPONSES
from llmscope_sdk._providers.openai._patch import Api

Upstream = Literal["openai", "anthropic"]


def _anthropic_request(kwargs: Mapping[str, Any], instance: Any, policy: ContentPolicy) -> tuple[str, dict[str, Any]]:
    """The same attributes and span name the SDK's `messages.create` wrapper gives."""
    attrs = anthropic_extract.request_attributes(kwargs, instance)
    anthropic_extract.request_content(kwargs, policy, attrs)
    return f"chat {kwargs.get('model', 'unknown')}", attrs


ANTHROPIC_MESSAGES = Api(
    "messages", _anthropic_request, anthropic_extract.response_attributes, MessageAccumulator, None
)


@dataclasses.dataclass(frozen=True)
class Route:
    upstream: Upstream
    method: str
    api: Api | None


ROUTES: dict[str, Route] = {
    "/v1/chat/completions": Route("openai", "POST", CHAT),
    "/v1/responses": Route("openai", "POST", RESPONSES),
    "/v1/embeddings": Route("openai", "POST", EMBEDDINGS),
    "/v1/models": Route("openai", "GET", None),
    "/v1/messages": Route("anthropic", "POST", ANTHROPIC_MESSAGES),
    "/v1/messages/count_tokens": Route("anthropic", "POST", None),
}


def find_route(path: str) -> Route | None:
    """The route of a request path (`/v1/models/{id}` reads as the models listing)."""
    path = path.rstrip("/") or "/"
    route = ROUTES.get(path)
    if route is None and path.startswith("/v1/models/"):
        return ROUTES["/v1/models"]
    return route
