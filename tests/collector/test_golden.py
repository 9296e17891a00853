"""The ingest processors give the recorded outputs on fixed inputs (golden files).

`tests/collector/golden/<name>.jsonl` holds, for seeded inputs covering every dialect's keys, odd
values, OTLP requests with content, events, links, bad ids, limits, unstorable costs and bad UTF-8,
the benchmark traces, every genai-prices model and stitcher flush sequences, what normalize, the
content split, the whole decode path, the price book and the stitcher returned when it was
recorded. Any behaviour change shows up as a differing case. When the change is intended:

    python -m tests.collector.golden.regen [normalize messages decode pricing stitch]

then review `git diff tests/collector/golden/` (each changed line is one case's new output) and
commit it with the change. Property tests of the behaviour itself are in `test_processor_properties.py`
and `model/test_stitch.py`.
"""

from __future__ import annotations

import json

import pytest

from tests.collector.golden import cases, store
from tests.collector.golden.outputs import prices_digest
from tests.collector.golden.store import NAMES, check, golden_path, read


@pytest.mark.parametrize("name", NAMES)
def test_processors_give_the_recorded_outputs(name: str) -> None:
    check(name)


def test_every_golden_file_is_recorded_with_its_case_count() -> None:
    for name in NAMES:
        header, stored = read(name)
        assert header["golden"] == name and header["cases"] == len(stored), golden_path(name)


def test_every_key_the_normalizer_reads_is_a_golden_case() -> None:
    """A key added to the normalizer's table gets per-key cases (the check above then asks to record them)."""
    _, stored = read("normalize")
    for case_id, _ in cases.normalize_cases():
        assert case_id in stored, f"{case_id}: run `python -m tests.collector.golden.regen normalize`"


def test_under_another_genai_prices_release_only_unchanged_prices_are_compared(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new genai-prices release must not fail the run for prices it changed: the models whose price data
    changed (and the calls answered by a database lookup) are skipped with a warning saying how to record
    them again; every other case is still compared."""
    lookups = sum(isinstance(c, cases.CallCase) and c.db for _, c in cases.price_cases())
    models = sum(isinstance(c, cases.PriceCase) for _, c in cases.price_cases())
    monkeypatch.setattr(store, "_genai_prices_version", lambda: "0.0.0-another-release")
    other = _models_priced_otherwise()  # (0 where the installed release's price data is the recorded one)
    with pytest.warns(UserWarning, match=rf"^{lookups + other} pricing cases not compared: recorded with genai-prices"):
        store.check("pricing")  # every model line whose price data is unchanged is compared
    monkeypatch.setattr(store, "prices_digest", lambda provider, model: "changed")
    with pytest.warns(UserWarning, match=rf"^{lookups + models} pricing cases not compared"):
        store.check("pricing")


def _models_priced_otherwise() -> int:
    """The genai-prices model lines whose installed price data is not the recorded one (changed, or a model
    the recording has no line for): a newer release on the machine (CI installs the newest) changes some."""
    _, stored = read("pricing")
    return sum(
        isinstance(c, cases.PriceCase)
        and (
            case_id not in stored or json.loads(stored[case_id])["out"]["prices"] != prices_digest(c.provider, c.model)
        )
        for case_id, c in cases.price_cases()
    )
