"""Attribute dialects → canonical GenAI columns.

One table decides for every dialect (OTel gen_ai.* current and deprecated names, OpenInference,
OpenLLMetry). For each column the first source key present wins, so an explicit current
`gen_ai.*` attribute always beats an alias. Pure functions: table-driven tests cover them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

# Old `gen_ai.system` values and other dialects' provider names → `gen_ai.provider.name` values.
PROVIDER_RENAMES: dict[str, str] = {
    "az.ai.openai": "azure.ai.openai",
    "az.ai.inference": "azure.ai.inference",
    "vertex_ai": "gcp.vertex_ai",
    "vertexai": "gcp.vertex_ai",
    "gemini": "gcp.gemini",
    "xai": "x_ai",
    "mistralai": "mistral_ai",
    "moonshot": "moonshot_ai",
    "aws": "aws.bedrock",
    "google": "gcp.gen_ai",
}

_STR_COLUMNS: dict[str, tuple[str, ...]] = {
    "operation": ("gen_ai.operation.name",),
    "provider": ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system"),
    "request_model": ("gen_ai.request.model", "llm.request.model_name", "llm.model_name", "embedding.model_name"),
    "response_model": ("gen_ai.response.model", "llm.response.model_name", "llm.model_name"),
    "response_id": ("gen_ai.response.id",),
    "error_type": ("error.type",),
    "session_id": (
        "gen_ai.conversation.id",
        "session.id",
        "traceloop.association.properties.session_id",
    ),
    "user_id": ("user.id", "enduser.id", "traceloop.association.properties.user_id", "gen_ai.user", "llm.user"),
}

_INT_COLUMNS: dict[str, tuple[str, ...]] = {
    "input_tokens": ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt"),
    "output_tokens": (
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.completion_tokens",
        "llm.token_count.completion",
    ),
    "cache_read_tokens": (
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_read_input_tokens",
        "llm.token_count.prompt_details.cache_read",
    ),
    "cache_write_tokens": (
        "gen_ai.usage.cache_creation.input_tokens",
        "gen_ai.usage.cache_write.input_tokens",
        "gen_ai.usage.cache_creation_input_tokens",
        "llm.token_count.prompt_details.cache_write",
    ),
    "reasoning_tokens": (
        "gen_ai.usage.reasoning.output_tokens",
        "gen_ai.usage.reasoning_tokens",
        "llm.token_count.completion_details.reasoning",
    ),
}

_OPENINFERENCE_OPERATIONS = {
    "LLM": "chat",
    "EMBEDDING": "embeddings",
    "RETRIEVER": "retrieval",
    "TOOL": "execute_tool",
    "AGENT": "invoke_agent",
}
_LLM_REQUEST_TYPES = {"chat": "chat", "completion": "text_completion", "embedding": "embeddings"}


def _first(attrs: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = attrs.get(key)
        if value is not None and value != "":
            return value
    return None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _operation(attrs: Mapping[str, Any]) -> str | None:
    explicit = attrs.get("gen_ai.operation.name")
    if isinstance(explicit, str) and explicit:
        return explicit
    oi_kind = attrs.get("openinference.span.kind")
    if isinstance(oi_kind, str) and oi_kind.upper() in _OPENINFERENCE_OPERATIONS:
        return _OPENINFERENCE_OPERATIONS[oi_kind.upper()]
    request_type = attrs.get("llm.request.type")
    if isinstance(request_type, str):
        return _LLM_REQUEST_TYPES.get(request_type)
    return None


def _finish_reasons(attrs: Mapping[str, Any]) -> list[str] | None:
    value = _first(
        attrs,
        ("gen_ai.response.finish_reasons", "llm.finish_reason", "gen_ai.response.finish_reason"),
    )
    if value is None:
        return None
    if isinstance(value, str):
        if value.startswith("["):
            try:
                parsed = json.loads(value)
            except ValueError:
                return [value]
            return [str(v) for v in parsed] if isinstance(parsed, list) else [value]
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def _is_stream(attrs: Mapping[str, Any]) -> bool | None:
    value = _first(attrs, ("gen_ai.request.stream", "gen_ai.is_streaming", "llm.is_streaming"))
    return value if isinstance(value, bool) else None


def _ttft(attrs: Mapping[str, Any]) -> float | None:
    value = attrs.get("gen_ai.response.time_to_first_chunk")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


_DERIVED: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "finish_reasons": _finish_reasons,
    "is_stream": _is_stream,
    "ttft_s": _ttft,
}

GENAI_COLUMNS: tuple[str, ...] = (*_STR_COLUMNS, *_INT_COLUMNS, *_DERIVED)


def canonical_genai(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Canonical GenAI column values for one span's attributes (None where absent)."""
    out: dict[str, Any] = {}
    for column, keys in _STR_COLUMNS.items():
        value = _first(attrs, keys)
        out[column] = None if value is None else str(value)
    out["operation"] = _operation(attrs)
    provider = out["provider"]
    if provider is not None:
        out["provider"] = PROVIDER_RENAMES.get(provider, provider)
    for column, keys in _INT_COLUMNS.items():
        out[column] = _as_int(_first(attrs, keys))
    for column, derive in _DERIVED.items():
        out[column] = derive(attrs)
    return out
