"""`GET /v1/traces/values` over real HTTP on a store filled through OTLP/gRPC: the distinct values of each
picker field with their trace counts, checked against a brute-force count over the generated traces."""

from __future__ import annotations

import urllib.parse
from collections import Counter

import pytest

from llmscope_collector.server import EmbeddedServer
from tests.collector.query.dataset import NS, T0_NS, GenTrace, get, ok

FIELDS = ("service", "model", "provider", "session", "user", "tag")


def values_of(trace: GenTrace, field: str) -> set[str]:
    """What the trace holds of `field`, from what was sent (every span of a trace has its service)."""
    if field == "model":
        return set(trace.models)
    if field == "provider":
        return set(trace.providers)
    one = {"service": trace.service, "session": trace.session, "user": trace.user, "tag": trace.tag}[field]
    return set() if one is None else {one}


def brute_force(
    corpus: list[GenTrace], field: str, start: int | None = None, end: int | None = None, prefix: str = ""
) -> list[dict[str, object]]:
    """Trace counts per value of the traces starting in `[start, end)`, most frequent first, then by value."""
    counts: Counter[str] = Counter()
    for trace in corpus:
        if (start is None or trace.start_ns >= start) and (end is None or trace.start_ns < end):
            counts.update(v for v in values_of(trace, field) if v.lower().startswith(prefix.lower()))
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0].encode()))
    return [{"value": value, "traces": n} for value, n in ranked]


def values(server: EmbeddedServer, **params: str | int) -> list[dict[str, object]]:
    body = ok(server, "/v1/traces/values?" + urllib.parse.urlencode(params))
    assert body["field"] == params["field"]
    return list(body["values"])


@pytest.mark.parametrize("field", FIELDS)
def test_every_value_of_a_field_with_its_trace_count(
    populated: EmbeddedServer, corpus: list[GenTrace], field: str
) -> None:
    expected = brute_force(corpus, field)
    assert len(expected) >= 2  # the corpus has several values of each field
    assert values(populated, field=field) == expected


def test_a_time_range_counts_the_traces_starting_in_it(populated: EmbeddedServer, corpus: list[GenTrace]) -> None:
    start, end = T0_NS + 40 * 61 * NS, T0_NS + 90 * 61 * NS
    for field in ("model", "session"):
        expected = brute_force(corpus, field, start, end)
        assert expected and expected != brute_force(corpus, field)
        assert values(populated, field=field, **{"from": str(start), "to": str(end)}) == expected
    assert values(populated, field="model", **{"from": "2000-01-01T00:00:00Z", "to": "2000-01-02T00:00:00Z"}) == []


def test_prefix_matches_any_case_and_limit_keeps_the_most_frequent(
    populated: EmbeddedServer, corpus: list[GenTrace]
) -> None:
    for prefix in ("GPT", "claude", "c", "sess-", "zzz"):
        field = "session" if prefix.startswith("sess") else "model"
        assert values(populated, field=field, prefix=prefix) == brute_force(corpus, field, prefix=prefix)
    everything = brute_force(corpus, "model")
    assert values(populated, field="model", limit=2) == everything[:2]
    assert values(populated, field="model", limit=1000) == everything


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("field=colour", "field"),
        ("", "field"),
        ("field=model&limit=0", "limit"),
        ("field=model&limit=1001", "limit"),
        ("field=model&from=yesterday", "from"),
        ("field=model&from=2026-03-16&to=2026-03-15", "to"),
        ("field=model&prefix=" + "x" * 201, "prefix"),
    ],
)
def test_invalid_parameters_are_400s_naming_the_parameter(populated: EmbeddedServer, query: str, field: str) -> None:
    status, body = get(populated, "/v1/traces/values?" + query)
    assert status == 400, body
    assert field in body["detail"], body
