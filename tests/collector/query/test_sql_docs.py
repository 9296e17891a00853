"""docs/sql.md's "best average score per dollar" query, exactly as written there, run both ways the doc
shows (`llmscope sql`, and DuckDB over `llmscope.Client`'s tables) on a store with known data; the
answer is checked against one computed from the traces and scores sent."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

import llmscope
from llmscope_collector.cli import main
from llmscope_collector.server import EmbeddedServer
from tests.collector.query.conftest import query_settings
from tests.collector.query.dataset import GenTrace, export, generate
from tests.collector.query.test_sql_command import post_scores

DOC = Path(__file__).resolve().parents[3] / "docs" / "sql.md"


def doc_query() -> str:
    match = re.search(r"<!-- best-score-per-dollar -->\n```sql\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert match, "docs/sql.md lost its best-score-per-dollar query"
    return match.group(1)


def helpfulness(n: int) -> float:
    return (n * 5 % 9) / 8


@pytest.fixture(scope="module")
def corpus() -> list[GenTrace]:
    return generate(31, 60, step_s=300)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, corpus: list[GenTrace]) -> Iterator[EmbeddedServer]:
    with EmbeddedServer(query_settings(tmp_path_factory)) as server:
        export(server, corpus)
        scores: list[dict[str, Any]] = []
        for n, trace in enumerate(corpus):
            scores.append({"name": "helpfulness", "value": helpfulness(n), "trace_id": trace.trace_id})
            scores.append({"name": "tone", "value": "calm", "trace_id": trace.trace_id})  # another score: ignored
            span = trace.spans[-1].span_id  # a span's score: not the trace's, left out by the query
            scores.append({"name": "helpfulness", "value": 0.0, "trace_id": trace.trace_id, "span_id": span})
        # the first trace's score given again with a new value under the same id: the later one counts
        scores[0] = {**scores[0], "id": "first"}
        post_scores(server, scores)
        post_scores(server, [{**scores[0], "value": 1.0}])
        yield server


def expected(corpus: list[GenTrace]) -> list[dict[str, Any]]:
    """The answer from the data sent: per prompt version, the priced traces that used it."""
    pairs: dict[str, list[tuple[float, Decimal]]] = defaultdict(list)
    for n, trace in enumerate(corpus):
        cost = trace.cost
        if cost is None or cost <= 0:
            continue
        value = 1.0 if n == 0 else helpfulness(n)
        for name, version in trace.prompts:
            pairs[f"{name}@{version}"].append((value, cost))
    rows = []
    for prompt, values in pairs.items():
        avg_score = sum(v for v, _ in values) / len(values)
        avg_cost = float(sum(c for _, c in values)) / len(values)
        rows.append(
            {
                "prompt": prompt,
                "scored_traces": len(values),
                "avg_score": round(avg_score, 3),
                "avg_cost_usd": round(avg_cost, 5),
                "score_per_dollar": round(avg_score / avg_cost, 1),
            }
        )
    return sorted(rows, key=lambda r: -r["score_per_dollar"])


def test_the_doc_query_with_llmscope_sql(
    server: EmbeddedServer, corpus: list[GenTrace], capsys: pytest.CaptureFixture[str]
) -> None:
    answer = expected(corpus)
    assert len(answer) == 3 and len({r["score_per_dollar"] for r in answer}) == 3  # a clear winner
    code = main(["sql", "--data-dir", str(server.settings.data_dir), "--format", "json", doc_query()])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out) == answer


def test_the_doc_query_over_the_clients_tables(server: EmbeddedServer, corpus: list[GenTrace]) -> None:
    client = llmscope.Client(server.api_url)
    traces = client.traces()  # noqa: F841 - read by DuckDB by name
    scores = client.scores(name="helpfulness")  # noqa: F841
    rows = duckdb.sql(doc_query()).fetchall()
    answer = expected(corpus)
    assert [dict(zip(answer[0], row, strict=True)) for row in rows] == answer
