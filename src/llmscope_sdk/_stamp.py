"""The span processor that stamps llmscope's scope (session, user, tags...) onto every SDK span.

Kept apart from `_context` so that module, and `import llmscope`, need no OpenTelemetry SDK: this
one is imported by `configure()`, the first moment a provider exists to add it to.
"""

from __future__ import annotations

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from llmscope_sdk import _attributes as A
from llmscope_sdk._context import has_scope, scope_attributes


class ScopeSpanProcessor(SpanProcessor):
    """Stamps the current llmscope scope onto every span as it starts (cheap when no scope is set)."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if not has_scope():
            return
        attrs = scope_attributes((span.attributes or {}).get(A.OPERATION))
        if attrs:
            span.set_attributes(attrs)

    def on_end(self, span: ReadableSpan) -> None:
        return None
