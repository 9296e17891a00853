"""With `--query-engine` ClickHouse the evaluator reads every rule's metric from ClickHouse, and a rule
fires, escalates and resolves the same as on DuckDB over the same stored files.

Two alert services on the fake clock read one data dir: one through the files (DuckDB, the default),
one through a `ClickHouseStore` (chdb in this process, its loader fed from that data dir). The same
rules — one per metric, some filtered — are ticked at the same instants while traffic is written, and
their events and states are compared.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa
import pytest

from llmscope_collector.alerts.rules import Rule, RuleSpec
from llmscope_collector.alerts.service import AlertService
from llmscope_collector.query.clickhouse.client import ChdbClient
from llmscope_collector.query.clickhouse.loader import DirectorySource, Loader
from llmscope_collector.query.clickhouse.metrics import ClickHouseMetricReader
from llmscope_collector.query.clickhouse.store import ClickHouseStore
from llmscope_collector.storage.layout import SCORES_DIR, part_name
from llmscope_collector.storage.schema import SCORE_SCHEMA
from llmscope_collector.storage.tables import LocalTables

from .conftest import FakeClock
from .traffic import T0, steady, write_calls

MIN = 60.0
NS = 1_000_000_000
RULES: list[dict[str, Any]] = [
    {"metric": "cost_usd", "window": "1h", "alert_threshold": 1.0, "warning_threshold": 0.5},
    {"metric": "error_rate", "window": "10m", "alert_threshold": 0.3, "warning_threshold": 0.1},
    {"metric": "latency_p95", "window": "10m", "alert_threshold": 2000.0},
    {"metric": "latency_p50", "window": "10m", "alert_threshold": 1500.0, "filters": {"model": "claude-sonnet"}},
    {"metric": "ttft_p95", "window": "10m", "alert_threshold": 500.0},
    {"metric": "tokens", "window": "1h", "alert_threshold": 20000.0, "filters": {"service": "search"}},
    {"metric": "request_count", "window": "5m", "alert_threshold": 40.0},
    {"metric": "no_data", "window": "5m", "filters": {"service": "batch"}},
    {"metric": "cost_usd", "window": "month", "alert_threshold": 100.0, "warning_threshold": 2.0},
    {"metric": "score_avg", "score": "helpfulness", "window": "1h", "comparator": "lt", "alert_threshold": 0.5},
]


@pytest.fixture
def clickhouse(data_dir: Path, tmp_path: Path) -> Iterator[ClickHouseStore]:
    client = ChdbClient(tmp_path / "chdb")  # one chdb engine per process: closed before the next test opens one
    try:
        client.use("llmscope")
        yield ClickHouseStore(client, Loader(client, DirectorySource(data_dir)))
    finally:
        client.close()


@pytest.fixture
def services(
    make_service: Callable[..., AlertService], data_dir: Path, tmp_path: Path, clickhouse: ClickHouseStore
) -> tuple[AlertService, AlertService]:
    """(DuckDB, ClickHouse): alert services with their own alert databases over the one data dir."""
    duck = make_service(data_dir=_dir(tmp_path / "duck-alerts"), spans_dir=data_dir)
    house = make_service(data_dir=_dir(tmp_path / "ch-alerts"), spans_dir=data_dir, engine=clickhouse)
    return duck, house


def _dir(path: Path) -> Path:
    path.mkdir()
    return path


def _create(service: AlertService) -> list[Rule]:
    return [
        service.create_rule("default", msgspec.convert({"name": f"r{n}", "every": "1m", **body}, RuleSpec))
        for n, body in enumerate(RULES)
    ]


def _write_scores(data_dir: Path, scores: list[tuple[str, float, float]], lsn: int) -> None:
    rows = [
        {"id": i, "trace_id": "ab" * 16, "name": "helpfulness", "data_type": "numeric", "value": value,
         "source": "human", "time_ns": int(at * NS), "received_ns": int(at * NS)}
        for i, value, at in scores
    ]  # fmt: skip
    table = pa.Table.from_pylist(rows, schema=SCORE_SCHEMA)
    LocalTables(data_dir).write(SCORES_DIR, "default", "2026-03-15", part_name(lsn, lsn + 1), table, row_group_size=100)


def _seen(service: AlertService, rules: list[Rule], at: float, clock: FakeClock) -> list[tuple[Any, ...]]:
    """Tick at `at`; what each rule then shows: its new events and its state."""
    clock.now = at
    events = {e.rule_id: e for e in service.evaluator.tick()}
    seen = []
    for rule in rules:
        state = service.state(rule.id)
        event = events.get(rule.id)
        about = None if event is None else (event.kind, event.level, _round(event.value), event.samples)
        seen.append((rule.name, state.status, state.level, _round(state.value), state.error, about))
    return seen


def _spike() -> list[Any]:
    """Dear, slow, failing calls with nested duplicates (which both engines count once)."""
    return steady(
        T0 + 1 * MIN, T0 + 8 * MIN, 6, cost_usd=0.05, latency_s=3.0, ttft_s=0.9, error=True,
        nested_duplicate=True, service="search", input_tokens=900,
    )  # fmt: skip


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 9)  # the engines' percentile arithmetic differs in the last bit


def test_every_rule_fires_and_resolves_the_same_on_clickhouse(
    services: tuple[AlertService, AlertService], clock: FakeClock, data_dir: Path
) -> None:
    duck, house = services
    assert isinstance(house.evaluator._reader, ClickHouseMetricReader)  # the engine's reader, not the files'
    duck_rules, house_rules = _create(duck), _create(house)
    write_calls(data_dir, steady(T0 - 60 * MIN, T0, MIN, cost_usd=0.001, service="batch"))
    write_calls(data_dir, steady(T0 - 30 * MIN, T0, 2 * MIN, model="claude-sonnet", provider="anthropic"))
    phases: list[tuple[float, Callable[[], None]]] = [
        (T0, lambda: None),
        (T0 + 8 * MIN, lambda: write_calls(data_dir, _spike())),
        (T0 + 9 * MIN, lambda: _write_scores(data_dir, [("a", 0.2, T0 + 8 * MIN), ("b", 0.4, T0 + 8 * MIN)], 1)),
        (T0 + 20 * MIN, lambda: write_calls(data_dir, steady(T0 + 12 * MIN, T0 + 20 * MIN, MIN, service="batch"))),
        (T0 + 40 * MIN, lambda: _write_scores(data_dir, [("a", 0.9, T0 + 30 * MIN)], 2)),
        (T0 + 3 * 3600, lambda: None),  # everything quiet: resolved, and no data for batch
    ]
    history = []
    for at, write in phases:
        write()
        expected = _seen(duck, duck_rules, at, clock)
        assert _seen(house, house_rules, at, clock) == expected
        history.extend(expected)
    kinds = {about[0] for *_, about in history if about is not None}
    assert {"firing", "resolved"} <= kinds  # the scenario exercises the state machine, not only "ok"
    assert all(error is None for *_, error, _about in history)
    fired = {name for name, *_, about in history if about is not None and about[0] == "firing"}
    assert {"r0", "r1", "r2", "r4", "r5", "r6", "r9"} <= fired, fired


def test_a_clickhouse_read_error_is_recorded_on_the_rule_and_the_next_tick_carries_on(
    services: tuple[AlertService, AlertService], clock: FakeClock, data_dir: Path, clickhouse: ClickHouseStore
) -> None:
    _, house = services
    rule = house.create_rule("default", msgspec.convert({"name": "spend", "every": "1m", **RULES[0]}, RuleSpec))
    write_calls(data_dir, steady(T0 - 10 * MIN, T0, MIN))
    clickhouse.client.command("RENAME TABLE spans TO spans_away", {})
    clock.now = T0
    assert house.evaluator.tick() == []
    state = house.state(rule.id)
    assert state.error is not None and "spans" in state.error and state.next_eval_at == T0 + MIN
    clickhouse.client.command("RENAME TABLE spans_away TO spans", {})
    clock.now = T0 + MIN
    house.evaluator.tick()
    state = house.state(rule.id)
    assert state.error is None and state.value == pytest.approx(0.01)
