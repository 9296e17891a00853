"""Attribute dialects → canonical GenAI columns.

One table decides for every dialect (OTel gen_ai.* current and deprecated names, OpenInference,
OpenLLMetry/Traceloop, the Vercel AI SDK's `ai.*`, LiteLLM's `metadata.*`/`gen_ai.cost.*`, llmscope's own
`llmscope.*`). For each column the first source key present
wins, so an explicit current `gen_ai.*` attribute always beats an alias. Pure functions over an
attribute map that never raise: a malformed value is dropped from the column (it stays in the raw
attributes), so one odd sender cannot fail a batch.

Some dialects put a column's value in a span event rather than an attribute (OpenInference's
`First Token Stream Event`, OpenLLMetry's per-chunk events, the `exception` event of a failed
call); those are the last rows of the table, used only when no attribute names the value.
"""

from __future__ import annotations

import ast
import json
import operator
from collections.abc import Callable, Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, NamedTuple
from urllib.parse import urlsplit

# Which operations are model calls is a contract of the stored data (storage.schema); named here too
# because normalizing is where an operation is decided.
from llmscope_collector.storage.schema import LLM_OPERATIONS as LLM_OPERATIONS

# Old `gen_ai.system` values and other dialects' provider names → `gen_ai.provider.name` values.
PROVIDER_RENAMES: dict[str, str] = {
    "az.ai.openai": "azure.ai.openai",
    "az.ai.inference": "azure.ai.inference",
    "azure": "azure.ai.inference",
    "vertex_ai": "gcp.vertex_ai",
    "vertexai": "gcp.vertex_ai",
    "gemini": "gcp.gemini",
    "google": "gcp.gen_ai",
    "xai": "x_ai",
    "mistralai": "mistral_ai",
    "moonshot": "moonshot_ai",
    "aws": "aws.bedrock",
    "amazon": "aws.bedrock",
    "bedrock": "aws.bedrock",
    "together": "together_ai",
    "togetherai": "together_ai",
    "amazon-bedrock": "aws.bedrock",
    "google.vertex": "gcp.vertex_ai",
    "google-vertex": "gcp.vertex_ai",
    "vertex": "gcp.vertex_ai",
}
# The API part of a Vercel AI SDK provider id (`openai.responses`, `anthropic.messages`, `google.vertex.chat`):
# dropped, so the provider is the vendor (OTel's dotted names, `azure.ai.openai`, end in none of these).
_API_SUFFIXES = frozenset(
    {"chat", "responses", "completion", "embedding", "messages", "generative-ai", "image", "transcription", "speech"}
)
# Routing prefixes of model names (LiteLLM, DSPy, OpenRouter: `openai/gpt-4o-mini`) → provider names.
MODEL_PREFIXES: dict[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "azure": "azure.ai.openai",
    "azure_ai": "azure.ai.inference",
    "bedrock": "aws.bedrock",
    "bedrock_converse": "aws.bedrock",
    "vertex_ai": "gcp.vertex_ai",
    "vertex_ai_beta": "gcp.vertex_ai",
    "gemini": "gcp.gemini",
    "openrouter": "openrouter",
    "groq": "groq",
    "mistral": "mistral_ai",
    "deepseek": "deepseek",
    "xai": "x_ai",
    "cohere": "cohere",
    "cohere_chat": "cohere",
    "together_ai": "together_ai",
    "fireworks_ai": "fireworks",
    "perplexity": "perplexity",
    "cerebras": "cerebras",
    "moonshot": "moonshot_ai",
}


# Finish reasons of every dialect → the OTel values (`stop`, `length`, `content_filter`, `tool_call`, `error`).
FINISH_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "eos": "stop",
    "max_tokens": "length",
    "max_output_tokens": "length",
    "model_length": "length",
    "tool_use": "tool_call",
    "tool_calls": "tool_call",
    "function_call": "tool_call",
    "tool-calls": "tool_call",  # Vercel AI SDK
    "content-filter": "content_filter",
    "safety": "content_filter",
    "refusal": "content_filter",
}

_STR_COLUMNS: dict[str, tuple[str, ...]] = {
    "response_model": ("gen_ai.response.model", "llm.response.model_name", "llm.model_name", "ai.response.model"),
    "error_type": ("error.type",),
    "session_id": (
        "gen_ai.conversation.id",
        "session.id",
        "traceloop.association.properties.session_id",
        "ai.telemetry.metadata.sessionId",
        "ai.telemetry.metadata.session_id",
    ),
    "user_id": (
        "user.id",
        "enduser.id",
        "traceloop.association.properties.user_id",
        "gen_ai.user",
        "llm.user",
        "ai.telemetry.metadata.userId",
        "ai.telemetry.metadata.user_id",
    ),
    "prompt_name": ("gen_ai.prompt.name", "traceloop.prompt.key", "prompt.id"),
    "prompt_version": (
        "gen_ai.prompt.version",
        "llm.prompt_template.version",
        "traceloop.prompt.version",
        "traceloop.prompt.version_name",
    ),
    "tool_call_id": ("gen_ai.tool.call.id", "tool.id", "tool_call.id", "ai.toolCall.id"),
    "stream_ended_by": ("llmscope.stream.ended_by",),
}

_INT_COLUMNS: dict[str, tuple[str, ...]] = {
    "input_tokens": (
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.prompt_tokens",
        "llm.token_count.prompt",
        "llm.usage.prompt_tokens",
        "ai.usage.inputTokens",
        "ai.usage.promptTokens",
    ),
    "output_tokens": (
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.completion_tokens",
        "llm.token_count.completion",
        "llm.usage.completion_tokens",
        "ai.usage.outputTokens",
        "ai.usage.completionTokens",
    ),
    "cache_read_tokens": (
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_read_input_tokens",
        "llm.token_count.prompt_details.cache_read",
        "ai.usage.inputTokenDetails.cacheReadTokens",
        "ai.usage.cachedInputTokens",
    ),
    "cache_write_tokens": (
        "gen_ai.usage.cache_creation.input_tokens",
        "gen_ai.usage.cache_write.input_tokens",
        "gen_ai.usage.cache_creation_input_tokens",
        "llm.token_count.prompt_details.cache_write",
        "ai.usage.inputTokenDetails.cacheWriteTokens",
    ),
    "reasoning_tokens": (
        "gen_ai.usage.reasoning.output_tokens",
        "gen_ai.usage.reasoning_tokens",
        "llm.token_count.completion_details.reasoning",
        "llm.usage.reasoning_tokens",
        "ai.usage.outputTokenDetails.reasoningTokens",
        "ai.usage.reasoningTokens",
    ),
}
# Events whose first occurrence marks the first streamed chunk: time to first chunk = event time - span start.
FIRST_CHUNK_EVENTS = frozenset(
    {
        "First Token Stream Event",  # OpenInference (openai)
        "gen_ai.content.completion.chunk",  # OpenLLMetry (one per chunk)
        "llm.content.completion.chunk",  # OpenLLMetry, older releases
    }
)
_TOTAL_TOKEN_KEYS = (
    "gen_ai.usage.total_tokens",
    "llm.token_count.total",
    "llm.usage.total_tokens",
    "ai.usage.totalTokens",
)

_OPENINFERENCE_OPERATIONS = {
    "LLM": "chat",
    "EMBEDDING": "embeddings",
    "RETRIEVER": "retrieval",
    "TOOL": "execute_tool",
    "AGENT": "invoke_agent",
}
_LLM_REQUEST_TYPES = {"chat": "chat", "completion": "text_completion", "embedding": "embeddings", "rerank": "rerank"}
# The Vercel AI SDK names its spans' operation only in `ai.operationId`. The model calls are the inner
# `do*` spans; the outer `ai.generateText`/`ai.streamText` spans carry the run's totals over all its
# steps, so they map to no operation (counting them too would double every run).
_VERCEL_OPERATIONS = {
    "ai.generateText.doGenerate": "chat",
    "ai.streamText.doStream": "chat",
    "ai.generateObject.doGenerate": "chat",
    "ai.streamObject.doStream": "chat",
    "ai.embed.doEmbed": "embeddings",
    "ai.embedMany.doEmbed": "embeddings",
    "ai.toolCall": "execute_tool",
}
_TRACELOOP_OPERATIONS = {
    "workflow": "invoke_workflow",
    "agent": "invoke_agent",
    "tool": "execute_tool",
    "task": "execute_task",
}
# Alias keys of the derived columns, in priority order: read by their functions and listed as the
# columns' reads in `_DERIVED` (one list each, so the two cannot drift apart).
_FINISH_REASON_KEYS = (
    "gen_ai.response.finish_reasons",
    "llm.finish_reason",
    "gen_ai.response.finish_reason",
    "gen_ai.response.stop_reason",
    "llm.response.finish_reason",
    "llm.response.stop_reason",
    "ai.response.finishReason",
)
_PROVIDER_KEYS = ("gen_ai.provider.name", "gen_ai.system", "ai.model.provider")
_REQUEST_MODEL_KEYS = (
    "gen_ai.request.model",
    "llm.request.model_name",
    "llm.model_name",
    "embedding.model_name",
    "ai.model.id",
)
_STREAM_KEYS = ("gen_ai.request.stream", "gen_ai.is_streaming", "llm.is_streaming")
_TOOL_NAME_KEYS = ("gen_ai.tool.name", "tool.name", "ai.toolCall.name")
_RESPONSE_ID_KEYS = ("gen_ai.response.id", "ai.response.id")
# Time to first chunk: OTel's span attribute and the server metric's name, both in seconds as OTel
# defines them (a sender using the metric name on a span uses its unit); the Vercel AI SDK's, in ms.
_TTFT_SECONDS_KEYS = ("gen_ai.response.time_to_first_chunk", "gen_ai.server.time_to_first_token")
_TTFT_MS_KEYS = ("ai.response.msToFirstChunk",)
# Costs the instrumentation computed itself (USD): OpenLIT/Langfuse, LiteLLM, OpenInference.
_REPORTED_COST_KEYS = ("gen_ai.usage.cost", "gen_ai.cost.total_cost", "llm.cost.total")
# LiteLLM's usage object as a Python repr (not JSON): the only place its cache tokens are sent.
_USAGE_REPR_KEYS = ("metadata.usage_object",)
_AGENT_NAME_KEYS = ("gen_ai.agent.name", "agent.name")
_API_BASE_KEYS = ("gen_ai.openai.api_base", "llm.openai.api_base")
_SPAN_TYPE_KEYS = ("llmscope.span.kind", "openinference.span.kind", "traceloop.span.kind")
_TAG_KEYS = ("llmscope.tags", "tag.tags")
_METADATA_PREFIX = "llmscope.metadata."
_TRACELOOP_ASSOCIATION = "traceloop.association.properties."
_VERCEL_METADATA = "ai.telemetry.metadata."
_VERCEL_IDS = frozenset({"sessionId", "session_id", "userId", "user_id"})  # columns of their own


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != []


def _first(attrs: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = attrs.get(key)
        if value is not None and value != "" and value != []:  # _present, inlined (hot)
            return value
    return None


def _as_str(value: Any) -> str | None:
    if not _present(value) or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else None
    if isinstance(value, float) and value.is_integer():
        return _as_int(int(value))
    if isinstance(value, str):
        try:
            return _as_int(int(value.strip()))
        except ValueError:
            return None
    return None


def _json_value(value: Any) -> Any:
    """A JSON-encoded string attribute decoded, or the value itself when it is not JSON."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _invocation_parameters(attrs: Mapping[str, Any]) -> dict[str, Any]:
    params = _json_value(attrs.get("llm.invocation_parameters"))
    return params if isinstance(params, dict) else {}


def _str_list(value: Any) -> list[str] | None:
    value = _json_value(value)
    if isinstance(value, str):
        return [value] if value else None
    if isinstance(value, list):
        items = [s for v in value if (s := _as_str(v)) is not None]
        return items or None
    return None


_starts_completions_api = operator.methodcaller("startswith", ("llm.prompts.", "llm.choices."))


def _operation(attrs: Mapping[str, Any]) -> str | None:
    explicit = _as_str(attrs.get("gen_ai.operation.name"))
    if explicit:
        return explicit
    vercel = attrs.get("ai.operationId")
    if isinstance(vercel, str):
        return _VERCEL_OPERATIONS.get(vercel)
    oi_kind = attrs.get("openinference.span.kind")
    if isinstance(oi_kind, str) and oi_kind.upper() in _OPENINFERENCE_OPERATIONS:
        op = _OPENINFERENCE_OPERATIONS[oi_kind.upper()]
        if op == "chat" and any(map(_starts_completions_api, attrs)):
            return "text_completion"
        return op
    request_type = attrs.get("llm.request.type")
    if isinstance(request_type, str) and request_type in _LLM_REQUEST_TYPES:
        return _LLM_REQUEST_TYPES[request_type]
    traceloop_kind = attrs.get("traceloop.span.kind")
    if isinstance(traceloop_kind, str):
        return _TRACELOOP_OPERATIONS.get(traceloop_kind)
    return None


def normalize_provider(value: str) -> str:
    """An OTel `gen_ai.provider.name` for any dialect's provider name; an unknown name is kept as sent."""
    lowered = value.strip().lower()
    while "." in lowered and lowered.rsplit(".", 1)[1] in _API_SUFFIXES:
        lowered = lowered.rsplit(".", 1)[0]
    return PROVIDER_RENAMES.get(lowered, lowered)


def model_prefix(model: str) -> tuple[str, str] | None:
    """(provider, model behind it) of a routed model name such as `openai/gpt-4o-mini`, else None."""
    head, sep, rest = model.partition("/")
    provider = MODEL_PREFIXES.get(head.lower()) if sep and rest else None
    return None if provider is None else (provider, rest)


_PROVIDERS: dict[str, str] = {}  # normalize_provider memo: a deployment sends a handful of provider names


def _normalized_provider(value: str) -> str:
    provider = _PROVIDERS.get(value)
    if provider is None:
        if len(_PROVIDERS) >= 1024:
            _PROVIDERS.clear()
        provider = _PROVIDERS[value] = normalize_provider(value)
    return provider


def _provider(attrs: Mapping[str, Any]) -> str | None:
    seen = attrs.get("gen_ai.provider.name")
    if type(seen) is str:  # the usual case, a name normalized before (the memo holds no empty name)
        provider = _PROVIDERS.get(seen)
        if provider is not None:
            return provider
    explicit = _as_str(_first(attrs, _PROVIDER_KEYS))
    if explicit:
        return _normalized_provider(explicit)
    oi_provider = (_as_str(attrs.get("llm.provider")) or "").lower()
    oi_system = (_as_str(attrs.get("llm.system")) or "").lower()
    if oi_provider == "azure":
        return "azure.ai.openai" if oi_system == "openai" else "azure.ai.inference"
    if oi_provider == "google" and oi_system == "vertexai":
        return "gcp.vertex_ai"
    value = oi_provider or oi_system
    if value:
        return normalize_provider(value)
    model = _request_model(attrs)
    routed = model_prefix(model) if model else None
    return routed[0] if routed else None


def _request_model(attrs: Mapping[str, Any]) -> str | None:
    value = _as_str(_first(attrs, _REQUEST_MODEL_KEYS))
    return value or _as_str(_invocation_parameters(attrs).get("model"))


def _finish_reasons(attrs: Mapping[str, Any]) -> list[str] | None:
    value = attrs.get(_FINISH_REASON_KEYS[0])
    if type(value) is list and value:  # the usual case, non-empty strings: `_str_list` would keep them all
        fast: list[str] = []
        for reason in value:
            if type(reason) is not str or not reason:
                break
            fast.append(FINISH_REASONS.get(reason.lower(), reason))
        else:
            return fast
    value = _first(attrs, _FINISH_REASON_KEYS)
    reasons = _str_list(value)
    if reasons is None:
        indexed = sorted(
            (k, v) for k, v in attrs.items() if k.startswith("gen_ai.completion.") and k.endswith(".finish_reason")
        )
        reasons = [s for _, v in indexed if (s := _as_str(v)) is not None] or None
    if reasons is None:
        return None
    return [FINISH_REASONS.get(r.lower(), r) for r in reasons]


def _is_stream(attrs: Mapping[str, Any]) -> bool | None:
    value = _first(attrs, _STREAM_KEYS)
    if value is None:
        vercel = attrs.get("ai.operationId")
        if isinstance(vercel, str) and vercel in _VERCEL_OPERATIONS:
            return vercel.endswith(".doStream")
        value = _invocation_parameters(attrs).get("stream")
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value if isinstance(value, bool) else None


def _response_id(attrs: Mapping[str, Any]) -> str | None:
    """`gen_ai.response.id` (or the Vercel AI SDK's), else the `id` of an OpenInference LLM span's JSON
    `output.value` (the response body)."""
    explicit = _as_str(_first(attrs, _RESPONSE_ID_KEYS))
    if explicit or attrs.get("openinference.span.kind") != "LLM":
        return explicit
    output = _json_value(attrs.get("output.value"))
    return _as_str(output.get("id")) if isinstance(output, dict) else None


def _seconds(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value and value >= 0:
        return float(value)
    return None


def _ttft(attrs: Mapping[str, Any]) -> float | None:
    """Seconds to the first streamed chunk: OTel's names in seconds, else the Vercel AI SDK's ms."""
    for key in _TTFT_SECONDS_KEYS:
        seconds = _seconds(attrs.get(key))
        if seconds is not None:
            return seconds
    ms = _seconds(_first(attrs, _TTFT_MS_KEYS))
    return None if ms is None else ms / 1000


_MAX_COST = Decimal(10**6)  # USD per call: beyond it a reported value is garbage (and would not fit the column)
_COST_QUANTUM = Decimal("0.000000000001")  # the storage scale (12 decimals)


def _reported_cost(attrs: Mapping[str, Any]) -> Decimal | None:
    """The call's cost as the instrumentation computed it (USD), kept beside llmscope's own price."""
    value = _first(attrs, _REPORTED_COST_KEYS)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        cost = Decimal(str(value).strip())
    except ArithmeticError:
        return None
    if not cost.is_finite() or not 0 <= cost < _MAX_COST:
        return None
    return cost.quantize(_COST_QUANTUM, ROUND_HALF_EVEN)


def _total_tokens(attrs: Mapping[str, Any], out: Sequence[Any]) -> int | None:
    explicit = _as_int(_first(attrs, _TOTAL_TOKEN_KEYS))
    if explicit is not None:
        return explicit
    if out[_INPUT] is None and out[_OUTPUT] is None:
        return None
    return (out[_INPUT] or 0) + (out[_OUTPUT] or 0)


def _traceloop_entity(attrs: Mapping[str, Any], kind: str) -> str | None:
    return _as_str(attrs.get("traceloop.entity.name")) if attrs.get("traceloop.span.kind") == kind else None


def _tool_name(attrs: Mapping[str, Any]) -> str | None:
    return _as_str(_first(attrs, _TOOL_NAME_KEYS)) or _traceloop_entity(attrs, "tool")


def _agent_name(attrs: Mapping[str, Any]) -> str | None:
    return _as_str(_first(attrs, _AGENT_NAME_KEYS)) or _traceloop_entity(attrs, "agent")


def _server_address(attrs: Mapping[str, Any]) -> str | None:
    explicit = _as_str(attrs.get("server.address"))
    if explicit:
        return explicit
    base = _as_str(_first(attrs, _API_BASE_KEYS))
    if not base:
        return None
    try:
        return urlsplit(base).hostname
    except ValueError:
        return None


def _span_type(attrs: Mapping[str, Any]) -> str | None:
    value = _as_str(_first(attrs, _SPAN_TYPE_KEYS))
    return value.lower() if value else None


def _tags(attrs: Mapping[str, Any]) -> list[str] | None:
    tags: list[str] = []
    for key in _TAG_KEYS:
        tags.extend(_str_list(attrs.get(key)) or ())
    return list(dict.fromkeys(tags)) or None


def _metadata(attrs: Mapping[str, Any]) -> list[tuple[str, str]] | None:
    """`llmscope.metadata.<k>` wins over the Vercel AI SDK's `ai.telemetry.metadata.<k>`, Traceloop
    association properties and OpenInference `metadata`."""
    merged: dict[str, str] = {}
    oi = _json_value(attrs.get("metadata"))
    if isinstance(oi, dict):
        merged.update({str(k): s for k, v in oi.items() if (s := _as_str(v)) is not None})
    for key, value in attrs.items():
        if key.startswith(_TRACELOOP_ASSOCIATION) and (s := _as_str(value)) is not None:
            name = key[len(_TRACELOOP_ASSOCIATION) :]
            if name not in ("session_id", "user_id"):
                merged[name] = s
    for key, value in attrs.items():
        if key.startswith(_VERCEL_METADATA) and (s := _as_str(value)) is not None:
            name = key[len(_VERCEL_METADATA) :]
            if name not in _VERCEL_IDS:
                merged[name] = s
    for key, value in attrs.items():
        if key.startswith(_METADATA_PREFIX) and (s := _as_str(value)) is not None:
            merged[key[len(_METADATA_PREFIX) :]] = s
    return sorted(merged.items()) or None


# Derived columns: how each is computed, and every attribute key it reads (a prefix family counts
# through `_SCANNED_PREFIXES`). A column none of whose keys is on a span is None without running.
_DERIVED: dict[str, tuple[Callable[[Mapping[str, Any]], Any], tuple[str, ...]]] = {
    "response_id": (_response_id, (*_RESPONSE_ID_KEYS, "openinference.span.kind", "output.value")),
    "operation": (
        _operation,
        (
            "gen_ai.operation.name",
            "ai.operationId",
            "openinference.span.kind",
            "llm.request.type",
            "traceloop.span.kind",
        ),
    ),
    "provider": (_provider, (*_PROVIDER_KEYS, "llm.provider", "llm.system", *_REQUEST_MODEL_KEYS)),
    "request_model": (_request_model, (*_REQUEST_MODEL_KEYS, "llm.invocation_parameters")),
    "finish_reasons": (_finish_reasons, _FINISH_REASON_KEYS),
    "is_stream": (_is_stream, (*_STREAM_KEYS, "ai.operationId", "llm.invocation_parameters")),
    "ttft_s": (_ttft, (*_TTFT_SECONDS_KEYS, *_TTFT_MS_KEYS)),
    "reported_cost_usd": (_reported_cost, _REPORTED_COST_KEYS),
    "span_type": (_span_type, _SPAN_TYPE_KEYS),
    "tags": (_tags, _TAG_KEYS),
    "metadata": (
        _metadata,
        (
            "metadata",
            "traceloop.association.properties.session_id",
            "traceloop.association.properties.user_id",
            *(f"{_VERCEL_METADATA}{name}" for name in sorted(_VERCEL_IDS)),
        ),
    ),
    "tool_name": (_tool_name, (*_TOOL_NAME_KEYS, "traceloop.span.kind", "traceloop.entity.name")),
    "agent_name": (_agent_name, (*_AGENT_NAME_KEYS, "traceloop.span.kind", "traceloop.entity.name")),
    "server_address": (_server_address, ("server.address", *_API_BASE_KEYS)),
}
# Derived columns whose first read key, when a non-empty `str`, is the column's value whatever else is
# present: a plan fetches those values with the table's string columns and runs the column only otherwise.
_VERBATIM = {
    "response_id": "gen_ai.response.id",
    "operation": "gen_ai.operation.name",
    "request_model": "gen_ai.request.model",
    "tool_name": "gen_ai.tool.name",
    "agent_name": "gen_ai.agent.name",
    "server_address": "server.address",
}
# Key families read by scanning every key: a span with one of these runs the columns that scan them.
_SCANNED_PREFIXES: dict[str, tuple[str, ...]] = {
    "finish_reasons": ("gen_ai.completion.",),
    "metadata": (_TRACELOOP_ASSOCIATION, _METADATA_PREFIX, _VERCEL_METADATA),
}
_SCAN_ANY = tuple(p for prefixes in _SCANNED_PREFIXES.values() for p in prefixes)

GENAI_COLUMNS: tuple[str, ...] = (*_STR_COLUMNS, *_INT_COLUMNS, *_DERIVED, "total_tokens")
_AT = {column: i for i, column in enumerate(GENAI_COLUMNS)}
"""Each column's position in a row list (`genai_values`)."""
SESSION_ID = _AT["session_id"]
_INPUT, _OUTPUT, _TTFT, _ERROR_TYPE = _AT["input_tokens"], _AT["output_tokens"], _AT["ttft_s"], _AT["error_type"]
_OPERATION, _CACHE_READ, _CACHE_WRITE = _AT["operation"], _AT["cache_read_tokens"], _AT["cache_write_tokens"]


def _first_chunk_s(events: Sequence[Mapping[str, Any]], start_ns: int | None) -> float | None:
    if start_ns is None:
        return None
    times = [
        t
        for e in events
        if e.get("name") in FIRST_CHUNK_EVENTS
        and isinstance(t := e.get("time_ns"), int)
        and not isinstance(t, bool)
        and t >= start_ns
    ]
    return (min(times) - start_ns) / 1e9 if times else None


def _exception_type(events: Sequence[Mapping[str, Any]]) -> str | None:
    """The `exception.type` of the last `exception` event (the one that ended the span)."""
    for event in reversed(events):
        attributes = event.get("attributes")
        if event.get("name") == "exception" and isinstance(attributes, Mapping):
            value = _as_str(attributes.get("exception.type"))
            if value:
                return value
    return None


_Slow = Callable[[Mapping[str, Any], Any], Any]
"""A plan's column when its value is not the usual kind: (attrs, value) → the column's value."""
_Fast = tuple[int, str, Mapping[str, str]]
"""A derived column's usual case, which the C extension answers without calling its function: (`_FAST_MEMO`
or `_FAST_LIST`, key, table); its function answers the same (and everything else)."""
_Total = tuple[int, int, int, Callable[[Mapping[str, Any], Sequence[Any]], Any] | None]


class _Plan(NamedTuple):
    """What one set of present table keys needs, built once per key set so that a span probes no
    absent alias: per column its present keys in priority order, and the derived columns to run.
    Columns are positions in the row list (`GENAI_COLUMNS` order, `_AT`).

    Its first six fields are what `apply_plan` (the C extension `_genai_plan.c`) reads, by position:
    change them together with it (and `_FORMAT`)."""

    row: list[Any]  # the row to start from: every column None (`_EMPTY_ROW`)
    strs: tuple[tuple[int, str, _Slow], ...]  # (column, key, slow): a non-empty `str` is the value, else slow's
    ints: tuple[tuple[int, str, _Slow], ...]  # (column, key, slow): an int64 `int` is the value, else slow's
    multi: tuple[tuple[int, tuple[str, ...], Callable[[Any], Any]], ...]  # (column, keys, convert): first present
    derived: tuple[tuple[int, Callable[[Mapping[str, Any]], Any], _Fast | None], ...]  # (column, derive, fast)
    total: _Total  # (column, input column, output column, from the attributes' totals or None: the sum)
    derived_columns: frozenset[str]  # (by name)


_TABLE_COLUMNS = {**{c: (k, False) for c, k in _STR_COLUMNS.items()}, **{c: (k, True) for c, k in _INT_COLUMNS.items()}}
_KNOWN_KEYS = frozenset(
    k
    for keys in (*_STR_COLUMNS.values(), *_INT_COLUMNS.values(), *(r for _, r in _DERIVED.values()), _TOTAL_TOKEN_KEYS)
    for k in keys
)
_EMPTY_ROW = [None] * len(GENAI_COLUMNS)
_PLANS: dict[frozenset[str], _Plan] = {}
_MAX_PLANS = 4096  # distinct table-key sets are few per deployment; the bound only stops a pathological sender
# The plan of a span's whole key tuple (scanned-family columns included): an instrumentation sends its spans'
# keys in the same order, so one tuple hash finds the plan. Spans with many keys (flattened messages,
# whose keys vary with the conversation) take the key-set way, so the memo holds at most 4096 x 64 keys.
_KEYED_PLANS: dict[tuple[str, ...], _Plan] = {}
_MAX_KEYED_ATTRS = 64
# Keys seen not to belong to a scanned family (table keys that do are in their column's reads): a span whose
# keys are all here needs no prefix check. Grows with the key vocabulary, bounded like the plans.
_NOT_SCANNED: set[str] = set(_KNOWN_KEYS)
_MAX_NOT_SCANNED = 65536


def _str_value(attrs: Mapping[str, Any], value: Any) -> Any:
    return _as_str(value)


def _int_value(attrs: Mapping[str, Any], value: Any) -> Any:
    return _as_int(value)


def _run(derive: Callable[[Mapping[str, Any]], Any]) -> _Slow:
    return lambda attrs, value: derive(attrs)


_FAST_MEMO = 0  # attrs[key] an exact str that `table` maps to a value (not None): that value
_FAST_LIST = 1  # attrs[key] a non-empty list of non-empty lowercase ASCII exact str: [table.get(r, r) for r in it]
# The derived columns' fast paths (`_Fast`): `_provider`'s memo and `_finish_reasons`' usual list. Their calls
# from the C extension took ~2.2k instructions a bench span of decode_payload's (hotpaths.py --callgrind).
_FAST: dict[Callable[[Mapping[str, Any]], Any], _Fast] = {
    _provider: (_FAST_MEMO, _PROVIDER_KEYS[0], _PROVIDERS),
    _finish_reasons: (_FAST_LIST, _FINISH_REASON_KEYS[0], FINISH_REASONS),
}


def _derived_step(column: str, derive: Callable[[Mapping[str, Any]], Any]) -> tuple[int, Any, _Fast | None]:
    return (_AT[column], derive, _FAST.get(derive))


def _plan(known: frozenset[str]) -> _Plan:
    present = {c: (tuple(k for k in keys if k in known), is_int) for c, (keys, is_int) in _TABLE_COLUMNS.items()}
    singles = {c: (keys[0], is_int) for c, (keys, is_int) in present.items() if len(keys) == 1}
    str_keys: dict[str, tuple[str, _Slow]] = {c: (k, _str_value) for c, (k, is_int) in singles.items() if not is_int}
    int_keys = {c: k for c, (k, is_int) in singles.items() if is_int}
    runs = {column: derive for column, (derive, reads) in _DERIVED.items() if not known.isdisjoint(reads)}
    for column, key in _VERBATIM.items():
        if key in known:
            str_keys[column] = (key, _run(runs.pop(column)))
    total = None if known.isdisjoint(_TOTAL_TOKEN_KEYS) else _total_tokens  # else the sum of the row's counts
    return _Plan(
        _EMPTY_ROW,
        tuple((_AT[c], k, slow) for c, (k, slow) in str_keys.items()),
        tuple((_AT[c], k, _int_value) for c, k in int_keys.items()),
        tuple((_AT[c], keys, _as_int if is_int else _as_str) for c, (keys, is_int) in present.items() if len(keys) > 1),
        tuple(_derived_step(c, derive) for c, derive in runs.items()),
        (_AT["total_tokens"], _INPUT, _OUTPUT, total),
        frozenset(c for c, (_, reads) in _DERIVED.items() if not known.isdisjoint(reads)),
    )


def _keyed_plan(attrs: Mapping[str, Any], keys: tuple[str, ...]) -> _Plan:
    """The plan of the span's table keys, plus the columns its other keys are read by (and remembered)."""
    known = _KNOWN_KEYS.intersection(keys)
    plan = _PLANS.get(known)
    if plan is None:
        if len(_PLANS) >= _MAX_PLANS:
            _PLANS.clear()
        plan = _PLANS[known] = _plan(known)
    if len(keys) > len(known):  # only keys outside the table can belong to a scanned family
        extra = tuple(c for c in _scanned_columns(attrs) if c not in plan.derived_columns)
        if extra:
            plan = plan._replace(
                derived=plan.derived + tuple(_derived_step(c, _DERIVED[c][0]) for c in extra),
                derived_columns=plan.derived_columns.union(extra),
            )
    if len(keys) <= _MAX_KEYED_ATTRS:
        if len(_KEYED_PLANS) >= _MAX_PLANS:
            _KEYED_PLANS.clear()
        plan = _KEYED_PLANS[keys] = _own_keys(plan, keys)
    return plan


def _own_keys(plan: _Plan, keys: tuple[str, ...]) -> _Plan:
    """`plan` reading the span's own key objects. The native decoder hands out one str per distinct key
    (its key cache), so the next spans with these keys find each in their attributes by identity instead
    of comparing its characters with the table's literal (~7 lookups a bench span); equal either way."""
    own = dict(zip(keys, keys, strict=True))
    return plan._replace(
        strs=tuple((column, own[key], slow) for column, key, slow in plan.strs),
        ints=tuple((column, own[key], slow) for column, key, slow in plan.ints),
        multi=tuple((column, tuple(own[k] for k in aliases), convert) for column, aliases, convert in plan.multi),
    )


def _scanned_columns(attrs: Mapping[str, Any]) -> dict[str, None]:
    """The columns a key outside the table is read by, through a scanned family (usually none)."""
    found: dict[str, None] = {}
    if _NOT_SCANNED.issuperset(attrs):
        return found
    for key in attrs:
        if key not in _NOT_SCANNED:
            if key.startswith(_SCAN_ANY):
                found.update((c, None) for c, prefixes in _SCANNED_PREFIXES.items() if key.startswith(prefixes))
            else:
                if len(_NOT_SCANNED) >= _MAX_NOT_SCANNED:
                    _NOT_SCANNED.intersection_update(_KNOWN_KEYS)
                _NOT_SCANNED.add(key)
    return found


def _python_apply_plan(plans: Mapping[tuple[str, ...], _Plan], attrs: Mapping[str, Any]) -> list[Any]:
    """The table's and the derived columns of `attrs` by the plan of its keys (made when `plans` has none):
    the pure-Python path, and the one that decides whatever the C extension's `apply_plan` leaves."""
    keys = tuple(attrs)
    plan = plans.get(keys) or _keyed_plan(attrs, keys)
    out = plan.row.copy()
    for column, key, slow in plan.strs:
        value = attrs[key]
        if type(value) is str and value:
            out[column] = value
        else:
            out[column] = slow(attrs, value)
    for column, key, slow in plan.ints:
        value = attrs[key]
        if type(value) is int and -(2**63) <= value < 2**63:
            out[column] = value
        elif value is not None and value != "" and value != []:  # _present
            out[column] = slow(attrs, value)
    for column, keys, convert in plan.multi:
        value = _first(attrs, keys)
        if value is not None:
            out[column] = convert(value)
    for column, derive, _ in plan.derived:
        out[column] = derive(attrs)
    column, inputs, outputs, total = plan.total
    if total is not None:
        out[column] = total(attrs, out)
    elif out[inputs] is not None or out[outputs] is not None:
        out[column] = (out[inputs] or 0) + (out[outputs] or 0)
    return out


_ApplyPlan = Callable[[Mapping[tuple[str, ...], _Plan], Mapping[str, Any]], list[Any] | None]
# The shape of `_Plan` and of `apply_plan`'s arguments the C extension must have been built for (a tree's build
# left from an older `_genai_plan.c` is not used).
_FORMAT = 3  # (2: the row a list, its columns positions; 3: a derived step's fast path)


def _load_apply_plan() -> tuple[_ApplyPlan, bool]:
    """The C extension's `apply_plan` (optional: setup.py), else the pure-Python path."""
    try:
        from llmscope_collector.processors import _genai_plan  # type: ignore[attr-defined]  # (C, optional)
    except ImportError:
        return _python_apply_plan, False
    if getattr(_genai_plan, "FORMAT", None) != _FORMAT:
        return _python_apply_plan, False
    return _genai_plan.apply_plan, True  # type: ignore[no-any-return]


_apply_plan, NATIVE = _load_apply_plan()
"""`_apply_plan(plans, attrs)`: `_python_apply_plan`'s row when `attrs` is a `dict` whose key tuple `plans`
holds and whose values the C reads as the Python path does, else None (the Python path then decides).
`NATIVE`: whether it is the C extension's."""


def canonical_genai(
    attrs: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]] = (),
    *,
    start_ns: int | None = None,
    failed: bool = False,
) -> dict[str, Any]:
    """Canonical GenAI column values for one span's attributes (None where absent), by column name.

    `events` are the span's events as `{"time_ns", "name", "attributes"}`; `start_ns` its start and
    `failed` whether its status is ERROR (an `exception` event on a span that succeeded was handled,
    so it names no error type)."""
    return dict(zip(GENAI_COLUMNS, genai_values(attrs, events, start_ns, failed), strict=True))


def genai_values(
    attrs: Mapping[str, Any], events: Sequence[Mapping[str, Any]], start_ns: int | None, failed: bool
) -> list[Any]:
    """`canonical_genai`'s values in `GENAI_COLUMNS` order: the decoder's, which puts them in a span's row.

    A list filled by position, not a dict by name: no 50-column dict copied, filled by hash, viewed and
    torn down per span (decode_payload's instructions a bench span: `decode._decode_span`)."""
    out = _apply_plan(_KEYED_PLANS, attrs) or _python_apply_plan(_KEYED_PLANS, attrs)
    if events:
        if out[_TTFT] is None:
            out[_TTFT] = _first_chunk_s(events, start_ns)
        if out[_ERROR_TYPE] is None and failed:
            out[_ERROR_TYPE] = _exception_type(events)
    if out[_CACHE_READ] is None and _USAGE_REPR_KEYS[0] in attrs:
        _usage_repr_cache(attrs[_USAGE_REPR_KEYS[0]], out)
    if out[_OPERATION] in _LLM_SET and out[_INPUT] is None and not _is_call(attrs, out, failed):
        out[_OPERATION] = None
    return out


_LLM_SET = frozenset(LLM_OPERATIONS)
# Attributes that hold a model's output in some dialect (a call that returned something). OpenInference's
# generic `output.value` is not one: every span kind has it (DSPy's `LM.__call__` wrapper too).
_OUTPUT_KEYS = (
    "gen_ai.output.messages",
    "gen_ai.completion",
    "ai.response.text",
    "ai.response.toolCalls",
    "ai.response.object",
)
_OUTPUT_PREFIXES = ("llm.output_messages.", "gen_ai.completion.", "llm.choices.")
_EVIDENCE_COLUMNS = tuple(
    _AT[column]
    for column in (
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
        "finish_reasons",
        "response_id",
        "error_type",
        "ttft_s",
        "stream_ended_by",
    )
)


def _is_call(attrs: Mapping[str, Any], out: Sequence[Any], failed: bool) -> bool:
    """Whether an LLM-kind span with no input count stands for a model call: it has usage, an output, a
    finish reason, a response id or an error. Without any, it is a framework's wrapper or preparation
    step (no request went out under it): counting it would add a call of unknown cost to the trace."""
    if failed or any(out[column] is not None for column in _EVIDENCE_COLUMNS):
        return True
    if any(_present(attrs.get(key)) for key in _OUTPUT_KEYS):
        return True
    return any(key.startswith(_OUTPUT_PREFIXES) for key in attrs)


_MAX_USAGE_REPR = 16_384


def _usage_repr_cache(value: Any, out: list[Any]) -> None:
    """Cache tokens from LiteLLM's `metadata.usage_object`, a Python repr of its usage dict (OpenAI's
    `prompt_tokens_details.cached_tokens`, or Anthropic's `cache_read/creation_input_tokens`)."""
    if not isinstance(value, str) or len(value) > _MAX_USAGE_REPR:
        return
    try:
        usage = ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return
    if not isinstance(usage, dict):
        return
    details = usage.get("prompt_tokens_details")
    read = usage.get("cache_read_input_tokens")
    if read is None and isinstance(details, dict):
        read = details.get("cached_tokens")
    out[_CACHE_READ] = _as_int(read)
    if out[_CACHE_WRITE] is None:
        out[_CACHE_WRITE] = _as_int(usage.get("cache_creation_input_tokens"))
