"""Sessions, users, tags, metadata and prompt identity that flow to every span started inside.

Held in a contextvar, so asyncio tasks and threads started with a copied context inherit them. A
span processor (`_stamp.ScopeSpanProcessor`) stamps them onto each span at start, which covers
llmscope's own spans, custom `@trace` spans and any other instrumentation's spans alike. This module
needs no OpenTelemetry SDK: `import llmscope` stays light (the SDK loads with `configure()`).
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from llmscope_sdk import _attributes as A

F = TypeVar("F", bound=Callable[..., Any])

_GENAI_SPAN_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "embeddings", "invoke_agent"})


@dataclasses.dataclass(frozen=True)
class _Scope:
    session_id: str | None = None
    user_id: str | None = None
    tags: tuple[str, ...] = ()
    metadata: tuple[tuple[str, str], ...] = ()
    prompt_name: str | None = None
    prompt_version: str | None = None


_EMPTY = _Scope()
_scope: contextvars.ContextVar[_Scope] = contextvars.ContextVar("llmscope_scope", default=_EMPTY)


class _ScopeManager:
    """Context manager AND decorator (sync, async and generator functions) for one scope change."""

    def __init__(self, **changes: Any) -> None:
        self._changes = changes
        self._tokens: list[contextvars.Token[_Scope]] = []

    def _derive(self, current: _Scope) -> _Scope:
        changes = dict(self._changes)
        if "tags" in changes:
            changes["tags"] = tuple(dict.fromkeys((*current.tags, *changes["tags"])))
        if "metadata" in changes:
            merged = dict(current.metadata)
            merged.update(changes["metadata"])
            changes["metadata"] = tuple(merged.items())
        return dataclasses.replace(current, **{k: v for k, v in changes.items() if v is not None})

    def __enter__(self) -> None:
        self._tokens.append(_scope.set(self._derive(_scope.get())))

    def __exit__(self, *exc: object) -> None:
        _scope.reset(self._tokens.pop())

    def __call__(self, func: F) -> F:
        changes = self._changes
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with _ScopeManager(**changes):
                    return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with _ScopeManager(**changes):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def session(session_id: str, *, user_id: str | None = None) -> _ScopeManager:
    """`with llmscope.session("s-1", user_id="u-9"):` or `@llmscope.session("s-1")`."""
    return _ScopeManager(session_id=str(session_id), user_id=None if user_id is None else str(user_id))


def user(user_id: str) -> _ScopeManager:
    return _ScopeManager(user_id=str(user_id))


def tags(*names: str) -> _ScopeManager:
    """Add tags (accumulating with outer scopes) as the `llmscope.tags` string array."""
    return _ScopeManager(tags=tuple(str(n) for n in names))


def metadata(values: Mapping[str, Any] | None = None, /, **kwargs: Any) -> _ScopeManager:
    """Add `llmscope.metadata.<key>` string attributes (merged with outer scopes)."""
    merged = {**(values or {}), **kwargs}
    return _ScopeManager(metadata={str(k): str(v) for k, v in merged.items()})


def prompt(name: str, *, version: str | int | None = None) -> _ScopeManager:
    """Mark LLM calls inside with `gen_ai.prompt.name` / `gen_ai.prompt.version`."""
    return _ScopeManager(prompt_name=str(name), prompt_version=None if version is None else str(version))


def has_scope() -> bool:
    """False when no session, user, tag, metadata or prompt is set (the common, cheap case)."""
    return _scope.get() is not _EMPTY


def scope_attributes(operation: Any) -> dict[str, Any]:
    """Attributes the current scope adds to a span with this `gen_ai.operation.name` (or None)."""
    scope = _scope.get()
    if scope is _EMPTY:
        return {}
    attrs: dict[str, Any] = {}
    if scope.session_id is not None:
        attrs[A.SESSION_ID] = scope.session_id
        if operation in _GENAI_SPAN_OPERATIONS:
            attrs[A.CONVERSATION_ID] = scope.session_id
    if scope.user_id is not None:
        attrs[A.USER_ID] = scope.user_id
    if scope.tags:
        attrs[A.TAGS] = list(scope.tags)
    for key, value in scope.metadata:
        attrs[A.METADATA_PREFIX + key] = value
    if operation in _GENAI_SPAN_OPERATIONS and scope.prompt_name is not None:
        attrs[A.PROMPT_NAME] = scope.prompt_name
        if scope.prompt_version is not None:
            attrs[A.PROMPT_VERSION] = scope.prompt_version
    return attrs
