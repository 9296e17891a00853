"""Sort the trace list by a score, and a score's metrics by model and prompt version, over the API.

The generated corpus goes through OTLP/gRPC, scores through `POST /v1/scores/batch`; the answers
are checked against a brute-force model computed from the generated traces and the scores sent.
"""

from __future__ import annotations

import json
import math
import urllib.parse
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

from llmscope_collector.query.score_metrics import quantile
from llmscope_collector.server import EmbeddedServer
from tests.collector.query.conftest import query_settings
from tests.collector.query.dataset import GenTrace, export, generate, get, ok
from tests.collector.query.test_sql_command import post_scores

HOUR_NS = 3600 * 10**9


def trace_score(n: int) -> float:
    return (n * 7 % 11) / 10


def span_score(n: int) -> float:
    return (n * 3 % 5) / 4


def scores_for(corpus: list[GenTrace]) -> list[dict[str, Any]]:
    """A numeric score on every trace; on every third trace also one on its first span (the trace's sort
    key is then the average of both); a categorical verdict on every trace; each given at its trace's start."""
    scores: list[dict[str, Any]] = []
    for n, trace in enumerate(corpus):
        at = trace.start_ns
        scores.append({"name": "quality", "value": trace_score(n), "trace_id": trace.trace_id, "time_unix_nano": at})
        if n % 3 == 0:
            span = trace.spans[0].span_id
            scores.append(
                {
                    "name": "quality",
                    "value": span_score(n),
                    "trace_id": trace.trace_id,
                    "span_id": span,
                    "time_unix_nano": at,
                }
            )
        verdict = ("good", "bad", "meh")[n % 3]
        scores.append({"name": "verdict", "value": verdict, "trace_id": trace.trace_id, "time_unix_nano": at})
    return scores


def expected_key(n: int) -> float:
    values = [trace_score(n), *([span_score(n)] if n % 3 == 0 else [])]
    return sum(values) / len(values)


@pytest.fixture(scope="module")
def corpus() -> list[GenTrace]:
    return generate(11, 45, step_s=900)


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory, corpus: list[GenTrace]) -> Iterator[EmbeddedServer]:
    with EmbeddedServer(query_settings(tmp_path_factory)) as server:
        export(server, corpus)
        post_scores(server, scores_for(corpus))
        yield server


def _pages(server: EmbeddedServer, params: dict[str, str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = ok(server, "/v1/traces?" + urllib.parse.urlencode(query))
        rows += page["traces"]
        cursor = page["next_cursor"]
        if cursor is None:
            return rows


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_the_trace_list_sorts_by_a_score_page_after_page(
    scored: EmbeddedServer, corpus: list[GenTrace], order: str
) -> None:
    rows = _pages(scored, {"sort": "score.quality", "order": order, "limit": "7"})
    expected = sorted(((expected_key(n), t.trace_id) for n, t in enumerate(corpus)), reverse=order == "desc")
    assert [r["trace_id"] for r in rows] == [trace for _, trace in expected]


def test_a_score_sort_lists_only_scored_traces_and_keeps_the_filters(
    scored: EmbeddedServer, corpus: list[GenTrace]
) -> None:
    assert _pages(scored, {"sort": "score.nobody-gave-this"}) == []
    assert _pages(scored, {"sort": "score.verdict"}) == []  # categorical: no value to sort by
    rows = _pages(scored, {"sort": "score.quality", "order": "asc", "service": "search", "limit": "3"})
    expected = sorted((expected_key(n), t.trace_id) for n, t in enumerate(corpus) if t.service == "search")
    assert [r["trace_id"] for r in rows] == [trace for _, trace in expected]


def test_a_cursor_of_another_sort_is_refused(scored: EmbeddedServer) -> None:
    page = ok(scored, "/v1/traces?sort=score.quality&limit=2")
    assert page["next_cursor"]
    query = urllib.parse.urlencode({"sort": "score.verdict", "limit": "2", "cursor": page["next_cursor"]})
    body = _bad(scored, f"/v1/traces?{query}")
    assert "cursor" in json.dumps(body)
    assert "sort" in json.dumps(_bad(scored, "/v1/traces?sort=score."))


def _bad(server: EmbeddedServer, path: str) -> Any:
    status, body = get(server, path)
    assert status == 400, (path, status, body)
    return body


def _expected_groups(corpus: list[GenTrace], group_by: str) -> dict[str | None, list[float]]:
    values: dict[str | None, list[float]] = defaultdict(list)
    for n, trace in enumerate(corpus):
        if group_by == "model":
            keys: list[str | None] = sorted(trace.models)
        else:
            keys = sorted(f"{name}@{version}" for name, version in trace.prompts)
        for key in keys or [None]:
            values[key].append(trace_score(n))
            if n % 3 == 0:
                values[key].append(span_score(n))
    return values


@pytest.mark.parametrize("group_by", ["model", "prompt"])
def test_score_metrics_by_model_and_prompt_version(
    scored: EmbeddedServer, corpus: list[GenTrace], group_by: str
) -> None:
    body = ok(scored, f"/v1/metrics/scores?name=quality&group_by={group_by}&interval=1h")
    expected = _expected_groups(corpus, group_by)
    assert [g["key"] for g in body["groups"]] == sorted(expected, key=lambda k: (k is None, k or ""))
    for group in body["groups"]:
        values = sorted(expected[group["key"]])
        stats = group["stats"]
        assert stats["count"] == len(values) and stats["labels"] == {}
        assert math.isclose(stats["avg"], sum(values) / len(values))
        assert (stats["min"], stats["max"]) == (values[0], values[-1])
        assert math.isclose(stats["p50"], quantile(values, 0.5) or 0) and math.isclose(
            stats["p90"], quantile(values, 0.9) or 0
        )
    # the points are the same values split by hour: per key, the counts add up to the group's
    per_key: dict[str | None, int] = defaultdict(int)
    for point in body["points"]:
        assert point["time_unix_nano"] % HOUR_NS == 0
        per_key[point["key"]] += point["stats"]["count"]
    assert per_key == {g["key"]: g["stats"]["count"] for g in body["groups"]}


def test_a_categorical_score_has_a_label_distribution(scored: EmbeddedServer, corpus: list[GenTrace]) -> None:
    body = ok(scored, "/v1/metrics/scores?name=verdict&interval=1d")
    (group,) = body["groups"]
    n = len(corpus)
    assert group["key"] is None and group["stats"]["avg"] is None
    assert group["stats"]["labels"] == {"bad": (n + 1) // 3, "good": (n + 2) // 3, "meh": n // 3}


def test_score_metrics_over_a_time_range(scored: EmbeddedServer, corpus: list[GenTrace]) -> None:
    start = corpus[10].start_ns
    end = corpus[20].start_ns
    body = ok(scored, f"/v1/metrics/scores?name=quality&from={start}&to={end}")
    expected = sum(1 + (n % 3 == 0) for n in range(len(corpus)) if start <= corpus[n].start_ns < end)
    assert body["groups"][0]["stats"]["count"] == expected
