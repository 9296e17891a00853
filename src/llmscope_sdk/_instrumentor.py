"""`instrument()` / `uninstrument()`: wrap every supported client method once, undo it exactly.

Clients that are not installed are skipped silently; a second `instrument()` is a no-op, so
no call ever gets two spans from llmscope.
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
from typing import Any

import wrapt
from opentelemetry.trace import Tracer

from llmscope_sdk import _attributes as A
from llmscope_sdk._errors import log_internal_error
from llmscope_sdk._providers import PROVIDERS
from llmscope_sdk._providers._registry import PatchTarget
from llmscope_sdk._setup import get_provider

_lock = threading.Lock()
_patched: dict[str, tuple[Any, str, Any]] = {}  # key -> (class, method name, original attribute)


def _targets(name: str) -> tuple[PatchTarget, ...]:
    probe, targets_module = PROVIDERS[name]
    if importlib.util.find_spec(probe) is None:
        return ()
    module = importlib.import_module(targets_module)
    targets: tuple[PatchTarget, ...] = module.TARGETS
    return targets


def _wrap(target: PatchTarget, tracer: Tracer) -> None:
    module = importlib.import_module(target.module)
    cls = getattr(module, target.cls, None)
    if cls is None or not hasattr(cls, target.method):
        return  # this client version lacks the method: nothing to wrap
    original = cls.__dict__.get(target.method)
    wrapt.wrap_function_wrapper(cls, target.method, target.factory(tracer))
    _patched[target.key] = (cls, target.method, original)


def instrument(providers: tuple[str, ...] | None = None) -> list[str]:
    """Patch the installed LLM clients; returns the names of the methods now instrumented."""
    with _lock:
        tracer = get_provider().get_tracer("llmscope", schema_url=A.SCHEMA_URL)
        for name in providers or tuple(PROVIDERS):
            try:
                for target in _targets(name):
                    if target.key not in _patched:
                        _wrap(target, tracer)
            except Exception:
                log_internal_error(f"instrument {name}")
        return sorted(_patched)


def uninstrument() -> None:
    """Restore every original method."""
    with _lock:
        for cls, method, original in _patched.values():
            if original is not None:
                setattr(cls, method, original)
            else:
                try:
                    delattr(cls, method)
                except AttributeError:
                    pass
        _patched.clear()


def instrumented() -> list[str]:
    return sorted(_patched)
