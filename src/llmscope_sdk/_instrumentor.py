"""`instrument()` / `uninstrument()`: wrap every supported client method once, undo it exactly.

Clients that are not installed are skipped silently; a second `instrument()` is a no-op for
methods already wrapped, so no call ever gets two spans from llmscope. No network I/O happens here.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from llmscope_sdk._content import Redactor, resolve_policy
from llmscope_sdk._errors import log_internal_error
from llmscope_sdk._providers import PROVIDERS
from llmscope_sdk._runtime import Telemetry
from llmscope_sdk._setup import tracer
from llmscope_sdk._versions import check as check_version

if TYPE_CHECKING:  # wrapt, the metrics API and the provider modules load in `instrument()`
    from llmscope_sdk._providers._registry import PatchTarget

_lock = threading.Lock()
_patched: dict[str, tuple[Any, str, Any]] = {}  # key -> (class, method name, original attribute)
_telemetry: Telemetry | None = None
_QUIET_ENV = "ANTHROPIC_OPEN_TELEMETRY"
_env_set = False  # instrument() set _QUIET_ENV itself, so uninstrument() removes it


def _targets(name: str) -> tuple[PatchTarget, ...]:
    probe, targets_module = PROVIDERS[name]
    if importlib.util.find_spec(probe) is None:
        return ()
    check_version(probe)
    module = importlib.import_module(targets_module)
    targets: tuple[PatchTarget, ...] = module.TARGETS
    return targets


def _wrap(target: PatchTarget, telemetry: Telemetry) -> None:
    if importlib.util.find_spec(target.module) is None:
        return  # this client version has no such module
    module = importlib.import_module(target.module)
    cls = getattr(module, target.cls, None)
    if cls is None or not hasattr(cls, target.method):
        return  # this client version lacks the method: nothing to wrap
    import wrapt

    original = cls.__dict__.get(target.method)
    wrapt.wrap_function_wrapper(cls, target.method, target.factory(telemetry))
    _patched[target.key] = (cls, target.method, original)


def instrument(
    *,
    capture_content: bool | None = None,
    max_content_chars: int | None = None,
    redact: Redactor | None = None,
    providers: tuple[str, ...] | None = None,
    client_spans: bool = False,
) -> list[str]:
    """Patch the installed LLM clients; returns the names of the methods now instrumented.

    `capture_content=None` follows OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT (default off).
    Calling again with other content settings re-wraps with the new settings. Unless `client_spans`,
    clients that emit their own span per call (anthropic 2.x) are asked not to, for clients created
    from now on: llmscope's span already covers the call, and a second one only costs time.
    """
    from llmscope_sdk._metrics import GenAIMetrics

    global _telemetry
    with _lock:
        if not client_spans:
            _quiet_client_spans()
        telemetry = Telemetry(
            tracer=tracer(),
            metrics=GenAIMetrics(),
            content=resolve_policy(capture_content, max_content_chars, redact),
        )
        if _telemetry is not None and _telemetry.content != telemetry.content:
            _unwrap_all()
        _telemetry = telemetry if _telemetry is None or not _patched else _telemetry
        for name in providers or tuple(PROVIDERS):
            try:
                for target in _targets(name):
                    if target.key not in _patched:
                        _wrap(target, _telemetry)
            except Exception:
                log_internal_error(f"instrument {name}")
        return sorted(_patched)


def _quiet_client_spans() -> None:
    """anthropic 2.x reads ANTHROPIC_OPEN_TELEMETRY when a client is built; an explicit user value wins."""
    global _env_set
    if _QUIET_ENV not in os.environ:
        os.environ[_QUIET_ENV] = "false"
        _env_set = True


def _restore_env() -> None:
    """Undo `_quiet_client_spans()` unless the value was changed since (then it is the user's)."""
    global _env_set
    if _env_set and os.environ.get(_QUIET_ENV) == "false":
        del os.environ[_QUIET_ENV]
    _env_set = False


def _unwrap_all() -> None:
    for cls, method, original in _patched.values():
        if original is not None:
            setattr(cls, method, original)
        else:
            try:
                delattr(cls, method)
            except AttributeError:
                pass
    _patched.clear()


def uninstrument() -> None:
    """Undo everything `instrument()` did: every original method, and the environment it set."""
    global _telemetry
    with _lock:
        _unwrap_all()
        _restore_env()
        _telemetry = None


@contextlib.contextmanager
def instrumentation_override(**options: Any) -> Iterator[list[str]]:
    """`instrument(**options)` for the block, then the instrumentation that was there before it.

    For `llmscope.testing`: a test instruments with its own provider and settings, and an app that
    was already instrumented is wrapped again as it was (same telemetry, same methods) afterwards.
    """
    with _lock:
        saved = _telemetry, set(_patched), _env_set
    uninstrument()
    try:
        yield instrument(**options)
    finally:
        uninstrument()
        telemetry, keys, env_set = saved
        if telemetry is not None and keys:
            _rewrap(telemetry, keys, env_set)


def _rewrap(telemetry: Telemetry, keys: set[str], env_set: bool) -> None:
    global _telemetry
    with _lock:
        if env_set:
            _quiet_client_spans()
        _telemetry = telemetry
        for name in PROVIDERS:
            try:
                for target in _targets(name):
                    if target.key in keys and target.key not in _patched:
                        _wrap(target, telemetry)
            except Exception:
                log_internal_error(f"instrument {name}")


def instrumented() -> list[str]:
    return sorted(_patched)


def current_telemetry() -> Telemetry | None:
    return _telemetry
