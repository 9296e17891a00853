"""Counters, gauges and histograms rendered in the Prometheus text exposition format (0.0.4).

Written here rather than pulled from `prometheus_client` because that library keeps one global
registry per process, and llmscope runs several servers per process in tests and embeddings; each
server owns its own metrics here. Label sets are small and fixed by the code, never by requests.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Iterable, Sequence

LabelValues = tuple[str, ...]
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(int(value)) if float(value).is_integer() else repr(float(value))


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.label_names = tuple(labels)
        self._lock = threading.Lock()

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    def render(self) -> list[str]:
        raise NotImplementedError


class Counter(_Metric):
    """Monotonic count per label set."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labels)
        self._values: dict[LabelValues, float] = {}

    def inc(self, *labels: str, amount: float = 1) -> None:
        with self._lock:
            self._values[labels] = self._values.get(labels, 0) + amount

    def value(self, *labels: str) -> float:
        with self._lock:
            return self._values.get(labels, 0)

    def total(self) -> float:
        with self._lock:
            return sum(self._values.values())

    def render(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return [*self.header(), *(f"{self.name}{_labels(self.label_names, k)} {_number(v)}" for k, v in items)]


class Gauge(Counter):
    """A value that goes up and down (e.g. requests in flight)."""

    kind = "gauge"

    def dec(self, *labels: str, amount: float = 1) -> None:
        self.inc(*labels, amount=-amount)


class Histogram(_Metric):
    """Cumulative buckets, sum and count per label set."""

    kind = "histogram"

    def __init__(
        self, name: str, help_text: str, labels: Sequence[str] = (), buckets: Sequence[float] = DEFAULT_BUCKETS
    ) -> None:
        super().__init__(name, help_text, labels)
        self.buckets = tuple(sorted(buckets))
        self._series: dict[LabelValues, list[float]] = {}  # per-bucket counts, then +Inf, sum

    def observe(self, value: float, *labels: str) -> None:
        index = bisect.bisect_left(self.buckets, value)
        with self._lock:
            series = self._series.get(labels)
            if series is None:
                series = self._series[labels] = [0.0] * (len(self.buckets) + 2)
            series[index] += 1
            series[-1] += value

    def render(self) -> list[str]:
        with self._lock:
            items = sorted((k, list(v)) for k, v in self._series.items())
        lines = self.header()
        for key, series in items:
            cumulative = 0.0
            for bound, count in zip((*self.buckets, math.inf), series[:-1], strict=True):
                cumulative += count
                le = f'le="{_number(bound)}"'
                lines.append(f"{self.name}_bucket{_labels(self.label_names, key, le)} {_number(cumulative)}")
            lines.append(f"{self.name}_sum{_labels(self.label_names, key)} {_number(series[-1])}")
            lines.append(f"{self.name}_count{_labels(self.label_names, key)} {_number(cumulative)}")
        return lines


class MetricSet:
    """A named group of metrics that renders together; sources are combined by the /metrics route."""

    def __init__(self, metrics: Iterable[_Metric] = ()) -> None:
        self.metrics: list[_Metric] = list(metrics)

    def render(self) -> str:
        return "".join(line + "\n" for metric in self.metrics for line in metric.render())
