"""`apply_span_limits`: truncation and dropping are marked and counted; anomalies are flagged, not lost.

The limits are passed in (the server's) and the marks counted into the caller's mapping: nothing
here is process-wide."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from llmscope_collector.processors import limits
from llmscope_collector.processors.limits import DEFAULT_LIMITS, SpanLimits, apply_span_limits
from tests import otlp_factory as f

SMALL = SpanLimits(max_attributes=4, max_value_bytes=16)


def _span(start: int = 10, end: int = 20, kind: int = 1, status: int = 0) -> Any:
    span = f.span(b"\1" * 16, b"\2" * 8, "s", start, end, kind=kind)
    span.status.code = status  # type: ignore[assignment]
    return span


def test_long_values_are_cut_at_utf8_boundaries_and_listed() -> None:
    marked: dict[str, int] = {"truncated_value": 2}
    out = apply_span_limits(_span(), {"a": "é" * 20, "b": "short", "c": list(range(50))}, SMALL, marked)
    assert out["a"] == "é" * 8 and len(out["a"].encode()) <= 16
    assert out["b"] == "short"
    assert isinstance(out["c"], str) and out["c"].startswith("[0,1,2")
    assert out[limits.TRUNCATED_ATTRIBUTES] == ["a", "c"]
    assert marked == {"truncated_value": 3}  # one span more, added to what the caller counted


def test_attributes_over_the_count_are_dropped_genai_first_kept() -> None:
    attrs = {f"x{i}": i for i in range(6)} | {"gen_ai.usage.input_tokens": 5}
    marked: dict[str, int] = {}
    out = apply_span_limits(_span(), attrs, SMALL, marked)
    assert "gen_ai.usage.input_tokens" in out
    assert out[limits.DROPPED_ATTRIBUTES] == 3
    assert len([k for k in out if not k.startswith("llmscope.")]) == 4
    assert marked == {"dropped_attributes": 1}


def test_anomalies_are_flagged() -> None:
    marked: dict[str, int] = {}
    out = apply_span_limits(_span(start=20, end=10, kind=9, status=7), {}, DEFAULT_LIMITS, marked)
    assert out == {limits.END_BEFORE_START: True, limits.UNKNOWN_KIND: 9, limits.UNKNOWN_STATUS: 7}
    assert marked == {"end_before_start": 1, "unknown_span_kind": 1, "unknown_status_code": 1}


def test_a_normal_span_is_returned_unchanged() -> None:
    attrs = {"gen_ai.request.model": "m", "n": 1}
    marked: dict[str, int] = {}
    assert apply_span_limits(_span(), attrs, DEFAULT_LIMITS, marked) is attrs
    assert marked == {}


values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


@given(st.dictionaries(st.text(max_size=10), values, max_size=10))
def test_limits_always_hold_and_nothing_vanishes_silently(attrs: dict[str, Any]) -> None:
    out = apply_span_limits(_span(), attrs, SMALL, {})
    kept = {k: v for k, v in out.items() if not k.startswith("llmscope.")}
    dropped = out.get(limits.DROPPED_ATTRIBUTES, 0)
    assert len(kept) + dropped == len({k for k in attrs if not k.startswith("llmscope.")}) or dropped
    assert len(kept) <= 4
    for key in out.get(limits.TRUNCATED_ATTRIBUTES, []):
        assert len(out[key].encode()) <= 16
