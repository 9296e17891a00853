"""`GET /v1/export`: the traces the trace list's filters select, or their spans (with their captured
content on request), streamed as JSON lines, CSV or Parquet with bounded memory.

What the rows hold, and their versioned schema, is `query.export` (docs/export.md); this module
encodes the pages it produces as they come: JSON lines and CSV in chunks of about 64 KiB, Parquet
through `pyarrow.parquet.ParquetWriter` over a sink drained after each row group. The schema version
travels in every export: the `export_version` column, the Parquet key-value metadata and the
`x-llmscope-export-version` header.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from typing import Annotated, Any, Literal

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.exceptions import ClientException, ServiceUnavailableException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter, SkipValidation
from litestar.response import Stream

from llmscope_collector.api.controllers.traces import TRACE_FILTERS, UNAUTHENTICATED, Store
from llmscope_collector.api.schemas import ErrorBody
from llmscope_collector.query.export import (
    EXPORT_VERSION,
    ContentNotPerTrace,
    ExportReader,
    Level,
    export_schema,
)
from llmscope_collector.query.filters import TraceQuery

CHUNK_BYTES = 64 * 1024  # rows are sent in chunks of about this size
# A Parquet row group is written once this many rows (or bytes of Arrow data) are buffered: big
# enough for columnar compression and fast reads, small enough to bound the server's memory.
ROW_GROUP_ROWS = 64 * 1024
ROW_GROUP_BYTES = 16 * 1024 * 1024
Format = Literal["jsonl", "csv", "parquet"]
MEDIA_TYPES: dict[str, str] = {
    "jsonl": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}
VERSION_HEADER = "x-llmscope-export-version"
# The export reader as handlers take it (an object of the server, not request data: not validated).
ExportReaderDependency = NamedDependency[SkipValidation[ExportReader | None]]


class ExportController(Controller):
    path = "/v1/export"
    tags = ["export"]
    dependencies = {"trace_filters": TRACE_FILTERS}

    @get(
        "/",
        operation_id="export",
        summary="Stream the filtered traces (or their spans) as JSON lines, CSV or Parquet; the trace list's filters",
        description=f"Columns: docs/export.md, schema version {EXPORT_VERSION} (in the `export_version` column, "
        f"the Parquet metadata and the `{VERSION_HEADER}` header). `content=true` (with `level=spans`) adds each "
        "span's captured content.",
        responses={400: ResponseSpec(data_container=ErrorBody, description="Invalid parameter"), **UNAUTHENTICATED},
        sync_to_thread=True,
    )
    def export(
        self,
        store: Store,
        caller_project: NamedDependency[str],
        trace_filters: NamedDependency[TraceQuery],
        export_reader: ExportReaderDependency,
        format_: Annotated[Format, QueryParameter(name="format")] = "jsonl",
        level: Annotated[Level, QueryParameter(description="one row per trace, or per span")] = "traces",
        content: Annotated[
            bool, QueryParameter(description="add each span's captured content (level=spans only)")
        ] = False,
    ) -> Stream:
        if export_reader is None:
            raise ServiceUnavailableException("this server has no export reader (create_app without `exports`)")
        try:
            tables = export_reader.tables(store, caller_project, trace_filters, level, content)
        except ContentNotPerTrace as exc:
            raise ClientException(str(exc)) from None
        # The first page is read here, before the response starts: a failing query is an error
        # status, not a cut stream.
        first = next(tables, None)
        pages = itertools.chain([] if first is None else [first], tables)
        schema = export_schema(level, content)
        body = ENCODERS[format_](pages, schema)
        suffix = "-content" if content else ""
        filename = f"llmscope-{caller_project}-{level}{suffix}.{format_}"
        return Stream(
            body,
            media_type=MEDIA_TYPES[format_],
            headers={
                "content-disposition": f'attachment; filename="{filename}"',
                VERSION_HEADER: str(EXPORT_VERSION),
            },
        )


ROWS_AT_ONCE = 1000  # rows turned into Python objects at a time (JSON lines, CSV)


def _rows(tables: Iterator[pa.Table]) -> Iterator[dict[str, Any]]:
    """The rows of the tables as dicts, a slice of them made at a time."""
    for table in tables:
        for start in range(0, table.num_rows, ROWS_AT_ONCE):
            yield from table.slice(start, ROWS_AT_ONCE).to_pylist()


def jsonl_chunks(tables: Iterator[pa.Table], schema: pa.Schema) -> Iterator[bytes]:
    """A JSON object per row, keys in column order; maps as objects, lists and structs as JSON."""
    maps = [f.name for f in schema if pa.types.is_map(f.type)]
    encoder = msgspec.json.Encoder()
    buffer = bytearray()
    for row in _rows(tables):
        for name in maps:
            if row[name] is not None:
                row[name] = dict(row[name])
        encoder.encode_into(row, buffer, -1)
        buffer += b"\n"
        if len(buffer) >= CHUNK_BYTES:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


def csv_chunks(tables: Iterator[pa.Table], schema: pa.Schema) -> Iterator[bytes]:
    """CSV with a header; lists, maps and structs in a cell are JSON, null is an empty cell."""
    maps = {f.name for f in schema if pa.types.is_map(f.type)}
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(schema.names)
    for row in _rows(tables):
        writer.writerow([_cell(value, name in maps) for name, value in row.items()])
        if text.tell() >= CHUNK_BYTES:
            yield text.getvalue().encode()
            text.seek(0)
            text.truncate()
    if text.tell():
        yield text.getvalue().encode()


def _cell(value: Any, is_map: bool) -> Any:
    if value is None:
        return ""
    if is_map:
        return msgspec.json.encode(dict(value)).decode()
    if isinstance(value, dict | list):
        return msgspec.json.encode(value).decode()
    return value


class _Sink:
    """A write-only file the Parquet writer writes to; `drain()` hands over what was written so far."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._position = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self._buffer += data
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True

    def writable(self) -> bool:
        return True

    def drain(self) -> Iterator[bytes]:
        data, self._buffer = self._buffer, bytearray()
        for start in range(0, len(data), CHUNK_BYTES):
            yield bytes(data[start : start + CHUNK_BYTES])


def parquet_chunks(tables: Iterator[pa.Table], schema: pa.Schema) -> Iterator[bytes]:
    """One Parquet file (zstd), a row group per ~64k rows (or 16 MiB) of pages, sent as it is written."""
    sink = _Sink()
    writer = pq.ParquetWriter(sink, schema, compression="zstd")
    pending: list[pa.Table] = []
    rows = size = 0
    for table in tables:
        pending.append(table)
        rows += table.num_rows
        size += table.nbytes
        if rows >= ROW_GROUP_ROWS or size >= ROW_GROUP_BYTES:
            writer.write_table(pa.concat_tables(pending), row_group_size=rows)
            pending, rows, size = [], 0, 0
            yield from sink.drain()
    if pending:
        writer.write_table(pa.concat_tables(pending), row_group_size=rows)
    writer.close()
    yield from sink.drain()


ENCODERS = {"jsonl": jsonl_chunks, "csv": csv_chunks, "parquet": parquet_chunks}
