"""Guards that keep telemetry failures away from the user's code.

Instrumentation must never raise into, slow down or change the result of the wrapped call. A bug
in our code is logged once per call site and swallowed. Tests set LLMSCOPE_RAISE_INTERNAL_ERRORS=1
so such bugs fail loudly there instead.
"""

from __future__ import annotations

import logging
import os
from types import TracebackType

log = logging.getLogger("llmscope")
_logged: set[str] = set()


def _log(where: str, exc_info: object) -> None:
    """Warn once per kind of failure (then debug), so a persistent bug cannot flood the app's logs."""
    level = logging.DEBUG if where in _logged else logging.WARNING
    _logged.add(where)
    log.log(level, "llmscope internal error in %s; your code is unaffected", where, exc_info=exc_info)  # type: ignore[arg-type]


def _should_raise() -> bool:
    return os.environ.get("LLMSCOPE_RAISE_INTERNAL_ERRORS", "") == "1"


def log_internal_error(where: str) -> None:
    """Log the exception being handled; re-raise it when tests asked for that."""
    if _should_raise():
        raise
    _log(where, True)


class handle_internal_errors:
    """Context manager that swallows (and logs) any exception from telemetry code."""

    __slots__ = ("_where",)

    def __init__(self, where: str) -> None:
        self._where = where

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        if _should_raise():
            return False
        _log(self._where, exc)
        return True
