"""After `DELETE /v1/sessions/S` or a retention run, no copy of the deleted text is left anywhere
under the data dir, the write-ahead log included; acknowledged data that was not deleted still
survives a restart; files are 0600 and directories 0700 (issue 15 item 5).

"Anywhere" is checked two ways: the raw bytes of every file (the WAL holds the OTLP requests
as received, uncompressed), and every cell of every Parquet file (zstd-compressed, so a byte
search would prove nothing there).
"""

from __future__ import annotations

import dataclasses
import json
import stat
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from llmscope_collector.server import EmbeddedServer
from llmscope_collector.settings import Settings
from tests.collector.query.dataset import GenSpan, GenTrace, export, generate, get, ok


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    base = Settings(
        host="127.0.0.1",
        otlp_grpc_port=0,
        otlp_http_port=0,
        api_port=0,
        data_dir=tmp_path / "data",
        flush_interval_s=0.2,
        compaction_interval_s=0,
        retention_days=0,
        retention_interval_s=0,
        alerts_tick_s=0,
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


def _files(data_dir: Path) -> list[Path]:
    return sorted(p for p in data_dir.rglob("*") if p.is_file())


def _raw_hits(data_dir: Path, texts: Iterable[str]) -> dict[str, list[str]]:
    wanted = [t.encode() for t in texts]
    hits: dict[str, list[str]] = {}
    for path in _files(data_dir):
        data = path.read_bytes()
        for text in wanted:
            if text in data:
                hits.setdefault(text.decode(), []).append(str(path.relative_to(data_dir)))
    return hits


def _parquet_hits(data_dir: Path, texts: Iterable[str]) -> dict[str, list[str]]:
    wanted = list(texts)
    hits: dict[str, list[str]] = {}
    for path in _files(data_dir):
        if path.suffix != ".parquet":
            continue
        cells = json.dumps(pq.read_table(path).to_pylist(), default=str)
        for text in wanted:
            if text in cells:
                hits.setdefault(text, []).append(str(path.relative_to(data_dir)))
    return hits


def _session_texts(corpus: list[GenTrace], session: str) -> set[str]:
    """Prompt texts and answers' first lines (what the trace list's previews hold) only this session's spans carry."""
    mine = {x for t in corpus if t.session == session for s in t.spans for x in _said(s) if x}
    others = {x for t in corpus if t.session != session for s in t.spans for x in _said(s) if x}
    return mine - others


def _said(span: GenSpan) -> tuple[str, str]:
    return span.text, span.answer.split("\n")[0]


def _assert_private(data_dir: Path) -> None:
    loose = []
    for path in [data_dir, *data_dir.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if mode & 0o077 or (path.is_dir() and mode != 0o700) or (path.is_file() and mode != 0o600):
            loose.append(f"{path.relative_to(data_dir)}: {oct(mode)}")
    assert not loose


@pytest.mark.parametrize("wal_segment_bytes", [64 * 1024 * 1024, 20_000])  # one active segment; several
def test_deleted_session_text_is_nowhere_on_disk_and_the_rest_survives_a_restart(
    tmp_path: Path, wal_segment_bytes: int
) -> None:
    settings = _settings(tmp_path, wal_segment_bytes=wal_segment_bytes)
    corpus = generate(31, 60)
    victim = "sess-3"
    texts = _session_texts(corpus, victim)
    kept = {t.trace_id for t in corpus if t.session != victim}
    assert texts and kept
    data_dir = settings.data_dir
    victim_scores, kept_scores = _scores(corpus, victim)
    texts |= {s["comment"] for s in victim_scores}
    with EmbeddedServer(settings) as server:
        export(server, corpus)
        _post_scores(server, [*victim_scores, *kept_scores])  # through the WAL, like spans
        server.collector.flush()
        assert any("wal" in p for hits in _raw_hits(data_dir, texts).values() for p in hits)  # the copy to remove
        comments = {s["comment"] for s in victim_scores}
        assert set(_parquet_hits(data_dir, comments)) == comments  # stored before the deletion
        previews = _parquet_hits(data_dir, texts)  # the trace summaries' previews hold some too
        assert any(p.startswith("traces/") for hits in previews.values() for p in hits), previews
        status, report = get(server, f"/v1/sessions/{victim}", method="DELETE")
        assert status == 200 and report["traces_deleted"] > 0, report
        assert report["scores_deleted"] == len(victim_scores), report
        assert _raw_hits(data_dir, texts) == {}
        assert _parquet_hits(data_dir, texts) == {}
        _assert_private(data_dir)
        later = generate(32, 5)
        export(server, later)  # acknowledged after the deletion: in the WAL, maybe not yet in Parquet
    with EmbeddedServer(settings) as server:  # replay: nothing deleted comes back, nothing kept is lost
        listed = {t["trace_id"] for t in ok(server, "/v1/traces?limit=1000")["traces"]}
        assert listed == kept | {t.trace_id for t in later}
        assert _raw_hits(data_dir, texts) == {} and _parquet_hits(data_dir, texts) == {}
        stored = {s["comment"] for s in ok(server, "/v1/scores?limit=1000")["scores"]}
        assert stored == {s["comment"] for s in kept_scores}
        _assert_private(data_dir)


def _scores(corpus: list[GenTrace], victim: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Scores on the victim session, on one of its traces and on one of its spans (each with a comment
    found nowhere else), and on a trace and a session that are kept."""
    mine = next(t for t in corpus if t.session == victim)
    other = next(t for t in corpus if t.session not in (victim, None))
    victim_scores = [
        {"name": "tone", "value": "curt", "session_id": victim, "comment": "victim-session-score-c0mment"},
        {"name": "quality", "value": 0.2, "trace_id": mine.trace_id, "comment": "victim-trace-score-c0mment"},
        {
            "name": "thumbs",
            "value": False,
            "trace_id": mine.trace_id,
            "span_id": mine.spans[-1].span_id,
            "comment": "victim-span-score-c0mment",
        },
    ]
    kept_scores = [
        {"name": "quality", "value": 0.9, "trace_id": other.trace_id, "comment": "kept-trace-score"},
        {"name": "tone", "value": "warm", "session_id": other.session, "comment": "kept-session-score"},
    ]
    return victim_scores, kept_scores


def _post_scores(server: EmbeddedServer, scores: list[dict[str, Any]]) -> None:
    req = urllib.request.Request(
        f"{server.api_url}/v1/scores/batch",
        data=json.dumps({"scores": scores}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=15) as resp:
        assert resp.status == 201


def test_retention_leaves_no_copy_in_the_wal(tmp_path: Path) -> None:
    settings = _settings(tmp_path, retention_days=30)  # the corpus is from March 2026: all of it expires
    corpus = generate(33, 20)
    texts = {x for t in corpus for s in t.spans for x in _said(s) if x}
    with EmbeddedServer(settings) as server:
        export(server, corpus)
        server.collector.flush()
        assert _raw_hits(settings.data_dir, texts)
        report = server.collector.cleanup(dry_run=False)
        assert report.partitions > 0
        assert _raw_hits(settings.data_dir, texts) == {}
        assert _parquet_hits(settings.data_dir, texts) == {}
        assert ok(server, "/v1/traces?limit=1000")["traces"] == []


def resent_by_another_session(corpus: list[GenTrace], victim: str) -> tuple[GenSpan, GenTrace]:
    """A span of `victim` whose user message no other session sent, and a new trace of another session
    sending the same message the same day (a retried or copied prompt): its content item has the same hash."""
    said = next(
        s
        for t in corpus
        if t.session == victim
        for s in t.spans
        if "gen_ai.input.messages" in s.attrs and s.text in _session_texts(corpus, victim)
    )
    again = dataclasses.replace(
        said,
        trace_id="ab" * 16,
        span_id="cd" * 8,
        parent=None,
        start_ns=said.start_ns + 1_000,
        end_ns=said.end_ns + 1_000,
        attrs={**said.attrs, "session.id": "sess-1"},
    )
    return said, GenTrace(again.trace_id, [again], again.service, "sess-1", None, "gold", None)


def test_content_a_deleted_session_held_is_stored_again_for_a_later_span(tmp_path: Path) -> None:
    """The content store skips items its partition stored recently; a deletion that removed an item as
    an orphan must make it forget that, or a later span of another session sending the same message
    (same hash, same day) would point at content that is no longer there."""
    settings = _settings(tmp_path)
    corpus = generate(31, 60)
    said, later = resent_by_another_session(corpus, "sess-3")
    with EmbeddedServer(settings) as server:
        export(server, corpus)
        status, report = get(server, "/v1/sessions/sess-3", method="DELETE")
        assert status == 200 and report["content_items_deleted"] > 0, report
        assert _parquet_hits(settings.data_dir, [said.text]) == {}
        export(server, [later])
        span = ok(server, f"/v1/spans/{later.trace_id}/{later.spans[0].span_id}")
        assert said.text in json.dumps(span["attributes"]), span
        assert _parquet_hits(settings.data_dir, [said.text])  # stored again, in the content files
