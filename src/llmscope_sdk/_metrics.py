"""GenAI client metrics (OTel v1.41): `gen_ai.client.operation.duration` and `gen_ai.client.token.usage`.

Recorded through the global MeterProvider: a no-op unless the application configured metrics, in
which case they flow wherever its readers send them. The collector derives its own metrics from spans.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import metrics

DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]


class GenAIMetrics:
    def __init__(self, meter_provider: metrics.MeterProvider | None = None) -> None:
        meter = metrics.get_meter("llmscope", meter_provider=meter_provider)
        self._duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )

    def record(
        self, attrs: dict[str, Any], duration_s: float, input_tokens: Any, output_tokens: Any, error_type: str | None
    ) -> None:
        if error_type is not None:
            attrs = {**attrs, "error.type": error_type}
        self._duration.record(duration_s, attrs)
        if isinstance(input_tokens, int):
            self._tokens.record(input_tokens, {**attrs, "gen_ai.token.type": "input"})
        if isinstance(output_tokens, int):
            self._tokens.record(output_tokens, {**attrs, "gen_ai.token.type": "output"})
