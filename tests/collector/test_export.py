"""`GET /v1/export` and `llmscope export`: the trace list's filters select, every page is walked, the
rows stream as JSON lines, CSV or Parquet with the declared export schema (`query.export`, docs/
export.md), captured content only on request, over real HTTP from a real server."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import time
import tracemalloc
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llmscope_collector.api.controllers import export as encode
from llmscope_collector.cli import main
from llmscope_collector.query import export
from llmscope_collector.query.filters import TimeRange, TraceQuery
from llmscope_collector.server import EmbeddedServer
from tests import otlp_factory as f
from tests.collector.query.conftest import query_settings
from tests.collector.query.dataset import GenTrace, generate
from tests.collector.query.dataset import export as send_corpus


def _send(server: EmbeddedServer, traces: int, service: str) -> list[str]:
    """`traces` traces of a root span and one child each, over OTLP/HTTP."""
    start = time.time_ns()
    spans, ids = [], []
    for n in range(traces):
        trace_id, root = f.new_trace_id(), f.new_span_id()
        ids.append(trace_id.hex())
        spans.append(f.span(trace_id, root, "root", start + n, start + n + 2_000_000))
        spans.append(f.span(trace_id, f.new_span_id(), "child", start + n + 1, start + n + 1_000_000, parent=root))
    body = f.request(spans, service=service).SerializeToString()
    req = urllib.request.Request(
        f"http://127.0.0.1:{server.http_port}/v1/traces", data=body, headers={"content-type": "application/x-protobuf"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    return ids


def _get(server: EmbeddedServer, query: str) -> tuple[dict[str, str], bytes]:
    with urllib.request.urlopen(f"{server.api_url}/v1/export?{query}", timeout=60) as resp:
        return dict(resp.headers), resp.read()


def _jsonl(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in body.splitlines()]


def _parquet(body: bytes) -> pq.ParquetFile:
    return pq.ParquetFile(pa.BufferReader(body))


def _plain(type_: pa.DataType) -> pa.DataType:
    """A type with its list items unnamed (Parquet names them `element`, Arrow `item`)."""
    if pa.types.is_list(type_):
        return pa.list_(_plain(type_.value_type))
    if pa.types.is_struct(type_):
        return pa.struct([pa.field(f.name, _plain(f.type), f.nullable) for f in type_])
    return type_


def _declared(parquet: pq.ParquetFile, schema: pa.Schema) -> bool:
    """The file has exactly the declared columns, types, nullability and key-value metadata."""
    got = parquet.schema_arrow
    fields = [(f.name, _plain(f.type), f.nullable) for f in got]
    return fields == [(f.name, _plain(f.type), f.nullable) for f in schema] and got.metadata == schema.metadata


def _json_rows(table: pa.Table) -> list[dict[str, Any]]:
    """Parquet rows as the JSON lines export writes them (maps as objects)."""
    rows = table.to_pylist()
    for name in (field.name for field in table.schema if pa.types.is_map(field.type)):
        for row in rows:
            row[name] = None if row[name] is None else dict(row[name])
    return rows


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    # The walk crosses many pages and span reads with a handful of traces.
    monkeypatch.setattr(export, "PAGING", export.Paging(traces=3, spans=4, content_spans=4))
    monkeypatch.setattr(encode, "ROW_GROUP_ROWS", 4)  # and Parquet writes a row group every page or two


@pytest.mark.usefixtures("small_pages")
def test_export_streams_every_selected_trace_and_span(server: EmbeddedServer, tmp_path: Path) -> None:
    search = _send(server, 7, "search")
    other = _send(server, 2, "billing")
    server.collector.flush()
    req = urllib.request.Request(
        f"{server.api_url}/v1/scores/batch",
        data=json.dumps({"scores": [{"name": "q", "value": 1, "trace_id": t} for t in search[:4]]}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(req, timeout=10).close()
    server.collector.flush()

    headers, body = _get(server, "format=jsonl")
    rows = _jsonl(body)
    assert headers["content-type"].startswith("application/x-ndjson")
    assert headers["x-llmscope-export-version"] == str(export.EXPORT_VERSION)
    assert sorted(r["trace_id"] for r in rows) == sorted(search + other)
    assert [r["start_time_unix_nano"] for r in rows] == sorted(r["start_time_unix_nano"] for r in rows)
    assert list(rows[0]) == export.export_schema("traces").names
    assert {r["export_version"] for r in rows} == {export.EXPORT_VERSION}

    _, body = _get(server, "format=jsonl&service=search&level=spans")
    spans = _jsonl(body)
    assert len(spans) == 14 and {s["trace_id"] for s in spans} == set(search)
    assert {s["name"] for s in spans} == {"root", "child"}
    assert list(spans[0]) == export.export_schema("spans").names

    headers, body = _get(server, "format=csv&level=spans&service=billing")
    table = list(csv.reader(io.StringIO(body.decode())))
    assert headers["content-type"].startswith("text/csv") and table[0] == export.export_schema("spans").names
    assert len(table) == 1 + 4 and {row[1] for row in table[1:]} == set(other)
    assert {row[0] for row in table[1:]} == {str(export.EXPORT_VERSION)}

    out = tmp_path / "scored.csv"
    code = main(["export", "--url", server.api_url, "--format", "csv", "--filter", "score.q>=1", "-o", str(out)])
    assert code == 0
    exported = list(csv.DictReader(out.open()))
    assert sorted(r["trace_id"] for r in exported) == sorted(search[:4])
    assert all(json.loads(r["services"]) == ["search"] for r in exported)  # lists are JSON in a cell


@pytest.mark.usefixtures("small_pages")
def test_parquet_export_has_the_declared_schema_and_the_rows_of_json_lines(
    server: EmbeddedServer, tmp_path: Path
) -> None:
    corpus = generate(2101, 12)
    send_corpus(server, corpus)
    server.collector.flush()
    for level in export.LEVELS:
        headers, body = _get(server, f"format=parquet&level={level}")
        assert headers["content-type"] == "application/vnd.apache.parquet"
        assert headers["x-llmscope-export-version"] == str(export.EXPORT_VERSION)
        parquet = _parquet(body)
        declared = export.export_schema(level)  # types, nullability and the version in the metadata
        assert _declared(parquet, declared), level
        assert parquet.metadata.metadata[b"llmscope.export_version"] == str(export.EXPORT_VERSION).encode()
        assert parquet.metadata.num_row_groups > 1  # written as the pages came, not at the end
        _, lines = _get(server, f"format=jsonl&level={level}")
        assert _json_rows(parquet.read()) == _jsonl(lines), level

    spans = _parquet(_get(server, "format=parquet&level=spans")[1]).read().to_pylist()
    expected = {s.span_id: s for t in corpus for s in t.spans}
    assert sorted(r["span_id"] for r in spans) == sorted(expected)
    for row in spans:
        span = expected[row["span_id"]]
        assert (row["trace_id"], row["name"], row["start_ns"], row["end_ns"]) == (
            span.trace_id,
            span.name,
            span.start_ns,
            span.end_ns,
        )
        if span.model is not None:  # an LLM call: usage as sent; a nested duplicate is marked
            assert (row["request_model"], row["input_tokens"], row["output_tokens"]) == (
                span.model,
                span.input_tokens,
                span.output_tokens,
            )
            assert row["llm_dup"] is (not span.counted)
            assert row["cost_usd"] is None or isinstance(row["cost_usd"], float)

    out = tmp_path / "spans.parquet"
    assert main(["export", "--url", server.api_url, "--format", "parquet", "--level", "spans", "-o", str(out)]) == 0
    assert pq.read_table(out).num_rows == len(expected)


def _texts(corpus: list[GenTrace]) -> set[str]:
    """Prompts and the answers' first lines (what the trace list's previews hold): content, never exported
    unless asked for."""
    return {x for t in corpus for s in t.spans for x in (s.text, s.answer.split("\n")[0]) if x}


def test_captured_content_is_exported_only_on_request(server: EmbeddedServer, tmp_path: Path) -> None:
    corpus = generate(2102, 15)
    texts = _texts(corpus)
    assert texts
    send_corpus(server, corpus)
    server.collector.flush()
    for query in ("format=jsonl&level=spans", "format=csv&level=spans", "format=jsonl"):
        body = _get(server, query)[1].decode()
        assert not [t for t in texts if t in body], query
    plain = _parquet(_get(server, "format=parquet&level=spans")[1]).read()
    assert "content" not in plain.column_names and not [t for t in texts if t in json.dumps(plain.to_pylist())]

    body = _get(server, "format=parquet&level=spans&content=true")[1]
    parquet = _parquet(body)
    assert _declared(parquet, export.export_schema("spans", content=True))
    by_span = {r["span_id"]: r["content"] for r in parquet.read().to_pylist()}
    for span in (s for t in corpus for s in t.spans):
        # The span's input message and its answer, rehydrated from the content dataset.
        got = {(i["kind"], i["source"]): json.loads(i["value"]) for i in by_span[span.span_id]}
        want = {}
        if span.text:
            want["input", "gen_ai.input.messages"] = {"role": "user", "parts": [{"type": "text", "content": span.text}]}
        if span.answer:
            answer = {"role": "assistant", "parts": [{"type": "text", "content": span.answer}]}
            want["output", "gen_ai.output.messages"] = answer
        assert got == want, span.name
    lines = _jsonl(_get(server, "format=jsonl&level=spans&content=true")[1])
    assert {r["span_id"]: r["content"] for r in lines} == by_span

    with pytest.raises(urllib.error.HTTPError) as info:
        _get(server, "format=jsonl&level=traces&content=true")
    assert info.value.code == 400 and b"level=spans" in info.value.read()

    out = tmp_path / "with-content.jsonl"
    assert main(["export", "--url", server.api_url, "--content", "-o", str(out)]) == 0  # --content: per span
    exported = _jsonl(out.read_bytes())
    said = {json.loads(i["value"])["parts"][0]["content"] for r in exported for i in r["content"]}
    assert {r["span_id"] for r in exported} == set(by_span) and all(any(t in x for x in said) for t in texts)


def test_export_refuses_invalid_filters_before_streaming(server: EmbeddedServer) -> None:
    for query in ("format=xml", "level=rows", "min_cost=abc", "score.x>=abc", "content=maybe"):
        with pytest.raises(urllib.error.HTTPError) as info:
            _get(server, query)
        assert info.value.code == 400, query
    assert main(["export", "--url", server.api_url, "--filter", "noequals"]) == 2


@dataclasses.dataclass
class _Run:
    """One export consumed: the bytes it produced, the memory held each time it asked for its next
    page (Python objects by tracemalloc, Arrow buffers by Arrow's pool), the pages read before its
    first chunk went out, and the peak of Python objects while pages were read (the Parquet footer
    written at the end grows with the row groups, a few hundred bytes per column each)."""

    total: int = 0
    python: list[int] = dataclasses.field(default_factory=list)
    arrow: list[int] = dataclasses.field(default_factory=list)
    pages: int = 0
    pages_before_first_chunk: int | None = None
    peak: int = 0


def _measured(tables: Iterator[pa.Table], format_: str, schema: pa.Schema) -> _Run:
    run = _Run()

    def watched() -> Iterator[pa.Table]:
        for table in tables:
            current, peak = tracemalloc.get_traced_memory()
            run.python.append(current)
            run.arrow.append(pa.total_allocated_bytes())
            run.peak = max(run.peak, peak)
            tracemalloc.reset_peak()
            run.pages += 1
            yield table

    tracemalloc.start()
    try:
        for chunk in encode.ENCODERS[format_](watched(), schema):
            run.total += len(chunk)
            if run.pages_before_first_chunk is None:
                run.pages_before_first_chunk = run.pages
        return run
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedServer, list[GenTrace]]]:
    corpus = generate(2103, 400)
    with EmbeddedServer(query_settings(tmp_path_factory)) as server:
        send_corpus(server, corpus)
        server.collector.flush()
        yield server, corpus


@pytest.mark.parametrize("format_", ["jsonl", "csv", "parquet"])
def test_export_memory_stays_flat_across_pages(
    large: tuple[EmbeddedServer, list[GenTrace]], monkeypatch: pytest.MonkeyPatch, format_: str
) -> None:
    """With small pages and row groups, exporting four times the traces takes four times the bytes
    and no more memory, and what the export holds does not grow with what it has already sent."""
    monkeypatch.setattr(encode, "CHUNK_BYTES", 4096)
    monkeypatch.setattr(encode, "ROW_GROUP_ROWS", 60)
    server, corpus = large
    quarter = TraceQuery(time=TimeRange(to_ns=corpus[len(corpus) // 4].start_ns))
    schema = export.export_schema("spans", content=True)
    runs = {}
    for name, query in (("quarter", quarter), ("all", TraceQuery())):
        paging = export.Paging(traces=16, spans=30, content_spans=30)
        tables = server.exports.tables(server.store, "default", query, "spans", content=True, paging=paging)
        runs[name] = _measured(tables, format_, schema)
    small, run = runs["quarter"], runs["all"]
    assert run.pages >= 40 and run.pages_before_first_chunk is not None
    assert run.pages_before_first_chunk < run.pages / 4  # streamed as the pages came
    assert _flat(run.arrow, 16 * 1024)  # no growth with the pages already sent (Parquet's pending rows)
    assert _flat(run.python, 64 * 1024)  # (JSON lines' and CSV's rows; a little noise from other threads)
    assert run.peak < 1.5 * small.peak + 64 * 1024, (small.peak, run.peak)  # 4x the rows, not more memory
    assert run.total > 3.5 * small.total


def _flat(held: list[int], slack: int) -> bool:
    """The last third of the pages held no more than the first third (give or take `slack` bytes)."""
    third = len(held) // 3
    early, late = max(held[:third]), max(held[-third:])
    return late <= 1.5 * early + slack
