"""Read-only SQL over one project's stored data (`llmscope sql`, docs/sql.md).

A user's SQL text runs on its own in-memory DuckDB that can see exactly one project: the views
`spans`, `traces`, `sessions` and `scores` (and `content`, only when asked for) read that project's
Parquet files, and nothing else is reachable. The guard is in layers, each enough on its own for
what it covers:

1. the statement: parsed by DuckDB (`extract_statements`) and refused unless it is one `SELECT`
   (so no COPY, ATTACH, INSTALL/LOAD, SET/`SET VARIABLE`, PRAGMA, CALL, CREATE, INSERT, EXPORT ...);
2. the engine: after the views are made, `allowed_directories` is set to the project's partition
   folders of the datasets the views read, `enable_external_access` is turned off (no other file,
   no network, no extension install) and the configuration is locked, so no statement can undo it;
   Python replacement scans are off (a name in the query never reaches this process's variables);
3. time and memory: a timer interrupts the query at its time limit; DuckDB's memory limit caps it.

The views' columns are derived from the dataset declarations (`storage.schema`) and the same
builders as the API's queries (`query.sql`): a declared column appears in `llmscope sql` too.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from llmscope_collector.query import sql
from llmscope_collector.storage.layout import (
    CONTENT_DIR,
    LLM_DUPS_DIR,
    SCORES_DIR,
    SPANS_DIR,
    TRACES_DIR,
    project_glob,
    valid_project,
)
from llmscope_collector.storage.schema import (
    CONTENT_COLUMNS,
    LLM_DUP_COLUMNS,
    SCORE_COLUMNS,
    SPAN_COLUMNS,
    TRACE_COLUMNS,
    Column,
    arrow_schema,
    names,
    without_content,
)

VIEWS = ("spans", "traces", "sessions", "scores")
CONTENT_VIEW = "content"
_PARTITION = [pa.field("project", pa.string()), pa.field("date", pa.date32())]
_EMPTY_SCHEMA = "_llmscope"  # where the typed empty tables the views union with live


class SqlRefused(ValueError):
    """The query is not a single read-only SELECT over the project's views, or reads beyond them."""


class SqlTimeout(RuntimeError):
    """The query ran past its time limit and was interrupted."""


class SqlFailed(RuntimeError):
    """The query is a valid read but DuckDB could not run it (syntax, unknown column, types, memory)."""


def check_read_only(text: str) -> None:
    """Refuse anything but exactly one SELECT statement (DuckDB's own parser decides what the text is)."""
    try:
        statements = duckdb.extract_statements(text)
    except duckdb.Error as exc:
        raise SqlFailed(str(exc)) from None
    if len(statements) != 1:
        raise SqlRefused(f"give exactly one SELECT statement (got {len(statements)})")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise SqlRefused(f"only SELECT queries run here; this is a {kind.name} statement (the data is read-only)")


def _source(data_dir: Path, dataset: str, project: str, columns: tuple[Column, ...]) -> str:
    """The rows of one project's files of `dataset`, every declared column present (older files lack some)."""
    empty = f"{_EMPTY_SCHEMA}.{dataset}"
    glob = project_glob(data_dir, dataset, project)
    if glob is None:
        return f"SELECT * FROM {empty}"  # noqa: S608 - our table names
    quoted = glob.replace("'", "''")
    return f"""SELECT project, date, {", ".join(names(columns))} FROM (
  SELECT * FROM read_parquet('{quoted}', hive_partitioning = true, union_by_name = true)
  UNION ALL BY NAME SELECT * FROM {empty})"""  # noqa: S608 - a path of storage.layout and declared names


def _view_texts(data_dir: Path, project: str, content: bool) -> dict[str, str]:
    spans = _source(data_dir, SPANS_DIR, project, SPAN_COLUMNS)
    dups = _source(data_dir, LLM_DUPS_DIR, project, LLM_DUP_COLUMNS)
    trace_columns = TRACE_COLUMNS if content else without_content(TRACE_COLUMNS)  # previews are content
    deltas = _source(data_dir, TRACES_DIR, project, trace_columns)
    scores = _source(data_dir, SCORES_DIR, project, SCORE_COLUMNS)
    score_columns = ", ".join(["project", "date", *names(SCORE_COLUMNS)])
    views = {
        # `llm_dup` also true for the spans found to be nested duplicates after they were stored.
        "spans": f"""SELECT * REPLACE (coalesce(s.llm_dup, false) OR EXISTS (
    SELECT 1 FROM ({dups}) d WHERE d.trace_id = s.trace_id AND d.span_id = s.span_id) AS llm_dup)
  FROM ({spans}) s""",  # noqa: S608
        "traces": f"""SELECT *, end_ns - start_ns AS duration_ns FROM (
  WITH src AS ({deltas}) {sql.trace_merge(trace_columns)})""",  # noqa: S608
        "sessions": f"""SELECT t.project AS project, t.session_id AS session_id, {sql.session_aggregates(TRACE_COLUMNS)}
  FROM traces t WHERE t.session_id IS NOT NULL GROUP BY t.project, t.session_id""",  # noqa: S608
        # The latest version of each score (a score sent again with its id replaces it).
        "scores": f"""SELECT {score_columns} FROM ({scores})
  QUALIFY row_number() OVER (PARTITION BY id ORDER BY received_ns DESC, time_ns DESC) = 1""",  # noqa: S608
    }
    if content:
        views[CONTENT_VIEW] = _source(data_dir, CONTENT_DIR, project, CONTENT_COLUMNS)
    return views


_DATASETS: dict[str, tuple[Column, ...]] = {
    SPANS_DIR: SPAN_COLUMNS,
    LLM_DUPS_DIR: LLM_DUP_COLUMNS,
    TRACES_DIR: TRACE_COLUMNS,
    SCORES_DIR: SCORE_COLUMNS,
    CONTENT_DIR: CONTENT_COLUMNS,
}


def _create_empty_tables(conn: duckdb.DuckDBPyConnection) -> None:
    """One typed empty table per dataset, from its Arrow schema (so no column type is written twice)."""
    conn.execute(f"CREATE SCHEMA {_EMPTY_SCHEMA}")
    for dataset, columns in _DATASETS.items():
        empty = pa.schema(_PARTITION + list(arrow_schema(columns))).empty_table()
        conn.register("_llmscope_empty", empty)
        conn.execute(f"CREATE TABLE {_EMPTY_SCHEMA}.{dataset} AS SELECT * FROM _llmscope_empty")  # noqa: S608
        conn.unregister("_llmscope_empty")


def open_project(
    data_dir: Path, project: str, *, content: bool = False, memory_limit: str = "1GB", threads: int = 2
) -> duckdb.DuckDBPyConnection:
    """A locked DuckDB connection whose only data are the views of `project` (see the module docstring)."""
    if not valid_project(project):
        raise SqlRefused(f"{project!r} is not a project name (letters, digits, '-' and '_')")
    data_dir = data_dir.resolve()  # the views' globs and the allowed folders must be the same paths
    conn = duckdb.connect(":memory:", config={"python_enable_replacements": False})
    try:
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute(f"SET threads = {int(threads)}")
        conn.execute("SET memory_limit = ?", [memory_limit])
        conn.execute("SET autoinstall_known_extensions = false")
        conn.execute("SET temp_directory = ''")  # no spill folder: it would be readable (DuckDB allows it)
        _create_empty_tables(conn)
        for name, text in _view_texts(data_dir, project, content).items():
            conn.execute(f"CREATE VIEW {name} AS {text}")
        datasets = [SPANS_DIR, LLM_DUPS_DIR, TRACES_DIR, SCORES_DIR, *([CONTENT_DIR] if content else [])]
        allowed = [f"{data_dir / d / f'project={project}'}/" for d in datasets]
        conn.execute("SET allowed_directories = ?", [allowed])
        conn.execute("SET enable_external_access = false")
        conn.execute("SET lock_configuration = true")
    except duckdb.Error as exc:  # a memory limit DuckDB cannot parse, an unreadable file
        conn.close()
        raise SqlFailed(f"cannot open the project's views: {_first_line(exc)}") from None
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def _time_limit(conn: duckdb.DuckDBPyConnection, seconds: float) -> Iterator[threading.Event]:
    fired = threading.Event()

    def interrupt() -> None:
        fired.set()
        conn.interrupt()

    timer = threading.Timer(seconds, interrupt)
    timer.daemon = True
    timer.start()
    try:
        yield fired
    finally:
        timer.cancel()


def run(
    conn: duckdb.DuckDBPyConnection, text: str, *, timeout_s: float = 30.0, batch_rows: int = 10_000
) -> Iterator[pa.RecordBatch]:
    """The result of one read-only query, batch by batch (the time limit covers reading every batch)."""
    check_read_only(text)
    with _time_limit(conn, timeout_s) as fired:
        try:
            relation = conn.sql(text)
            if relation is None:  # (a SELECT always has a result; kept for the type checker)
                return
            # `to_arrow_reader` since DuckDB 1.4 (2.0 dropped the older `fetch_arrow_reader`)
            to_reader: Any = getattr(relation, "to_arrow_reader", None) or relation.fetch_arrow_reader
            reader = to_reader(batch_rows)
            empty = True
            for batch in reader:
                empty = False
                yield batch
            if empty:  # no rows: still the columns (a table or CSV header)
                yield _empty_batch(reader.schema)
        except duckdb.PermissionException as exc:
            raise SqlRefused(
                f"the query reaches beyond this project's views ({', '.join(VIEWS)}): {_first_line(exc)}"
            ) from None
        except duckdb.InterruptException:
            if fired.is_set():
                raise SqlTimeout(f"the query ran past its time limit of {timeout_s:g} s and was stopped") from None
            raise
        except duckdb.Error as exc:
            if fired.is_set():
                raise SqlTimeout(f"the query ran past its time limit of {timeout_s:g} s and was stopped") from None
            raise SqlFailed(str(exc).strip() or type(exc).__name__) from None


def _empty_batch(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([], schema=schema)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
