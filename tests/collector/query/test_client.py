"""`llmscope.Client` against the real server over loopback: traces, spans and scores as Arrow tables
(the API's `Accept: application/vnd.apache.arrow.stream` answers), the same rows as the JSON API."""

from __future__ import annotations

import io
import urllib.parse
from collections.abc import Iterator
from typing import Any

import msgspec
import pyarrow as pa
import pytest

import llmscope
from llmscope_collector.api.arrow import arrow_schema, batches, ipc_chunks
from llmscope_collector.query.models import Score
from llmscope_collector.server import EmbeddedServer
from tests.collector.query.conftest import query_settings
from tests.collector.query.dataset import GenTrace, export, generate, ok
from tests.collector.query.test_score_sort_and_metrics import expected_key, scores_for
from tests.collector.query.test_sql_command import post_scores


@pytest.fixture(scope="module")
def corpus() -> list[GenTrace]:
    return generate(23, 36, step_s=600)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, corpus: list[GenTrace]) -> Iterator[EmbeddedServer]:
    with EmbeddedServer(query_settings(tmp_path_factory)) as server:
        export(server, corpus)
        post_scores(server, scores_for(corpus))
        yield server


@pytest.fixture
def client(server: EmbeddedServer) -> Iterator[llmscope.Client]:
    with llmscope.Client(server.api_url) as client:
        yield client


def _json_rows(server: EmbeddedServer, params: dict[str, str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": "1000", **({"cursor": cursor} if cursor else {})}
        page = ok(server, "/v1/traces?" + urllib.parse.urlencode(query))
        rows += page["traces"]
        cursor = page["next_cursor"]
        if cursor is None:
            return rows


def test_traces_are_the_trace_lists_rows(server: EmbeddedServer, client: llmscope.Client) -> None:
    table = client.traces()
    assert isinstance(table, pa.Table)
    assert table.to_pylist() == _json_rows(server, {})
    assert table.num_rows == 36


def test_filters_sorts_and_a_limit(server: EmbeddedServer, client: llmscope.Client, corpus: list[GenTrace]) -> None:
    table = client.traces(service="search", sort="cost", order="asc")
    assert table.to_pylist() == _json_rows(server, {"service": "search", "sort": "cost", "order": "asc"})
    assert client.traces(sort="tokens", limit=5).to_pylist() == ok(server, "/v1/traces?sort=tokens&limit=5")["traces"]
    by_score = client.traces(sort="score.quality", order="desc")
    expected = sorted(((expected_key(n), t.trace_id) for n, t in enumerate(corpus)), reverse=True)
    assert by_score.column("trace_id").to_pylist() == [trace for _, trace in expected]
    gold = client.traces(filters={"attr.app.tier": "gold", "score.quality>": "0.5"})
    assert gold.to_pylist() == _json_rows(server, {"attr.app.tier": "gold", "score.quality>": "0.5"})
    assert 0 < gold.num_rows < 36


def test_spans_of_the_selected_traces(client: llmscope.Client, corpus: list[GenTrace]) -> None:
    spans = client.spans()
    assert spans.num_rows == sum(len(t.spans) for t in corpus)
    assert sorted(zip(spans["trace_id"].to_pylist(), spans["span_id"].to_pylist(), strict=True)) == sorted(
        (t.trace_id, s.span_id) for t in corpus for s in t.spans
    )
    search = client.spans(service="search")
    assert set(search["trace_id"].to_pylist()) == {t.trace_id for t in corpus if t.service == "search"}
    assert "prompt_version" in spans.column_names and "cost_usd" in spans.column_names


def test_scores_in_a_range_and_of_one_trace(client: llmscope.Client, corpus: list[GenTrace]) -> None:
    every = client.scores()
    assert every.num_rows == len(scores_for(corpus))
    assert every.schema.names == [f.name for f in msgspec.structs.fields(Score)]
    quality = client.scores(name="quality")
    assert set(quality["name"].to_pylist()) == {"quality"}
    one = client.scores(trace_id=corpus[0].trace_id)
    assert set(one["trace_id"].to_pylist()) == {corpus[0].trace_id} and one.num_rows == 3
    frame = quality.to_pandas()  # pandas is in the test environment
    assert len(frame) == quality.num_rows and frame["value"].between(0, 1).all()


def test_a_refused_request_and_an_unreachable_server_say_why(client: llmscope.Client) -> None:
    with pytest.raises(llmscope.ClientError) as refused:
        client.traces(cursor="not-a-cursor")
    assert refused.value.status == 400 and "cursor" in refused.value.detail
    with pytest.raises(llmscope.ClientError) as unknown:
        client.spans(min_tokens=-1)
    assert unknown.value.status == 400
    with pytest.raises(llmscope.ClientError) as down:
        llmscope.Client("http://127.0.0.1:9", timeout=5).traces()
    assert down.value.status is None and "cannot reach" in str(down.value)


def test_the_json_answer_is_unchanged_and_spans_need_arrow(server: EmbeddedServer) -> None:
    assert set(ok(server, "/v1/traces?limit=1")) == {"traces", "next_cursor"}
    from tests.collector.query.dataset import get

    status, body = get(server, "/v1/spans")
    assert status == 406 and "arrow" in body["detail"]


def test_the_stream_sends_each_batch_as_it_is_made() -> None:
    schema = arrow_schema(Score)
    rows = [{"id": str(n), "name": "q", "value": n / 10, "time_ns": n} for n in range(35)]
    chunks = list(ipc_chunks(schema, batches(iter(rows), schema, size=10)))
    assert len(chunks) == 1 + 4 + 1  # schema, 4 batches, end of stream
    table = pa.ipc.open_stream(io.BytesIO(b"".join(chunks))).read_all()
    assert table.column("value").to_pylist() == [n / 10 for n in range(35)]
    assert table.column("comment").null_count == 35
