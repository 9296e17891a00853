"""Which headers cross the proxy, and what llmscope reads from its own.

Everything the app sends goes upstream except hop-by-hop headers (RFC 9110 §7.6.1), `host` and
`content-length` (httpx sets both for the upstream) and llmscope's own `x-llmscope-*` headers,
which carry the llmscope key and span context and are none of the provider's business.
"""

from __future__ import annotations

from typing import Any

from llmscope_sdk import _context

Credentials = tuple[tuple[str, str], ...]

API_KEY_HEADER = "x-llmscope-api-key"
PROJECT_HEADER = "x-llmscope-project"
_CREDENTIAL_HEADERS = (API_KEY_HEADER, PROJECT_HEADER)
_OWN_PREFIX = "x-llmscope-"
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-connection",
    }
)
_NOT_UPSTREAM = _HOP_BY_HOP | {"host", "content-length"}

# Span context from headers, named like the SDK's scope: `x-llmscope-session-id: s-1` etc.
SESSION_HEADER = "x-llmscope-session-id"
USER_HEADER = "x-llmscope-user-id"
TAGS_HEADER = "x-llmscope-tags"
PROMPT_NAME_HEADER = "x-llmscope-prompt-name"
PROMPT_VERSION_HEADER = "x-llmscope-prompt-version"
METADATA_PREFIX = "x-llmscope-metadata-"


class ProxyAuthError(Exception):
    """The llmscope credentials of a request were refused (answered 401, nothing forwarded)."""


def credentials_of(headers: list[tuple[str, str]]) -> Credentials:
    """The llmscope key/project headers only: the provider's `authorization` is never read here."""
    return tuple(sorted((k, v.strip()) for k, v in headers if k in _CREDENTIAL_HEADERS and v.strip()))


def request_headers_upstream(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers if k not in _NOT_UPSTREAM and not k.startswith(_OWN_PREFIX)]


def response_headers_downstream(raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in raw if k.decode("latin-1").lower() not in _HOP_BY_HOP]


def scope_attributes_of(headers: list[tuple[str, str]], operation: Any) -> dict[str, Any]:
    """Session, user, tags, metadata and prompt from `x-llmscope-*` headers, as the SDK's scope sets them."""
    values: dict[str, str] = {}
    metadata: dict[str, str] = {}
    tags: list[str] = []
    for key, value in headers:
        if not key.startswith(_OWN_PREFIX):
            continue
        if key == TAGS_HEADER:
            tags.extend(t.strip() for t in value.split(",") if t.strip())
        elif key.startswith(METADATA_PREFIX) and len(key) > len(METADATA_PREFIX):
            metadata[key[len(METADATA_PREFIX) :]] = value
        else:
            values[key] = value
    managers = []
    if SESSION_HEADER in values:
        managers.append(_context.session(values[SESSION_HEADER], user_id=values.get(USER_HEADER)))
    elif USER_HEADER in values:
        managers.append(_context.user(values[USER_HEADER]))
    if tags:
        managers.append(_context.tags(*tags))
    if metadata:
        managers.append(_context.metadata(metadata))
    if PROMPT_NAME_HEADER in values:
        managers.append(_context.prompt(values[PROMPT_NAME_HEADER], version=values.get(PROMPT_VERSION_HEADER)))
    return _scoped(managers, operation)


def _scoped(managers: list[Any], operation: Any) -> dict[str, Any]:
    if not managers:
        return {}
    head, *rest = managers
    with head:
        return _scoped(rest, operation) if rest else _context.scope_attributes(operation)
