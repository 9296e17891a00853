"""The span columns derived from others when a span file is written (`schema.DERIVED_SPAN_COLUMNS`).

The decoder fills only `SPAN_COLUMNS`; the writer adds these to each file it writes, and compaction
to the rows of older files it rewrites (a file of schema version < 4 lacks them). Each is computed
from whole Arrow columns (no per-span Python): the ingest path pays a few array operations a flush.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from llmscope_collector.storage.schema import DERIVED_SPAN_COLUMNS


def _pair_heads(kinds: pa.Array) -> pa.Array:
    """Each ref's `[kind,` in JSON: the kinds are few (dictionary-encoded), each encoded once by msgspec."""
    encoded = pc.dictionary_encode(kinds)
    heads = [f"[{msgspec.json.encode(kind).decode()}," for kind in encoded.dictionary.to_pylist()]
    return pc.coalesce(pc.take(pa.array(heads, pa.string()), encoded.indices), pa.scalar("[null,"))


def _content_sizes(refs: pa.Array) -> pa.Array:
    """Each span's refs as JSON `[[kind, bytes], ...]` (a null ref as `null`), built from whole arrays:
    ~0.6 µs a span at ingest (a 33k-span file, 80k refs, on a loaded machine; ~1.2 with per-item escaping).
    A constant prefix or suffix goes on by `binary_replace_slice`, not an element-wise join with a scalar
    (Arrow's join runs generic code per row): a flush's 10k spans, 24k refs, 1.63 -> 1.15 ms for the two; the
    whole derivation 3,125 -> 2,764 instructions a span (callgrind)."""
    offsets = refs.offsets  # (of a sliced array: into its parent's items, from the slice's first)
    first, last = offsets[0].as_py(), offsets[-1].as_py()
    items = refs.values.slice(first, last - first)
    sizes = pc.coalesce(pc.cast(items.field("bytes"), pa.string()), pa.scalar("null"))
    pairs = pc.binary_join_element_wise(_pair_heads(items.field("kind")), _suffixed(sizes, "]"), "")
    if items.null_count:
        pairs = pc.if_else(items.is_null(), pa.scalar("null"), pairs)
    rebased = pc.subtract(offsets, pa.scalar(first, offsets.type))  # (a fresh array: the mask needs one)
    lists = pa.ListArray.from_arrays(rebased, pairs, mask=refs.is_null())
    joined = pc.binary_replace_slice(pc.binary_join(lists, ","), start=0, stop=0, replacement="[")
    return _suffixed(joined, "]")


def _suffixed(values: pa.Array, suffix: str) -> pa.Array:
    """Each value with `suffix` appended (a null stays null): a slice from past any value's end is empty at its end."""
    return pc.binary_replace_slice(values, start=_PAST_END, stop=_PAST_END, replacement=suffix)


_PAST_END = 2**31 - 1  # beyond any string's length (their offsets are int32)


# Derived column → (its source column, the derivation of one array of the source).
_DERIVATIONS: dict[str, tuple[str, Callable[[pa.Array], pa.Array]]] = {
    "content_sizes": ("content_refs", _content_sizes),
}
if set(_DERIVATIONS) != {c.name for c in DERIVED_SPAN_COLUMNS}:
    raise RuntimeError("every derived span column needs a derivation here, and only those")
_TYPES = {c.name: c.type for c in DERIVED_SPAN_COLUMNS}


def derived_column(name: str, data: pa.Table | pa.RecordBatch) -> pa.Array | pa.ChunkedArray | None:
    """Column `name` derived from `data`'s columns, or None when `name` is not derived or its source is missing."""
    derivation = _DERIVATIONS.get(name)
    if derivation is None or derivation[0] not in data.schema.names:
        return None
    source, derive = derivation
    column = data.column(source)
    if isinstance(column, pa.ChunkedArray):
        return pa.chunked_array([derive(chunk) for chunk in column.chunks], type=_TYPES[name])
    return derive(column)


def with_derived(table: pa.Table) -> pa.Table:
    """`table` (span rows as decoded) with the derived columns appended, computed from it."""
    for column in DERIVED_SPAN_COLUMNS:
        values = derived_column(column.name, table)
        if values is None:
            raise KeyError(f"span rows lack the source of derived column {column.name!r}")
        index = table.schema.get_field_index(column.name)
        if index >= 0:
            table = table.set_column(index, column.field(), values)
        else:
            table = table.append_column(column.field(), values)
    return table
