"""`llmscope.score(...)`: an evaluation of the current span, as an OTel `gen_ai.evaluation.result` event.

The OTel GenAI conventions put an evaluation on the span it evaluates, so a score needs no channel
of its own: it leaves with the span over OTLP and the collector stores it as a score of that span
(and its trace and session). Like every SDK entry point it never raises into the app: bad input or
no span to attach to is logged once and answered `False`.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from opentelemetry import trace as otel_trace

from llmscope_sdk._errors import handle_internal_errors

log = logging.getLogger("llmscope")

EVALUATION_EVENT = "gen_ai.evaluation.result"
_SOURCES = ("human", "api", "eval")
_warned: set[str] = set()


def score(
    name: str,
    value: bool | float | str,
    *,
    comment: str | None = None,
    source: str = "eval",
    author: str | None = None,
    score_id: str | None = None,
    span: otel_trace.Span | None = None,
) -> bool:
    """Attach a score to `span` (default: the current span); True when attached.

    `value` is a number, a boolean or a category (a string); a later score with the same `score_id`
    replaces the earlier one. The score is sent when the span ends, with it."""
    with handle_internal_errors("score"):
        target = span if span is not None else otel_trace.get_current_span()
        if not target.is_recording():
            _warn_once("no-span", "llmscope.score(%r): no recording span to attach it to; ignored", name)
            return False
        attrs = _attributes(name, value, comment, source, author, score_id)
        if attrs is None:
            _warn_once("bad-value", "llmscope.score(%r): value must be a number, a boolean or a string", name)
            return False
        target.add_event(EVALUATION_EVENT, attrs)
        return True
    return False


def _attributes(
    name: str, value: Any, comment: str | None, source: str, author: str | None, score_id: str | None
) -> dict[str, Any] | None:
    attrs: dict[str, Any] = {"gen_ai.evaluation.name": str(name)}
    if isinstance(value, bool):
        attrs["gen_ai.evaluation.score.value"] = 1.0 if value else 0.0
        attrs["gen_ai.evaluation.score.label"] = "true" if value else "false"
        attrs["llmscope.score.data_type"] = "boolean"
    elif isinstance(value, int | float):
        if not math.isfinite(value):
            return None
        attrs["gen_ai.evaluation.score.value"] = float(value)
    elif isinstance(value, str) and value:
        attrs["gen_ai.evaluation.score.label"] = value
        attrs["llmscope.score.data_type"] = "categorical"
    else:
        return None
    if comment:
        attrs["gen_ai.evaluation.explanation"] = str(comment)
    attrs["llmscope.score.source"] = source if source in _SOURCES else "eval"
    if author:
        attrs["llmscope.score.author"] = str(author)
    if score_id:
        attrs["llmscope.score.id"] = str(score_id)
    return attrs


def _warn_once(kind: str, message: str, *args: Any) -> None:
    level = logging.DEBUG if kind in _warned else logging.WARNING
    _warned.add(kind)
    log.log(level, message, *args)
