"""The cached query paths equal the scans they replace: cost roll-ups from the per-file partials (plus
the edge hours' spans) against the scan of every span, and the maintained `sessions` table against a
GROUP BY over the trace summaries, on a fresh store and after late duplicate marks, compaction,
session deletion (DELETE over HTTP) and retention."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmscope_collector.query import rollups
from llmscope_collector.query.filters import TimeRange
from llmscope_collector.query.models import CostReport
from llmscope_collector.query.partials import HOUR_NS, HourSplit
from llmscope_collector.query.store import TraceStore
from llmscope_collector.server import EmbeddedServer
from llmscope_collector.storage.compaction import CompactionOptions, Compactor
from llmscope_collector.storage.retention import RetentionPolicy, cleanup
from tests.collector.query.conftest import query_settings
from tests.collector.query.dataset import NS, T0_NS, GenTrace, export, generate, get, ok

SEED = 777
STEP_S = 600  # 10 minutes between traces: the corpus spans ~27 hours over 3 dates
N_TRACES = 160
PROJECT = "default"
PARTIAL_KEYS = ["model", "provider", "project", "service", "prompt", "day", "hour"]
GROUPINGS = [[], *([k] for k in PARTIAL_KEYS), ["model", "day"], ["service", "prompt", "hour"], ["provider", "day"]]
FILTER_VALUES = {
    "model": ["claude-3-5-haiku-latest", "mystery-model-9"],
    "service": ["checkout", "support"],
    "provider": ["anthropic", "openai"],
    "prompt_name": ["greet", "summarize"],
}
ANY_VALUE = sorted({v for values in FILTER_VALUES.values() for v in values})
END_NS = T0_NS + N_TRACES * STEP_S * NS


def _corpus() -> list[GenTrace]:
    return generate(SEED, N_TRACES, step_s=STEP_S)


def _late_parents_first_children(corpus: list[GenTrace]) -> tuple[list[GenTrace], list[GenTrace]]:
    """The nested duplicate LLM spans alone, then the rest: their parents arrive a flush later, so the
    children are found to be duplicates only after they were written (the `llm_dups` dataset)."""
    children = [dataclasses.replace(t, spans=[s for s in t.spans if not s.counted and s.is_llm]) for t in corpus]
    rest = [dataclasses.replace(t, spans=[s for s in t.spans if s.counted or not s.is_llm]) for t in corpus]
    return [t for t in children if t.spans], rest


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    with EmbeddedServer(query_settings(tmp_path_factory)) as srv:
        first, rest = _late_parents_first_children(_corpus())
        export(srv, first)
        srv.store.partials.refresh()  # the children are summed before they are known to be duplicates
        export(srv, rest)
        yield srv


def _scan(store: TraceStore, group_by: list[str], time_range: TimeRange, filters: dict[str, str]) -> CostReport:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rollups, "usable", lambda group_by, filters: False)
        return store.costs(PROJECT, group_by, time_range, filters)


def _key(group: Any) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v or "") for k, v in group.key.items()))


ALL_TIME = TimeRange()


def assert_costs_equal_scan(
    store: TraceStore, group_by: list[str], time_range: TimeRange = ALL_TIME, filters: dict[str, str] | None = None
) -> CostReport:
    assert rollups.usable(group_by, sorted(filters or {}))
    cached = store.costs(PROJECT, group_by, time_range, filters or {})
    scanned = _scan(store, group_by, time_range, filters or {})
    assert cached.total == scanned.total
    assert sorted(cached.groups, key=_key) == sorted(scanned.groups, key=_key)
    return cached


def _session_rows(store: TraceStore) -> list[dict[str, Any]]:
    """The session list as it was computed before the `sessions` table: grouped from `traces` per request."""
    rows = store.table_rows(
        """SELECT t.session_id AS session_id, min(t.start_ns) AS first_ns, max(t.end_ns) AS last_ns,
             count(*) AS trace_count, sum(t.span_count)::BIGINT AS span_count, sum(t.llm_calls)::BIGINT AS llm_calls,
             sum(t.input_tokens)::BIGINT AS input_tokens, sum(t.output_tokens)::BIGINT AS output_tokens,
             sum(t.cache_read_tokens)::BIGINT AS cache_read_tokens,
             sum(t.cache_write_tokens)::BIGINT AS cache_write_tokens, sum(t.total_tokens)::BIGINT AS total_tokens,
             sum(t.cost_usd) AS cost_usd, sum(t.cost_unknown)::BIGINT AS cost_unknown,
             sum(t.error_count)::BIGINT AS error_count, count(*) FILTER (WHERE t.error_count > 0) AS error_traces,
             arg_min(t.user_id, t.start_ns) FILTER (WHERE t.user_id IS NOT NULL) AS user_id
           FROM traces t WHERE t.project = $project AND t.session_id IS NOT NULL
           GROUP BY t.session_id ORDER BY last_ns DESC, session_id DESC""",
        {"project": PROJECT},
    )
    return rows


def assert_sessions_equal_traces(server: EmbeddedServer) -> list[dict[str, Any]]:
    want = _session_rows(server.store)
    got: list[dict[str, Any]] = ok(server, "/v1/sessions?limit=1000")["sessions"]
    assert [s["session_id"] for s in got] == [r["session_id"] for r in want]
    fields = ["trace_count", "span_count", "llm_calls", "total_tokens", "cost_unknown", "error_count", "error_traces"]
    for s, r in zip(got, want, strict=True):
        assert [s[f] for f in fields] == [r[f] for f in fields]
        assert (s["first_activity_unix_nano"], s["last_activity_unix_nano"]) == (r["first_ns"], r["last_ns"])
        assert s["user_id"] == r["user_id"]
        unpriced = r["llm_calls"] and r["cost_unknown"] >= r["llm_calls"]
        assert s["cost_usd"] == (None if unpriced else round(float(r["cost_usd"] or 0), 12))
    return got


# -- pure: the hour split ---------------------------------------------------------------------------


@given(st.integers(0, 2**62), st.integers(1, 10 * 24 * HOUR_NS))
def test_hour_split_covers_the_range_exactly_once(from_ns: int, length: int) -> None:
    split = HourSplit.of(from_ns, from_ns + length)
    pieces = sorted([(split.hours_from, split.hours_to), *split.edges])
    pieces = [p for p in pieces if p[0] < p[1]]
    assert pieces[0][0] == from_ns and pieces[-1][1] == from_ns + length
    assert all(a[1] == b[0] for a, b in itertools.pairwise(pieces))
    assert split.hours_from % HOUR_NS == 0 and split.hours_to % HOUR_NS == 0


# -- the store as ingested (late duplicates included) -------------------------------------------------


def test_late_duplicates_were_marked_after_being_summed(server: EmbeddedServer) -> None:
    data_dir: Path = server.settings.data_dir
    assert list((data_dir / "llm_dups").glob("project=*/date=*/*.parquet")), "the corpus must produce late dups"
    corpus = _corpus()
    total = assert_costs_equal_scan(server.store, []).total
    assert total.llm_calls == sum(len(t.llm()) for t in corpus)  # each late duplicate is counted once


@pytest.mark.parametrize("group_by", GROUPINGS, ids=lambda g: ",".join(g) or "total")
def test_costs_from_partials_equal_the_scan(server: EmbeddedServer, group_by: list[str]) -> None:
    assert_costs_equal_scan(server.store, group_by)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    group_by=st.sampled_from(GROUPINGS),
    start=st.integers(-2 * 3600, N_TRACES * STEP_S + 3600),
    length=st.integers(1, 30 * 3600),
    sub_second=st.integers(0, NS - 1),
    filters=st.dictionaries(st.sampled_from(sorted(FILTER_VALUES)), st.sampled_from(ANY_VALUE), max_size=2),
)
def test_costs_over_any_range_and_filters_equal_the_scan(
    server: EmbeddedServer, group_by: list[str], start: int, length: int, sub_second: int, filters: dict[str, str]
) -> None:
    from_ns = max(0, T0_NS + start * NS + sub_second)
    assert_costs_equal_scan(server.store, group_by, TimeRange(from_ns, from_ns + length * NS), filters)


@pytest.mark.parametrize(("name", "values"), sorted(FILTER_VALUES.items()))
def test_costs_with_each_filter_equal_the_scan(server: EmbeddedServer, name: str, values: list[str]) -> None:
    for value in values:
        assert_costs_equal_scan(server.store, ["model", "day"], TimeRange(), {name: value})


def test_user_and_session_keys_scan_the_spans(server: EmbeddedServer) -> None:
    assert not rollups.usable(["model", "user"], [])
    assert not rollups.usable(["session"], [])
    body = ok(server, "/v1/costs?group_by=session")
    assert body["total"] == ok(server, "/v1/costs?group_by=")["total"]


def test_sessions_table_equals_grouped_traces(server: EmbeddedServer) -> None:
    got = assert_sessions_equal_traces(server)
    assert got, "the corpus has sessions"


# -- after compaction, deletion and retention (a store of its own) --------------------------------------


@pytest.fixture
def mutable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    with EmbeddedServer(query_settings(tmp_path_factory)) as srv:
        first, rest = _late_parents_first_children(_corpus())
        for half in (first, rest[: N_TRACES // 2], rest[N_TRACES // 2 :]):  # several flush files per partition
            export(srv, half)
        yield srv


def _check_everything(server: EmbeddedServer) -> None:
    for group_by in GROUPINGS:
        assert_costs_equal_scan(server.store, group_by)
    middle = T0_NS + N_TRACES * STEP_S * NS // 2 + 12_345_678
    assert_costs_equal_scan(server.store, ["model", "hour"], TimeRange(middle - 5 * 3600 * NS, middle))
    assert_sessions_equal_traces(server)


def test_partials_follow_compaction(mutable: EmbeddedServer) -> None:
    store = mutable.store
    _check_everything(mutable)
    summed = store.partials.files_summed
    stats = Compactor(mutable.settings.data_dir, CompactionOptions(), committed_lsn=lambda: 2**62).run_once()
    assert stats.files_in > stats.files_out > 0
    _check_everything(mutable)
    assert store.partials.files_summed == summed + stats.files_out  # only the new files were summed


def test_partials_and_sessions_follow_session_deletion(mutable: EmbeddedServer) -> None:
    before = assert_sessions_equal_traces(mutable)
    victim = before[len(before) // 2]["session_id"]
    assert_costs_equal_scan(mutable.store, ["model"])
    status, body = get(mutable, f"/v1/sessions/{victim}", method="DELETE")
    assert status == 200 and body["spans_deleted"] > 0
    after = assert_sessions_equal_traces(mutable)
    assert victim not in {s["session_id"] for s in after}
    _check_everything(mutable)
    remaining = sum(s["llm_calls"] for s in after) + _unsessioned_calls(mutable)
    assert ok(mutable, "/v1/costs?group_by=model")["total"]["llm_calls"] == remaining


def _unsessioned_calls(server: EmbeddedServer) -> int:
    rows = server.store.table_rows(
        "SELECT coalesce(sum(llm_calls), 0)::BIGINT AS n FROM traces WHERE project = $project AND session_id IS NULL",
        {"project": PROJECT},
    )
    return int(rows[0]["n"])


def test_partials_and_sessions_follow_retention(mutable: EmbeddedServer) -> None:
    _check_everything(mutable)
    dates = sorted(p.name for p in (mutable.settings.data_dir / "spans" / f"project={PROJECT}").iterdir())
    assert len(dates) >= 2
    last_day = dt.date.fromisoformat(dates[-1].removeprefix("date="))  # every earlier date expires
    now = dt.datetime.combine(last_day, dt.time(12), tzinfo=dt.timezone.utc) + dt.timedelta(days=1)
    report = cleanup(mutable.settings.data_dir, RetentionPolicy(default_days=1), dry_run=False, now=now)
    assert report.partitions > 0
    _check_everything(mutable)
    days = {g["key"]["day"] for g in ok(mutable, "/v1/costs?group_by=day")["groups"]}
    assert days == {last_day.isoformat()}
