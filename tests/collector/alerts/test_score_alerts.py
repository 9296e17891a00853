"""An alert rule on a score's average (`score_avg`): read from the scores dataset's Parquet files
through DuckDB, each score id in its latest version, over the rule's window (fake clock)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa
import pytest

from llmscope_collector.alerts.rules import RuleError, RuleSpec, validate
from llmscope_collector.alerts.service import AlertService
from llmscope_collector.storage.layout import SCORES_DIR, part_name
from llmscope_collector.storage.schema import SCORE_SCHEMA
from llmscope_collector.storage.tables import LocalTables

from .conftest import FakeClock
from .traffic import T0

MIN = 60.0
_NS = 1_000_000_000


def _write_scores(data_dir: Path, scores: list[tuple[str, str, float, float]], lsn: int) -> None:
    """(id, name, value, at) rows as the writer stores them (received when given)."""
    rows: list[dict[str, Any]] = [
        {"id": i, "trace_id": "ab" * 16, "name": name, "data_type": "numeric", "value": value, "source": "human",
         "time_ns": int(at * _NS), "received_ns": int(at * _NS)}
        for i, name, value, at in scores
    ]  # fmt: skip
    table = pa.Table.from_pylist(rows, schema=SCORE_SCHEMA)
    name = part_name(lsn, lsn + 1)
    LocalTables(data_dir).write(SCORES_DIR, "default", "2026-03-15", name, table, row_group_size=1000)


def test_score_average_fires_below_threshold_and_resolves_when_a_score_is_replaced(
    service: AlertService, clock: FakeClock, data_dir: Path
) -> None:
    body = {"name": "helpfulness dropped", "metric": "score_avg", "score": "helpfulness", "window": "1h",
            "comparator": "lt", "alert_threshold": 0.5, "every": "1m"}  # fmt: skip
    rule = service.create_rule("default", msgspec.convert(body, RuleSpec))
    clock.now = T0
    assert service.evaluator.tick() == []  # no score yet: no data, policy ok
    assert service.state(rule.id).value is None

    _write_scores(
        data_dir,
        [("a", "helpfulness", 0.2, T0 + MIN), ("b", "helpfulness", 0.4, T0 + 2 * MIN),
         ("c", "other", 0.0, T0 + 2 * MIN), ("old", "helpfulness", 1.0, T0 - 2 * 3600)],
        lsn=1,
    )  # fmt: skip
    clock.now = T0 + 5 * MIN
    [event] = service.evaluator.tick()
    assert (event.kind, event.level, event.samples) == ("firing", "alert", 2)
    assert event.value == pytest.approx(0.3)

    _write_scores(data_dir, [("a", "helpfulness", 0.9, T0 + 6 * MIN)], lsn=2)  # "a" re-scored: replaces 0.2
    clock.now = T0 + 7 * MIN
    [event] = service.evaluator.tick()
    assert event.kind == "resolved" and service.state(rule.id).value == pytest.approx(0.65)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"metric": "score_avg", "alert_threshold": 1}, "score is required"),
        ({"metric": "cost_usd", "alert_threshold": 1, "score": "x"}, "only for metric score_avg"),
        ({"metric": "score_avg", "alert_threshold": 1, "score": "x", "filters": {"model": "m"}}, "filters do not"),
    ],
)
def test_score_rules_are_validated(fields: dict[str, Any], message: str) -> None:
    spec = msgspec.convert({"name": "r", **fields}, RuleSpec)
    with pytest.raises(RuleError, match=message):
        validate(spec, email_enabled=False)
