"""Retention on the ClickHouse engine: the collector's policy (a default and per-project overrides, 0 keeping
forever) becomes the tables' TTL, and ClickHouse keeps exactly the dates the file retention keeps.

Span files are written for several projects over the last days; the loader (chdb) loads them with a
policy; once the TTL is applied (`OPTIMIZE … FINAL` runs the merge that applies it), the (project, date)
pairs left in every table are those `storage.retention.is_expired` keeps. A changed policy is applied
to the rows already stored; an unchanged one is not applied again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmscope_collector.query.clickhouse import sql
from llmscope_collector.query.clickhouse.client import ChdbClient
from llmscope_collector.query.clickhouse.loader import DirectorySource, Loader
from llmscope_collector.storage.retention import RetentionPolicy, is_expired
from tests.collector.alerts.traffic import Call, write_calls

PROJECTS = ("short", "keep", "other")
DAYS_BACK = range(0, 9)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[ChdbClient]:
    chdb = ChdbClient(tmp_path / "chdb")  # one chdb engine per process: closed before the next test opens one
    try:
        chdb.use("llmscope")
        yield chdb
    finally:
        chdb.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    now = dt.datetime.now(dt.timezone.utc)
    for project in PROJECTS:
        calls = [Call(at=(now - dt.timedelta(days=back, hours=1)).timestamp()) for back in DAYS_BACK]
        write_calls(tmp_path / "data", calls, project=project)
    return tmp_path / "data"


def _stored(client: ChdbClient) -> set[tuple[str, str]]:
    for table in sql.RETAINED_TABLES:
        client.command(f"OPTIMIZE TABLE {table} FINAL", {})  # the merge that applies the TTL, now
    rows = client.rows("SELECT DISTINCT project, toString(date) AS date FROM spans", {})
    return {(r["project"], r["date"]) for r in rows}


def _kept(data_dir: Path, policy: RetentionPolicy) -> set[tuple[str, str]]:
    now = dt.datetime.now(dt.timezone.utc)
    return {
        (project.name.removeprefix("project="), date.name.removeprefix("date="))
        for project in (data_dir / "spans").iterdir()
        for date in project.iterdir()
        if not is_expired(date.name.removeprefix("date="), policy.days_for(project.name.removeprefix("project=")), now)
    }


def test_per_project_retention_keeps_what_the_file_retention_keeps(client: ChdbClient, data_dir: Path) -> None:
    policy = RetentionPolicy.parse(5, "short=2, keep=0")
    loader = Loader(client, DirectorySource(data_dir), retention_days=5, project_days=policy.project_days)
    loader.refresh()
    stored = _stored(client)
    assert stored == _kept(data_dir, policy)
    assert {p for p, _ in stored} == set(PROJECTS)
    assert len({d for p, d in stored if p == "keep"}) == len(DAYS_BACK)  # 0 keeps forever
    assert len({d for p, d in stored if p == "short"}) < len({d for p, d in stored if p == "other"}) < len(DAYS_BACK)


def test_a_changed_policy_applies_to_the_stored_rows_and_an_unchanged_one_is_not_applied_again(
    client: ChdbClient, data_dir: Path
) -> None:
    Loader(client, DirectorySource(data_dir)).refresh()  # no retention: everything kept
    assert _stored(client) == _kept(data_dir, RetentionPolicy.parse(0, ""))
    policy = RetentionPolicy.parse(0, "other=1")
    Loader(client, DirectorySource(data_dir), project_days=policy.project_days)
    assert _stored(client) == _kept(data_dir, policy)
    Loader(client, DirectorySource(data_dir), project_days=policy.project_days)  # a restart, same policy
    settings = client.rows("SELECT count() AS n FROM engine_settings WHERE name = 'retention_ttl'", {})
    assert settings[0]["n"] == 1
