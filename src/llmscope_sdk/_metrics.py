"""GenAI client metrics (OTel v1.41): `gen_ai.client.operation.duration` and `gen_ai.client.token.usage`.

Recorded through the global MeterProvider: a no-op unless the application configured metrics, in
which case they flow wherever its readers send them. The collector derives its own metrics from spans.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import metrics

from llmscope_sdk import _attributes as A

DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]
_REQUEST_KEYS = frozenset({A.OPERATION, A.PROVIDER, A.REQUEST_MODEL, A.SERVER_ADDRESS, A.SERVER_PORT})
"""The request attributes both metrics carry (low cardinality, per the GenAI metric conventions)."""


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
        self, request: dict[str, Any], response: dict[str, Any], duration_s: float, error_type: str | None
    ) -> None:
        """One call's duration and token counts, from its request and response span attributes."""
        attrs = {key: request[key] for key in _REQUEST_KEYS.intersection(request)}
        model = response.get(A.RESPONSE_MODEL)
        if model is not None:
            attrs[A.RESPONSE_MODEL] = model
        if error_type is not None:
            attrs[A.ERROR_TYPE] = error_type
        self._duration.record(duration_s, attrs)
        input_tokens = response.get(A.USAGE_INPUT)
        if isinstance(input_tokens, int):
            self._tokens.record(input_tokens, {**attrs, "gen_ai.token.type": "input"})
        output_tokens = response.get(A.USAGE_OUTPUT)
        if isinstance(output_tokens, int):
            self._tokens.record(output_tokens, {**attrs, "gen_ai.token.type": "output"})
