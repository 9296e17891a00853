"""`llmscope sql`: read-only SQL over one project's views, on a store the real server wrote.

The store is the generated corpus sent over OTLP/gRPC plus scores posted to the API; a second
project is a copy of the first one's partitions under another name (real files the views must
not reach). Each refused query is one an attacker would try: writing, reading files, another
project, changing settings, loading extensions, running forever.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from llmscope_collector.cli import main
from llmscope_collector.query import sandbox
from llmscope_collector.server import EmbeddedServer
from llmscope_collector.sql_command import EXIT_FAILED, EXIT_REFUSED, EXIT_TIMEOUT, run_sql
from llmscope_collector.storage.layout import DATASETS
from llmscope_collector.storage.schema import SCORE_COLUMNS, SPAN_COLUMNS, TRACE_COLUMNS, names, without_content
from tests.collector.query.conftest import query_settings
from tests.collector.query.dataset import GenTrace, export, generate


def post_scores(server: EmbeddedServer, scores: list[dict[str, object]]) -> None:
    request = urllib.request.Request(
        f"{server.api_url}/v1/scores/batch",
        data=json.dumps({"scores": scores}).encode(),
        method="POST",
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=15) as response:
        assert response.status == 201
    server.collector.flush()


@pytest.fixture(scope="module")
def corpus() -> list[GenTrace]:
    return generate(7, 40)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, corpus: list[GenTrace]) -> Path:
    """The store as the server left it (stopped: `llmscope sql` needs no server), plus project "other"."""
    with EmbeddedServer(query_settings(tmp_path_factory)) as server:
        export(server, corpus)
        post_scores(
            server, [{"name": "helpfulness", "value": n % 4 / 4, "trace_id": t.trace_id} for n, t in enumerate(corpus)]
        )
        data = server.settings.data_dir
    for dataset in DATASETS:  # "other": the same files under another project's name
        source = data / dataset / "project=default"
        if source.is_dir():
            shutil.copytree(source, data / dataset / "project=other")
    return data


def sql(data_dir: Path, query: str, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["sql", "--data-dir", str(data_dir), *args, query])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_views_answer_from_the_projects_data(
    data_dir: Path, corpus: list[GenTrace], capsys: pytest.CaptureFixture[str]
) -> None:
    query = """SELECT (SELECT count(*) FROM spans) AS spans, (SELECT count(*) FROM traces) AS traces,
                      (SELECT count(*) FROM scores) AS scores, (SELECT count(*) FROM sessions) AS sessions"""
    code, out, _ = sql(data_dir, query, "--format", "json", capsys=capsys)
    assert code == 0
    (row,) = json.loads(out)
    assert row["spans"] == sum(len(t.spans) for t in corpus)
    assert row["traces"] == len(corpus)
    assert row["scores"] == len(corpus)
    assert row["sessions"] == len({t.session for t in corpus if t.session})


def test_trace_totals_match_the_corpus(
    data_dir: Path, corpus: list[GenTrace], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = sql(
        data_dir,
        "SELECT trace_id, llm_calls, total_tokens FROM traces ORDER BY trace_id",
        "--format",
        "csv",
        capsys=capsys,
    )
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    expected = sorted((t.trace_id, len(t.llm()), t.total_tokens) for t in corpus)
    assert [(r["trace_id"], int(r["llm_calls"]), int(r["total_tokens"])) for r in rows] == expected


def test_every_declared_column_is_a_view_column(data_dir: Path) -> None:
    conn = sandbox.open_project(data_dir, "default")
    try:
        traces = without_content(TRACE_COLUMNS)  # the previews only with --content
        for view, columns in (("spans", SPAN_COLUMNS), ("traces", traces), ("scores", SCORE_COLUMNS)):
            batches = list(sandbox.run(conn, f"SELECT * FROM {view} LIMIT 0"))  # noqa: S608 - test constant
            assert set(names(columns)) <= set(batches[0].schema.names), view
    finally:
        conn.close()


def test_a_project_sees_only_its_own_rows(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, default, _ = sql(data_dir, "SELECT DISTINCT project FROM spans", "--format", "jsonl", capsys=capsys)
    _, other, _ = sql(
        data_dir, "SELECT DISTINCT project FROM spans", "--project", "other", "--format", "jsonl", capsys=capsys
    )
    assert [json.loads(line) for line in default.splitlines()] == [{"project": "default"}]
    assert [json.loads(line) for line in other.splitlines()] == [{"project": "other"}]
    code, _, err = sql(data_dir, "SELECT 1", "--project", "../other", capsys=capsys)
    assert code == EXIT_REFUSED and "not a project name" in err
    code, _, err = sql(data_dir, "SELECT 1", "--memory-limit", "lots", capsys=capsys)
    assert code == EXIT_REFUSED and "cannot open" in err and "Traceback" not in err


def test_content_is_a_view_only_when_asked_for(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = sql(data_dir, "SELECT count(*) AS n FROM content", capsys=capsys)
    assert code == EXIT_FAILED and "content" in err
    code, out, _ = sql(data_dir, "SELECT count(*) AS n FROM content", "--content", "--format", "json", capsys=capsys)
    assert code == 0 and json.loads(out)[0]["n"] > 0
    # The traces' previews are captured content too.
    query = "SELECT count(preview_input) AS n FROM traces"
    code, _, err = sql(data_dir, query, capsys=capsys)
    assert code == EXIT_FAILED and "preview_input" in err
    code, out, _ = sql(data_dir, query, "--content", "--format", "json", capsys=capsys)
    assert code == 0 and json.loads(out)[0]["n"] > 0


def _attacks(data_dir: Path) -> list[str]:
    other = data_dir / "spans" / "project=other"
    return [
        f"SELECT * FROM read_parquet('{other}/*/*.parquet')",  # noqa: S608 - attacks
        f"SELECT * FROM read_parquet('{data_dir}/spans/project=default/../project=other/*/*.parquet')",  # noqa: S608 - attacks
        f"SELECT * FROM read_parquet('{data_dir}/content/project=default/*/*.parquet')",  # noqa: S608 - content not asked for
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_text('/proc/self/environ')",
        f"SELECT * FROM glob('{data_dir}/*')",  # noqa: S608 - attacks
        f"COPY (SELECT * FROM spans) TO '{data_dir}/spans/project=default/x.csv'",  # noqa: S608 - attacks
        "COPY spans TO '/tmp/leak.csv'",
        f"ATTACH '{data_dir}/x.duckdb' AS x",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "SET lock_configuration = false",
        "SET VARIABLE x = 1",
        "RESET allowed_directories",
        "PRAGMA enable_profiling",
        "CREATE TABLE t AS SELECT * FROM spans",
        "INSERT INTO _llmscope.spans SELECT * FROM _llmscope.spans",
        "DROP VIEW spans",
        "CALL pragma_version()",
        f"EXPORT DATABASE '{data_dir}/dump'",
        "SELECT 1; COPY spans TO '/tmp/leak.csv'",
        "SELECT * FROM query('COPY spans TO ''/tmp/leak.csv''')",
        "SELECT * FROM read_parquet('https://example.com/x.parquet')",
        "SELECT * FROM data_dir",  # a name of this Python process's frames (replacement scans are off)
    ]


def test_writes_files_settings_and_other_projects_are_refused(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = sorted(str(p) for p in data_dir.rglob("*"))
    for query in _attacks(data_dir):
        code, out, err = sql(data_dir, query, capsys=capsys)
        assert code in (EXIT_REFUSED, EXIT_FAILED), (query, code, out)
        assert out == "" and err.startswith("llmscope sql: "), query
    assert sorted(str(p) for p in data_dir.rglob("*")) == before  # nothing written anywhere in the store
    assert not Path("/tmp/leak.csv").exists()


def test_statement_kinds_are_refused_with_a_clear_message(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = sql(data_dir, "COPY spans TO '/tmp/leak.csv'", capsys=capsys)
    assert code == EXIT_REFUSED and "only SELECT" in err and "COPY" in err
    code, _, err = sql(data_dir, "SELECT * FROM read_csv('/etc/passwd')", capsys=capsys)
    assert code == EXIT_REFUSED and "beyond this project's views" in err


def test_a_query_past_its_time_limit_is_stopped(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = sql(data_dir, "SELECT count(*) FROM range(1000000000000) a", "--timeout", "0.5", capsys=capsys)
    assert code == EXIT_TIMEOUT and "time limit" in err and out == ""


def test_stdin_file_and_the_table_format(data_dir: Path, tmp_path: Path) -> None:
    query = "SELECT name, count(*) AS n FROM scores GROUP BY name"
    proc = subprocess.run(
        [sys.executable, "-m", "llmscope_collector", "sql", "--data-dir", str(data_dir), "-"],
        input=query,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split(" | ") == ["name       ", "n"] or lines[0].replace(" ", "") == "name|n"
    assert lines[2].replace(" ", "") == "helpfulness|40"
    assert lines[-1] == "(1 row)"
    file = tmp_path / "q.sql"
    file.write_text(query)
    out = io.StringIO()
    args = argparse.Namespace(
        query=None,
        file=file,
        project="default",
        content=False,
        format="csv",
        max_rows=10,
        timeout=30.0,
        memory_limit="1GB",
        data_dir=data_dir,
    )
    assert run_sql(args, out) == 0
    assert out.getvalue() == "name,n\nhelpfulness,40\n"
