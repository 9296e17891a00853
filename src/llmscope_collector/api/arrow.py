"""Arrow IPC responses (`Accept: application/vnd.apache.arrow.stream`): rows as record batches.

The trace list, `GET /v1/spans` and the score list answer notebooks and `llmscope.Client` in
Arrow's streaming format: a schema, then record batches as they are produced (one page of rows
at a time, so memory stays bounded), then the end-of-stream marker. The columns are those of the
API's own structs (`arrow_schema` derives them from the msgspec types, which the storage
declaration derives in turn), so a DataFrame has the JSON response's fields under the same names;
nested values (events, maps) travel as JSON text.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from typing import Any

import msgspec
import pyarrow as pa
from litestar import Request
from litestar.response import Stream

ARROW_STREAM = "application/vnd.apache.arrow.stream"
BATCH_ROWS = 1000
_SCALARS: dict[type, pa.DataType] = {
    msgspec.inspect.StrType: pa.string(),
    msgspec.inspect.LiteralType: pa.string(),
    msgspec.inspect.IntType: pa.int64(),
    msgspec.inspect.FloatType: pa.float64(),
    msgspec.inspect.BoolType: pa.bool_(),
}
_json = msgspec.json.Encoder()


def wants_arrow(request: Request[Any, Any, Any]) -> bool:
    return ARROW_STREAM in request.headers.get("accept", "")


def _arrow_type(info: msgspec.inspect.Type) -> tuple[pa.DataType, bool]:
    """(Arrow type, whether the value is sent as JSON text) of a msgspec field type."""
    if isinstance(info, msgspec.inspect.UnionType):
        others = [t for t in info.types if not isinstance(t, msgspec.inspect.NoneType)]
        if len(others) == 1:
            return _arrow_type(others[0])
        return pa.string(), True
    scalar = _SCALARS.get(type(info))
    if scalar is not None:
        return scalar, False
    if isinstance(info, msgspec.inspect.ListType) and type(info.item_type) in _SCALARS:
        return pa.list_(_SCALARS[type(info.item_type)]), False
    return pa.string(), True


def arrow_schema(struct: type[msgspec.Struct], leading: tuple[pa.Field, ...] = ()) -> pa.Schema:
    """The columns of a response struct (after `leading` ones); JSON-text columns are marked in metadata."""
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    fields = list(leading)
    for field in info.fields:
        type_, as_json = _arrow_type(field.type)
        fields.append(pa.field(field.name, type_, metadata={b"llmscope.json": b"1"} if as_json else None))
    return pa.schema(fields)


def _column(schema_field: pa.Field, rows: list[dict[str, Any]]) -> list[Any]:
    values = [row.get(schema_field.name) for row in rows]
    if schema_field.metadata and schema_field.metadata.get(b"llmscope.json"):
        return [None if v is None else _json.encode(v).decode() for v in values]
    return values


def batches(rows: Iterable[dict[str, Any]], schema: pa.Schema, size: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """Rows (dicts of builtins) as record batches of up to `size` rows."""
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield _batch(chunk, schema)
            chunk = []
    if chunk:
        yield _batch(chunk, schema)


def _batch(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array(_column(f, rows), type=f.type) for f in schema], schema=schema)


def _taken(sink: io.BytesIO) -> bytes:
    data = sink.getvalue()
    sink.seek(0)
    sink.truncate()
    return data


def ipc_chunks(schema: pa.Schema, source: Iterator[pa.RecordBatch]) -> Iterator[bytes]:
    """The IPC stream of `source`: each batch's bytes are sent as soon as it is made."""
    sink = io.BytesIO()
    writer = pa.ipc.new_stream(sink, schema)
    yield _taken(sink)
    for batch in source:
        writer.write_batch(batch)
        yield _taken(sink)
    writer.close()
    yield _taken(sink)


class ArrowStream(Stream):
    """A `Stream` whose content type is Arrow's even from a handler declared to answer JSON (Litestar
    gives the handler's media type precedence over the response's for streams)."""

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> Any:
        return super().to_asgi_response(*args, **{**kwargs, "media_type": ARROW_STREAM})


def arrow_response(schema: pa.Schema, source: Iterator[pa.RecordBatch], filename: str) -> Stream:
    """A streamed Arrow response. The first batch is made before answering, so a bad request (an
    invalid cursor, an unknown filter) is a 400 with a JSON body, not a broken stream."""
    first = next(source, None)

    def all_batches() -> Iterator[pa.RecordBatch]:
        if first is not None:
            yield first
            yield from source

    return ArrowStream(
        ipc_chunks(schema, all_batches()),
        media_type=ARROW_STREAM,
        headers={"content-disposition": f'attachment; filename="{filename}.arrows"'},
    )
