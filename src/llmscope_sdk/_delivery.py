"""Deadlines for `flush()`, `shutdown()` and interpreter exit, and whether spans were delivered.

The OTel SDK's `BatchSpanProcessor.force_flush` ignores its timeout and says True whatever the
exporter answered, and each OTLP export may take the exporter's own timeout (10 s by default) per
batch: with a collector that accepts connections and never answers, a flush of 2,000 spans took
half a minute and still said True, and so did the exit of the process. Here the flush or shutdown
runs on a helper thread that the caller waits for only until the deadline; `DeliveryReport` wraps
the exporter and counts what it failed to deliver; past the deadline of a shutdown the exporter is
abandoned (later batches fail at once, the gRPC channel is closed, which cancels the call in
flight), so nothing keeps the process alive. The helper threads are daemons.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable, Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from llmscope_sdk._config import DEFAULT_SHUTDOWN_TIMEOUT_S

log = logging.getLogger("llmscope")

SHUTDOWN_TIMEOUT_ENV = "LLMSCOPE_SHUTDOWN_TIMEOUT_S"


class DeliveryReport(SpanExporter):
    """The exporter, plus a count of spans it did not deliver; `abandon()` makes it give up."""

    def __init__(self, inner: SpanExporter) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self._failed = 0
        self._abandoned = threading.Event()
        self._closed = False

    @property
    def failed_spans(self) -> int:
        with self._lock:
            return self._failed

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = SpanExportResult.FAILURE
        if not self._abandoned.is_set():
            try:
                result = self._inner.export(spans)
            except Exception:  # the exporter's bug must not hide the loss
                log.debug("llmscope: the span exporter raised", exc_info=True)
        if result is not SpanExportResult.SUCCESS:
            with self._lock:
                self._failed += len(spans)
        return result

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)

    def shutdown(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._inner.shutdown()

    def abandon(self) -> None:
        """Past a shutdown deadline: fail every later batch at once and cut the one in flight."""
        self._abandoned.set()
        try:
            self.shutdown()
        except Exception:
            log.debug("llmscope: could not close the span exporter", exc_info=True)


def within(deadline_s: float, work: Callable[[], bool], name: str) -> bool | None:
    """Run `work` on a daemon thread; its answer, False if it raised, None if the deadline passed first."""
    answer: list[bool] = []

    def run() -> None:
        try:
            answer.append(bool(work()))
        except Exception:
            log.debug("llmscope: %s failed", name, exc_info=True)
            answer.append(False)

    thread = threading.Thread(target=run, name=f"llmscope-{name}", daemon=True)
    thread.start()
    thread.join(min(max(deadline_s, 0.0), 86400.0) if math.isfinite(deadline_s) else 86400.0)
    return answer[0] if answer else None


def flush(force_flush: Callable[[int], bool], report: DeliveryReport | None, timeout_s: float) -> bool:
    """True only if everything ended so far was exported, successfully, before `timeout_s`."""
    failed_before = report.failed_spans if report is not None else 0
    done = within(timeout_s, lambda: force_flush(max(int(timeout_s * 1000), 0)), "flush")
    undelivered = report is not None and report.failed_spans != failed_before
    return done is True and not undelivered


def shutdown(stop: Callable[[], None], report: DeliveryReport | None, timeout_s: float) -> bool:
    """Stop within `timeout_s`; past it the exporter is abandoned. True if nothing was left undelivered."""
    failed_before = report.failed_spans if report is not None else 0

    def work() -> bool:
        stop()
        return True

    done = within(timeout_s, work, "shutdown")
    if done is None and report is not None:
        report.abandon()
    undelivered = report is not None and report.failed_spans != failed_before
    return done is True and not undelivered


def exit_timeout_s() -> float:
    """`LLMSCOPE_SHUTDOWN_TIMEOUT_S` (seconds, >= 0), else the default."""
    raw = os.environ.get(SHUTDOWN_TIMEOUT_ENV, "")
    try:
        value = float(raw) if raw.strip() else DEFAULT_SHUTDOWN_TIMEOUT_S
    except ValueError:
        value = DEFAULT_SHUTDOWN_TIMEOUT_S
        log.warning("llmscope: %s=%r is not a number; using %s s", SHUTDOWN_TIMEOUT_ENV, raw, value)
    return max(value, 0.0) if math.isfinite(value) else DEFAULT_SHUTDOWN_TIMEOUT_S
