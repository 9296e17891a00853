"""OpenAI request params → span attributes; ChatCompletion and embeddings responses → attributes.

OpenAI's `prompt_tokens` already INCLUDES cached tokens (unlike Anthropic's `input_tokens`), so it
maps straight to `gen_ai.usage.input_tokens` and `cached_tokens` is only its cache-read subset.
Adding them up again is the cached-tokens-counted-twice bug users report against peer tools.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmscope_sdk import _attributes as A
from llmscope_sdk._content import ContentPolicy
from llmscope_sdk._providers._shape import field, given, server_attributes
from llmscope_sdk._providers.openai import _messages

PROVIDER_NAME = "openai"
AZURE_PROVIDER_NAME = "azure.ai.openai"
_AZURE_SYSTEM = "az.ai.openai"  # the deprecated gen_ai.system enum spelled Azure this way
_AZURE_HOSTS = (".openai.azure.com", ".cognitiveservices.azure.com")
_AZURE_CLIENTS = ("AzureOpenAI", "AsyncAzureOpenAI")

# OpenAI finish reasons → OTel finish reasons (stop, length, content_filter pass through).
FINISH_REASONS = {"tool_calls": "tool_call", "function_call": "tool_call"}

_OUTPUT_TYPES = {"text": "text", "json_object": "json", "json_schema": "json"}

_CHAT_NUMBERS = (
    ("temperature", A.REQUEST_TEMPERATURE),
    ("top_p", A.REQUEST_TOP_P),
    ("frequency_penalty", A.REQUEST_FREQUENCY_PENALTY),
    ("presence_penalty", A.REQUEST_PRESENCE_PENALTY),
)


def _client_url(instance: Any) -> Any:
    return getattr(getattr(instance, "_client", None), "base_url", None)


def _is_azure(instance: Any) -> bool:
    client = getattr(instance, "_client", None)
    host = str(getattr(_client_url(instance), "host", "") or "")
    return type(client).__name__ in _AZURE_CLIENTS or host.endswith(_AZURE_HOSTS)


def span_name(operation: str, kwargs: Mapping[str, Any]) -> str:
    model = kwargs.get("model")
    return f"{operation} {model}" if isinstance(model, str) else operation


def base_attributes(operation: str, kwargs: Mapping[str, Any], instance: Any) -> dict[str, Any]:
    """What every OpenAI span carries from its start (the sampling-relevant attributes)."""
    azure = _is_azure(instance)
    attrs: dict[str, Any] = {
        A.OPERATION: operation,
        A.PROVIDER: AZURE_PROVIDER_NAME if azure else PROVIDER_NAME,
        A.SYSTEM: _AZURE_SYSTEM if azure else PROVIDER_NAME,
    }
    model = kwargs.get("model")
    if isinstance(model, str):
        attrs[A.REQUEST_MODEL] = model
    attrs.update(server_attributes(instance))
    return attrs


def number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def common_request(kwargs: Mapping[str, Any], attrs: dict[str, Any]) -> None:
    """Sampling params shared by Chat Completions and Responses."""
    for key, attr in _CHAT_NUMBERS:
        if number(kwargs.get(key)):
            attrs[attr] = float(kwargs[key])
    tier = kwargs.get("service_tier")
    if isinstance(tier, str) and tier != "auto":
        attrs[A.OPENAI_REQUEST_SERVICE_TIER] = tier
    if kwargs.get("stream") is True:
        attrs[A.REQUEST_STREAM] = True


def output_type(response_format: Any) -> str | None:
    """`{"type": "json_schema"}` etc. → `json`; a pydantic class (the `parse` helpers) is JSON too."""
    if isinstance(response_format, type):
        return "json"
    kind = field(response_format, "type") if given(response_format) else None
    return _OUTPUT_TYPES.get(kind, kind) if isinstance(kind, str) else None


def _stop_sequences(stop: Any) -> list[str] | None:
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, (list, tuple)) and all(isinstance(s, str) for s in stop):
        return list(stop)
    return None


def chat_request_attributes(kwargs: Mapping[str, Any], instance: Any) -> dict[str, Any]:
    attrs = base_attributes("chat", kwargs, instance)
    attrs[A.OPENAI_API_TYPE] = "chat_completions"
    common_request(kwargs, attrs)
    limit = next((kwargs[k] for k in ("max_completion_tokens", "max_tokens") if integer(kwargs.get(k))), None)
    if limit is not None:
        attrs[A.REQUEST_MAX_TOKENS] = limit
    if integer(kwargs.get("seed")):
        attrs[A.REQUEST_SEED] = kwargs["seed"]
    n = kwargs.get("n")
    if integer(n) and n != 1:
        attrs[A.REQUEST_CHOICE_COUNT] = n
    stops = _stop_sequences(kwargs.get("stop"))
    if stops:
        attrs[A.REQUEST_STOP_SEQUENCES] = stops
    kind = output_type(kwargs.get("response_format"))
    if kind:
        attrs[A.OUTPUT_TYPE] = kind
    return attrs


def chat_request_content(kwargs: Mapping[str, Any], policy: ContentPolicy, attrs: dict[str, Any]) -> None:
    """Opt-in content attributes of a chat request (no-op unless capture is on)."""
    if not policy.capture:
        return
    messages = kwargs.get("messages")
    if messages is not None and given(messages):
        policy.encode(A.INPUT_MESSAGES, _messages.input_messages(messages), attrs)
    policy.encode(A.TOOL_DEFINITIONS, _messages.tool_definitions(kwargs.get("tools"), kwargs.get("functions")), attrs)


def chat_request(kwargs: Mapping[str, Any], instance: Any, policy: ContentPolicy) -> tuple[str, dict[str, Any]]:
    attrs = chat_request_attributes(kwargs, instance)
    chat_request_content(kwargs, policy, attrs)
    return span_name("chat", kwargs), attrs


def usage_attributes(usage: Any, in_key: str, out_key: str) -> dict[str, Any]:
    """Usage for both APIs: chat says prompt/completion, Responses says input/output; the detail
    objects are named `<key>_details` in both. A count the API did not report stays unset, never 0."""
    if usage is None:
        return {}
    attrs: dict[str, Any] = {}
    for key, attr in ((in_key, A.USAGE_INPUT), (out_key, A.USAGE_OUTPUT)):
        if integer(field(usage, key)):
            attrs[attr] = field(usage, key)
    in_details, out_details = field(usage, f"{in_key}_details"), field(usage, f"{out_key}_details")
    for details, key, attr in (
        (in_details, "cached_tokens", A.USAGE_CACHE_READ),
        (in_details, "cache_write_tokens", A.USAGE_CACHE_CREATION),
        (out_details, "reasoning_tokens", A.USAGE_REASONING),
    ):
        if details is not None and integer(field(details, key)):
            attrs[attr] = field(details, key)
    return attrs


def finish_reason(reason: Any) -> str | None:
    return FINISH_REASONS.get(reason, reason) if isinstance(reason, str) else None


def identity_attributes(obj: Any) -> dict[str, Any]:
    """id, model, service tier and system fingerprint: the same fields on completions and chunks."""
    attrs: dict[str, Any] = {}
    for key, attr in (
        ("id", A.RESPONSE_ID),
        ("model", A.RESPONSE_MODEL),
        ("service_tier", A.OPENAI_RESPONSE_SERVICE_TIER),
        ("system_fingerprint", A.OPENAI_RESPONSE_SYSTEM_FINGERPRINT),
    ):
        value = field(obj, key)
        if isinstance(value, str) and value:
            attrs[attr] = value
    return attrs


def chat_response_attributes(completion: Any, policy: ContentPolicy) -> dict[str, Any]:
    """Attributes from a non-streamed `ChatCompletion`: one finish reason (and message) per choice."""
    attrs = identity_attributes(completion)
    choices = field(completion, "choices") or []
    if choices:
        attrs[A.RESPONSE_FINISH_REASONS] = [finish_reason(field(c, "finish_reason")) or "error" for c in choices]
    attrs.update(usage_attributes(field(completion, "usage"), "prompt_tokens", "completion_tokens"))
    if policy.capture and choices:
        output = [
            _messages.output_message(field(c, "message"), finish_reason(field(c, "finish_reason"))) for c in choices
        ]
        policy.encode(A.OUTPUT_MESSAGES, output, attrs)
    return attrs


def embeddings_request_attributes(kwargs: Mapping[str, Any], instance: Any) -> dict[str, Any]:
    attrs = base_attributes("embeddings", kwargs, instance)
    encoding = kwargs.get("encoding_format")
    if isinstance(encoding, str):
        attrs[A.REQUEST_ENCODING_FORMATS] = [encoding]
    if integer(kwargs.get("dimensions")):
        attrs[A.EMBEDDINGS_DIMENSION_COUNT] = kwargs["dimensions"]
    return attrs


def embeddings_request(kwargs: Mapping[str, Any], instance: Any, _policy: ContentPolicy) -> tuple[str, dict[str, Any]]:
    return span_name("embeddings", kwargs), embeddings_request_attributes(kwargs, instance)


def _dimensions(embedding: Any) -> int | None:
    """Vector length of a float list, or of a base64 string of float32s without decoding it."""
    if isinstance(embedding, list):
        return len(embedding)
    if isinstance(embedding, str) and embedding:
        padding = len(embedding) - len(embedding.rstrip("="))
        return (len(embedding) * 3 // 4 - padding) // 4
    return None


def embeddings_response_attributes(response: Any, _policy: ContentPolicy) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    model = field(response, "model")
    if isinstance(model, str):
        attrs[A.RESPONSE_MODEL] = model
    data = field(response, "data") or []
    dims = _dimensions(field(data[0], "embedding")) if data else None
    if dims is not None:
        attrs[A.EMBEDDINGS_DIMENSION_COUNT] = dims
    usage = field(response, "usage")
    if usage is not None and integer(field(usage, "prompt_tokens")):
        attrs[A.USAGE_INPUT] = field(usage, "prompt_tokens")
    return attrs
