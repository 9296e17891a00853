"""Hypothesis strategies for OTLP values (the receivers' fuzz tests)."""

from __future__ import annotations

from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList


def any_value_trees(
    scalars: st.SearchStrategy[AnyValue], keys: st.SearchStrategy[str], *, max_leaves: int
) -> st.SearchStrategy[AnyValue]:
    """`scalars`, and arrays / key-value lists of them nested to any depth (up to `max_leaves`)."""
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3).map(lambda vs: AnyValue(array_value=ArrayValue(values=vs))),
            st.lists(st.tuples(keys, inner), max_size=3).map(
                lambda kvs: AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key=k, value=v) for k, v in kvs]))
            ),
        ),
        max_leaves=max_leaves,
    )
