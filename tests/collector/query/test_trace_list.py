"""`GET /v1/traces` over real HTTP on a store filled through OTLP/gRPC: every filter, sorting and
cursor pagination, checked against a brute-force Python filter over the generated spans."""

from __future__ import annotations

import datetime as dt
import random
import urllib.parse
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmscope_collector.server import EmbeddedServer
from tests.collector.query.conftest import query_settings
from tests.collector.query.dataset import (
    MODELS,
    NS,
    SERVICES,
    SESSIONS,
    T0_NS,
    TAGS,
    TIERS,
    USERS,
    WORDS,
    GenTrace,
    export,
    generate,
    get,
    ok,
)


def _ns(value: str) -> int:
    if value.isdigit():
        return int(value)
    return int(dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()) * NS


def _matches(trace: GenTrace, params: dict[str, str]) -> bool:
    for name, value in params.items():
        if name == "from" and trace.start_ns < _ns(value):
            return False
        if name == "to" and trace.start_ns >= _ns(value):
            return False
        if name == "service" and trace.service != value:
            return False
        if name == "model" and value not in trace.models:
            return False
        if name == "provider" and value not in trace.providers:
            return False
        if name == "status" and (trace.error_count > 0) != (value == "error"):
            return False
        if name == "session" and trace.session != value:
            return False
        if name == "user" and trace.user != value:
            return False
        if name == "prompt_name" and value not in {n for n, _ in trace.prompts}:
            return False
        if name == "prompt_version" and (params["prompt_name"], value) not in trace.prompts:
            return False
        if name == "tag" and trace.tag != value:
            return False
        if name == "min_duration_ms" and trace.duration_ns < float(value) * 1_000_000:
            return False
        if name == "min_cost" and (trace.cost is None or trace.cost < Decimal(value)):
            return False
        if name == "min_tokens" and trace.total_tokens < int(value):
            return False
        if name == "attr.app.tier" and trace.tier != value:
            return False
        if name == "attr.service.name" and trace.service != value:  # a resource attribute
            return False
        if name == "attr.user.id" and trace.user != value:
            return False
        if name == "q" and value.lower() not in trace.text.lower():
            return False
    return True


def _sort_key(trace: GenTrace, sort: str) -> Any:
    if sort == "start":
        return trace.start_ns
    if sort == "duration":
        return trace.duration_ns
    if sort == "tokens":
        return trace.total_tokens
    return trace.cost if trace.cost is not None else Decimal(-1)


def expected(corpus: list[GenTrace], params: dict[str, str], sort: str = "start", order: str = "desc") -> list[str]:
    found = [t for t in corpus if _matches(t, params)]
    found.sort(key=lambda t: (_sort_key(t, sort), t.trace_id), reverse=order == "desc")
    return [t.trace_id for t in found]


def listed(server: EmbeddedServer, params: dict[str, str], limit: int = 1000) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        query = {**params, "limit": str(limit), **({"cursor": cursor} if cursor else {})}
        body = ok(server, "/v1/traces?" + urllib.parse.urlencode(query))
        ids.extend(t["trace_id"] for t in body["traces"])
        cursor = body["next_cursor"]
        if cursor is None:
            return ids


# -- each filter on its own ---------------------------------------------------------------------

MID_NS = T0_NS + 80 * 61 * NS
SINGLE_FILTERS: list[dict[str, str]] = [
    {"from": str(MID_NS)},
    {"to": str(MID_NS)},
    {"from": "2026-03-15T23:00:00Z", "to": "2026-03-16T00:30:00Z"},
    *({"service": s} for s in SERVICES),
    *({"model": m} for _, m in MODELS),
    {"provider": "openai"},
    {"provider": "anthropic"},
    {"status": "error"},
    {"status": "ok"},
    {"session": "sess-3"},
    {"user": "u-2"},
    {"prompt_name": "greet"},
    {"prompt_name": "greet", "prompt_version": "2"},
    {"tag": "canary"},
    {"min_duration_ms": "3000"},
    {"min_cost": "0.02"},
    {"min_tokens": "6000"},
    {"attr.app.tier": "gold"},
    {"attr.service.name": "support"},
    {"attr.user.id": "u-3", "attr.app.tier": "silver"},
    {"q": "banana"},
    {"q": "quartz"},  # stored as "Quartz": the search is case-insensitive
    {"q": "no-such-word-anywhere"},
]


@pytest.mark.parametrize("params", SINGLE_FILTERS, ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()))
def test_each_filter_matches_brute_force(
    populated: EmbeddedServer, corpus: list[GenTrace], params: dict[str, str]
) -> None:
    want = expected(corpus, params)
    assert listed(populated, params) == want
    if "q" not in params or params["q"] != "no-such-word-anywhere":
        assert want, f"the corpus should exercise {params}"
        assert len(want) < len(corpus) or "from" in params or "to" in params


def test_summary_fields_match_the_spans(populated: EmbeddedServer, corpus: list[GenTrace]) -> None:
    check_summaries(populated, corpus)


def test_spans_of_a_trace_arriving_in_pieces_and_any_order(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Each span its own piece, shuffled, flushed in four rounds: the summaries are the same."""
    corpus = generate(31, 30)
    pieces = [GenTrace(s.trace_id, [s], s.service, t.session, t.user, t.tier, t.tag) for t in corpus for s in t.spans]
    random.Random(3).shuffle(pieces)
    with EmbeddedServer(query_settings(tmp_path_factory)) as server:
        for lo in range(0, len(pieces), len(pieces) // 4 + 1):
            export(server, pieces[lo : lo + len(pieces) // 4 + 1], batch=7)
        check_summaries(server, corpus)
        for params in ({"model": "gpt-4o"}, {"min_tokens": "3000"}, {"status": "error"}, {"q": "rocket"}):
            assert listed(server, params) == expected(corpus, params)


def check_summaries(server: EmbeddedServer, corpus: list[GenTrace]) -> None:
    body = ok(server, "/v1/traces?limit=1000")
    by_id = {t["trace_id"]: t for t in body["traces"]}
    assert set(by_id) == {t.trace_id for t in corpus}
    for trace in corpus:
        row = by_id[trace.trace_id]
        assert row["start_time_unix_nano"] == trace.start_ns
        assert row["duration_ms"] == trace.duration_ns / 1e6
        assert row["span_count"] == len(trace.spans)
        assert row["llm_calls"] == len(trace.llm())
        assert row["total_tokens"] == trace.total_tokens
        assert row["error_count"] == trace.error_count
        assert row["status"] == ("error" if trace.error_count else "ok")
        assert set(row["models"]) == trace.models and set(row["providers"]) == trace.providers
        assert row["session_id"] == trace.session and row["user_id"] == trace.user
        assert row["name"] == "agent run" and row["service_name"] == trace.service and row["state"] == "complete"
        assert (row["preview_input"], row["preview_output"]) == (trace.preview_input, trace.preview_output)
        unknown = sum(1 for s in trace.llm() if s.model == "mystery-model-9")
        assert row["cost_unknown"] == unknown
        if trace.cost is None:
            assert row["cost_usd"] is None
        else:
            assert abs(Decimal(str(row["cost_usd"])) - trace.cost) < Decimal("1e-9")


# -- combinations (property) --------------------------------------------------------------------

_FILTER_VALUES: dict[str, st.SearchStrategy[str]] = {
    "from": st.integers(T0_NS - NS, T0_NS + 170 * 61 * NS).map(str),
    "to": st.integers(T0_NS, T0_NS + 170 * 61 * NS).map(str),
    "service": st.sampled_from(SERVICES),
    "model": st.sampled_from([m for _, m in MODELS]),
    "provider": st.sampled_from(sorted({p for p, _ in MODELS})),
    "status": st.sampled_from(["error", "ok"]),
    "session": st.sampled_from([s for s in SESSIONS if s]),
    "user": st.sampled_from([u for u in USERS if u]),
    "prompt_name": st.sampled_from(["greet", "summarize", "nope"]),
    "tag": st.sampled_from([t for t in TAGS if t]),
    "min_duration_ms": st.integers(0, 8000).map(str),
    "min_cost": st.sampled_from(["0", "0.001", "0.005", "0.01", "0.03"]),
    "min_tokens": st.integers(0, 12000).map(str),
    "attr.app.tier": st.sampled_from(TIERS),
    "q": st.sampled_from([*WORDS, "number 1", "VIOLET"]),
}


@st.composite
def filter_sets(draw: st.DrawFn) -> dict[str, str]:
    names = draw(st.sets(st.sampled_from(sorted(_FILTER_VALUES)), min_size=1, max_size=4))
    params = {name: draw(_FILTER_VALUES[name]) for name in names}
    if "from" in params and "to" in params and int(params["to"]) <= int(params["from"]):
        del params["to"]
    if "prompt_name" in params and draw(st.booleans()):
        params["prompt_version"] = draw(st.sampled_from(["1", "2"]))
    return params


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    params=filter_sets(),
    sort=st.sampled_from(["start", "duration", "cost", "tokens"]),
    order=st.sampled_from(["asc", "desc"]),
    limit=st.sampled_from([1000, 7]),
)
def test_filter_combinations_sorting_and_pages_match_brute_force(
    populated: EmbeddedServer, corpus: list[GenTrace], params: dict[str, str], sort: str, order: str, limit: int
) -> None:
    got = listed(populated, {**params, "sort": sort, "order": order}, limit=limit)
    assert got == expected(corpus, params, sort, order), (params, sort, order, limit)


# -- sorting and pagination ---------------------------------------------------------------------


@pytest.mark.parametrize("sort", ["start", "duration", "cost", "tokens"])
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_every_sort_pages_through_everything_once(
    populated: EmbeddedServer, corpus: list[GenTrace], sort: str, order: str
) -> None:
    got = listed(populated, {"sort": sort, "order": order}, limit=9)
    assert got == expected(corpus, {}, sort, order)


def test_cursor_is_tied_to_its_sort(populated: EmbeddedServer) -> None:
    cursor = ok(populated, "/v1/traces?limit=2")["next_cursor"]
    status, body = get(populated, f"/v1/traces?limit=2&sort=duration&cursor={cursor}")
    assert status == 400 and body["error"] == "invalid_parameter" and "cursor" in body["detail"]
    status, body = get(populated, "/v1/traces?cursor=garbage!!")
    assert status == 400 and body["detail"].startswith("cursor")


def test_pagination_is_stable_while_new_traces_arrive(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Pages of a listing started before new traces arrived hold every old trace exactly once, in order."""
    old = generate(7, 40)
    with EmbeddedServer(query_settings(tmp_path_factory)) as server:
        export(server, old)
        for sort in ("start", "duration", "cost", "tokens"):
            ids: list[str] = []
            body = ok(server, f"/v1/traces?limit=12&sort={sort}&order=desc")
            batch = 0
            while True:
                ids.extend(t["trace_id"] for t in body["traces"])
                if body["next_cursor"] is None:
                    break
                # Newer traces (later start, and at the extremes of every other key) land between pages.
                batch += 1
                newer = generate(1000 + batch + 10 * len(sort), 3, start_ns=T0_NS + 10 * 86_400 * NS + batch * NS)
                export(server, newer)
                body = ok(server, f"/v1/traces?limit=12&sort={sort}&order=desc&cursor={body['next_cursor']}")
            assert len(ids) == len(set(ids))
            old_ids = {t.trace_id for t in old}
            got_old = [i for i in ids if i in old_ids]
            assert got_old == expected(old, {}, sort, "desc")
