"""One server's runtime context: its settings, its span limits and its metrics.

Built once where a server's pipeline is wired (`pipeline.Collector`) and handed down to the stages
that need a part of it: the receivers (their counters), the decode pool and, through the pool's
initializer, each decode worker process (the limits), the API (the registry behind `/metrics`).
Nothing of it is process-wide, so two servers in one process limit and count their own data.
"""

from __future__ import annotations

import dataclasses

from llmscope_collector.metrics import Metrics
from llmscope_collector.processors.limits import SpanLimits
from llmscope_collector.settings import Settings


@dataclasses.dataclass(frozen=True)
class Runtime:
    settings: Settings
    limits: SpanLimits
    metrics: Metrics

    @classmethod
    def for_settings(cls, settings: Settings) -> Runtime:
        limits = SpanLimits(
            settings.max_span_attributes,
            settings.max_attribute_value_bytes,
            settings.max_span_events,
            settings.max_name_bytes,
        )
        return cls(settings, limits, Metrics())
