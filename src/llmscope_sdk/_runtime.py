"""What every wrapper factory needs, decided once at `instrument()` time."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

    from llmscope_sdk._content import ContentPolicy
    from llmscope_sdk._metrics import GenAIMetrics


@dataclasses.dataclass(frozen=True)
class Telemetry:
    tracer: Tracer
    metrics: GenAIMetrics | None
    content: ContentPolicy
