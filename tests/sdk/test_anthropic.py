"""The real anthropic client (sync and async) against the simulated provider, instrumented."""

from __future__ import annotations

import asyncio

import anthropic
import pytest
from opentelemetry.trace import SpanKind, StatusCode

import llmscope_sdk
from llmscope.testing import CapturedSpans
from llmscope_sim import SimulatedProvider

MODEL = "claude-sonnet-4-6"


def _ours(exporter: CapturedSpans) -> list:
    """Spans llmscope made (the anthropic 2.x client may add its own under ours)."""
    return [s for s in exporter.spans if s.instrumentation_scope.name == "llmscope"]


def test_sync_create_span_attributes(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    client = anthropic.Anthropic(base_url=sim.base_url, api_key="k", max_retries=0)
    message = client.messages.create(
        model=MODEL, max_tokens=64, stop_sequences=["END"], messages=[{"role": "user", "content": "hello there"}]
    )
    (span,) = _ours(spans)
    attrs = dict(span.attributes or {})
    assert span.name == f"chat {MODEL}" and span.kind == SpanKind.CLIENT
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "anthropic" and attrs["gen_ai.system"] == "anthropic"
    assert attrs["gen_ai.request.model"] == MODEL and attrs["gen_ai.response.model"] == message.model
    assert attrs["gen_ai.response.id"] == message.id
    assert attrs["gen_ai.request.max_tokens"] == 64 and list(attrs["gen_ai.request.stop_sequences"]) == ["END"]
    assert attrs["gen_ai.usage.input_tokens"] == message.usage.input_tokens
    assert attrs["gen_ai.usage.output_tokens"] == message.usage.output_tokens
    assert list(attrs["gen_ai.response.finish_reasons"]) == ["stop"]
    assert attrs["server.address"] == "127.0.0.1" and attrs["server.port"] == int(sim.base_url.rsplit(":", 1)[1])
    assert span.status.status_code == StatusCode.UNSET


def test_async_create_is_child_of_current_span(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    client = anthropic.AsyncAnthropic(base_url=sim.base_url, api_key="k", max_retries=0)
    tracer = llmscope_sdk.configure().get_tracer("test")

    async def call() -> anthropic.types.Message:
        with tracer.start_as_current_span("parent"):
            return await client.messages.create(
                model=MODEL, max_tokens=32, messages=[{"role": "user", "content": "hi"}]
            )

    message = asyncio.run(call())
    parent = next(s for s in spans.spans if s.name == "parent")
    (span,) = _ours(spans)
    assert span.parent is not None and span.parent.span_id == parent.context.span_id
    assert dict(span.attributes or {})["gen_ai.response.id"] == message.id


def test_error_is_recorded_and_reraised_unchanged(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    client = anthropic.Anthropic(base_url=sim.base_url, api_key="k", max_retries=0)
    with pytest.raises(anthropic.InternalServerError) as info:
        client.messages.create(
            model=MODEL,
            max_tokens=32,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-sim-error": "500"},
        )
    assert info.value.status_code == 500
    (span,) = _ours(spans)
    attrs = dict(span.attributes or {})
    assert span.status.status_code == StatusCode.ERROR
    assert attrs["error.type"] == "anthropic.InternalServerError"
    assert attrs["http.response.status_code"] == 500
    assert any(e.name == "exception" for e in span.events)


def test_cache_tokens_are_included_in_input_total(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    client = anthropic.Anthropic(base_url=sim.base_url, api_key="k", max_retries=0)
    system = [{"type": "text", "text": "long shared context " * 50, "cache_control": {"type": "ephemeral"}}]
    first = client.messages.create(
        model=MODEL,
        max_tokens=16,
        system=system,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": "q1"}],
    )
    second = client.messages.create(
        model=MODEL,
        max_tokens=16,
        system=system,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": "q1"}],
    )
    a, b = (dict(s.attributes or {}) for s in _ours(spans))
    assert first.usage.cache_creation_input_tokens and second.usage.cache_read_input_tokens
    for attrs, msg in ((a, first), (b, second)):
        u = msg.usage
        expected = u.input_tokens + (u.cache_read_input_tokens or 0) + (u.cache_creation_input_tokens or 0)
        assert attrs["gen_ai.usage.input_tokens"] == expected
        assert attrs["gen_ai.usage.cache_read.input_tokens"] == (u.cache_read_input_tokens or 0)
        assert attrs["gen_ai.usage.cache_creation.input_tokens"] == (u.cache_creation_input_tokens or 0)


def test_uninstrument_restores_and_instrument_is_idempotent(sim: SimulatedProvider, spans: CapturedSpans) -> None:
    client = anthropic.Anthropic(base_url=sim.base_url, api_key="k", max_retries=0)
    llmscope_sdk.instrument()  # second call: must not double-wrap
    client.messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "a"}])
    assert len(_ours(spans)) == 1
    llmscope_sdk.uninstrument()
    client.messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "b"}])
    assert len(_ours(spans)) == 1


def test_telemetry_failure_never_reaches_the_user(
    sim: SimulatedProvider, spans: CapturedSpans, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmscope_sdk._providers.anthropic import _extract

    def broken(*_: object) -> dict:
        raise RuntimeError("bug in llmscope")

    monkeypatch.setenv("LLMSCOPE_RAISE_INTERNAL_ERRORS", "0")
    monkeypatch.setattr(_extract, "request_attributes", broken)
    monkeypatch.setattr(_extract, "response_attributes", broken)
    client = anthropic.Anthropic(base_url=sim.base_url, api_key="k", max_retries=0)
    message = client.messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "a"}])
    assert message.content  # the user's result is intact


@pytest.mark.parametrize(
    ("kind", "exc_type", "error_type"),
    [
        ("timeout", anthropic.APITimeoutError, "anthropic.APITimeoutError"),
        ("disconnect", anthropic.APIConnectionError, "anthropic.APIConnectionError"),
    ],
)
def test_timeouts_and_connection_errors(
    sim: SimulatedProvider, spans: CapturedSpans, kind: str, exc_type: type, error_type: str
) -> None:
    sim.fail_next(kind=kind, count=1, delay_s=2.0)
    client = anthropic.Anthropic(base_url=sim.base_url, api_key="k", max_retries=0, timeout=0.3)
    with pytest.raises(exc_type):
        client.messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "x"}])
    (span,) = _ours(spans)
    assert dict(span.attributes or {})["error.type"] == error_type
    assert span.status.status_code == StatusCode.ERROR


def test_version_ranges_are_checked() -> None:
    from llmscope_sdk import _versions

    assert _versions.parse("2.13.0") == (2, 13, 0) and _versions.parse("1.40.0rc1") == (1, 40, 0)
    assert _versions.check("anthropic")  # the installed client is inside the tested range
