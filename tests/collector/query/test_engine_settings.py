"""`--query-engine` values, and bound values reaching ClickHouse unchanged (the chdb parameter text)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmscope_collector.query.clickhouse.client import ChdbClient, EngineUrlError, connect
from llmscope_collector.settings import Settings, SettingsError


@pytest.mark.parametrize("engine", ["mysql://db", "clickhouse", "duck"])
def test_an_unknown_engine_is_refused_naming_the_setting(engine: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="LLMSCOPE_QUERY_ENGINE"):
        dataclasses.replace(Settings(data_dir=tmp_path), query_engine=engine).validate()


@pytest.mark.parametrize("url", ["clickhouse:///llmscope", "clickhouse://host:8123/bad-name", "postgres://h/db"])
def test_a_clickhouse_url_needs_a_host_and_a_plain_database_name(url: str, tmp_path: Path) -> None:
    with pytest.raises(EngineUrlError):
        connect(url, tmp_path)


@pytest.fixture(scope="module")
def chdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbClient]:
    client = ChdbClient(tmp_path_factory.mktemp("chdb"))
    try:
        yield client
    finally:
        client.close()


@settings(max_examples=60, deadline=None)
@given(
    text=st.text(max_size=40), items=st.lists(st.text(max_size=10), max_size=4), number=st.integers(-(2**63), 2**63 - 1)
)
def test_bound_values_arrive_unchanged(chdb: ChdbClient, text: str, items: list[str], number: int) -> None:
    text, items = text.replace("\x00", ""), [i.replace("\x00", "") for i in items]
    row = chdb.rows(
        "SELECT {t:String} AS t, {a:Array(String)} AS a, {n:Int64} AS n, {z:Nullable(String)} AS z",
        {"t": text, "a": items, "n": number, "z": None},
    )[0]
    assert row == {"t": text, "a": items, "n": number, "z": None}
