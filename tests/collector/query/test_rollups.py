"""Costs (every group_by), metrics (summary and series at 1m|1h|1d) and prompt versions over real HTTP,
equal to sums computed independently from the generated spans (costs from genai-prices directly)."""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from llmscope_collector.server import EmbeddedServer
from tests.collector.query.dataset import NS, T0_NS, GenSpan, GenTrace, expected_cost, export, ok

CENT = Decimal("0.01")


def _calls(corpus: list[GenTrace]) -> list[tuple[GenTrace, GenSpan]]:
    return [(t, s) for t in corpus for s in t.llm()]


def _utc(span: GenSpan) -> dt.datetime:
    return dt.datetime.fromtimestamp(span.start_ns // 1000 / 1e6, tz=dt.timezone.utc)


def _prompt(span: GenSpan) -> str | None:
    name = span.attrs.get("gen_ai.prompt.name")
    version = span.attrs.get("gen_ai.prompt.version")
    return None if name is None else (f"{name}@{version}" if version else name)


KEYS: dict[str, Callable[[GenTrace, GenSpan], str | None]] = {
    "model": lambda t, s: s.model,
    "provider": lambda t, s: s.provider,
    "project": lambda t, s: "default",
    "service": lambda t, s: s.service,
    "user": lambda t, s: t.user,
    "session": lambda t, s: t.session,
    "prompt": lambda t, s: _prompt(s),
    "day": lambda t, s: _utc(s).strftime("%Y-%m-%d"),
    "hour": lambda t, s: _utc(s).strftime("%Y-%m-%dT%H:00:00Z"),
}


class Sums:
    def __init__(self) -> None:
        self.calls = self.inp = self.out = self.cache = self.unknown = 0
        self.cost = Decimal(0)

    def add(self, span: GenSpan) -> None:
        self.calls += 1
        self.inp += span.input_tokens
        self.out += span.output_tokens
        self.cache += span.cache_read
        cost = expected_cost(span)
        if cost is None:
            self.unknown += 1
        else:
            self.cost += cost

    def check(self, usage: dict[str, Any]) -> None:
        assert usage["llm_calls"] == self.calls
        assert (usage["input_tokens"], usage["output_tokens"]) == (self.inp, self.out)
        assert usage["cache_read_tokens"] == self.cache and usage["total_tokens"] == self.inp + self.out
        assert usage["cost_unknown"] == self.unknown
        if self.unknown == self.calls:
            assert usage["cost_usd"] is None  # unknown is never $0
        else:
            got = Decimal(str(usage["cost_usd"]))
            assert got.quantize(CENT) == self.cost.quantize(CENT)
            assert abs(got - self.cost) < Decimal("1e-9")


def _expected_groups(
    corpus: list[GenTrace], group_by: list[str], keep: Callable[[GenSpan], bool]
) -> dict[tuple[Any, ...], Sums]:
    groups: dict[tuple[Any, ...], Sums] = defaultdict(Sums)
    for trace, span in _calls(corpus):
        if keep(span):
            groups[tuple(KEYS[g](trace, span) for g in group_by)].add(span)
    return groups


def _costs(server: EmbeddedServer, params: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = ok(server, "/v1/costs?" + urllib.parse.urlencode(params))
    return body


@pytest.mark.parametrize("group_by", [*KEYS, "model,day", "provider,service,hour", "user,prompt"])
def test_costs_by_every_group_equal_the_spans(populated: EmbeddedServer, corpus: list[GenTrace], group_by: str) -> None:
    dims = group_by.split(",")
    body = _costs(populated, {"group_by": group_by})
    assert body["group_by"] == dims
    want = _expected_groups(corpus, dims, lambda s: True)
    got = {tuple(g["key"][d] for d in dims): g["usage"] for g in body["groups"]}
    assert set(got) == set(want)
    for key, sums in want.items():
        sums.check(got[key])
    total = Sums()
    for _, span in _calls(corpus):
        total.add(span)
    total.check(body["total"])


def test_unknown_model_counts_tokens_and_reports_cost_unknown(
    populated: EmbeddedServer, corpus: list[GenTrace]
) -> None:
    body = _costs(populated, {"group_by": "model", "model": "mystery-model-9"})
    (group,) = body["groups"]
    usage = group["usage"]
    assert group["key"] == {"model": "mystery-model-9"}
    assert usage["cost_usd"] is None and usage["cost_unknown"] == usage["llm_calls"] > 0
    assert usage["input_tokens"] == sum(s.input_tokens for _, s in _calls(corpus) if s.model == "mystery-model-9")
    assert body["total"]["cost_usd"] is None


@pytest.mark.parametrize(
    ("params", "keep"),
    [
        ({"service": "search"}, lambda s: s.service == "search"),
        ({"provider": "anthropic"}, lambda s: s.provider == "anthropic"),
        ({"model": "gpt-4o"}, lambda s: s.model == "gpt-4o"),
        (
            {"from": str(T0_NS + 3600 * NS), "to": "2026-03-16T00:10:00Z"},
            lambda s: T0_NS + 3600 * NS <= s.start_ns < T0_NS + 7800 * NS,
        ),
    ],
)
def test_cost_filters(
    populated: EmbeddedServer, corpus: list[GenTrace], params: dict[str, str], keep: Callable[[GenSpan], bool]
) -> None:
    body = _costs(populated, {"group_by": "model,day", **params})
    want = _expected_groups(corpus, ["model", "day"], keep)
    got = {(g["key"]["model"], g["key"]["day"]): g["usage"] for g in body["groups"]}
    assert set(got) == set(want)
    for key, sums in want.items():
        sums.check(got[key])


def test_costs_without_group_by_is_the_total(populated: EmbeddedServer, corpus: list[GenTrace]) -> None:
    body = _costs(populated, {"group_by": ""})
    assert body["groups"] == [] and body["group_by"] == []
    total = Sums()
    for _, span in _calls(corpus):
        total.add(span)
    total.check(body["total"])


# -- metrics -----------------------------------------------------------------------------------------


def _quantile(values: list[float], q: float) -> float | None:
    """DuckDB's quantile_cont: linear interpolation between the closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _check_metrics(got: dict[str, Any], spans: list[GenSpan]) -> None:
    assert got["requests"] == len(spans)
    errors = sum(s.error for s in spans)
    assert got["errors"] == errors
    assert got["error_rate"] == (pytest.approx(errors / len(spans)) if spans else None)
    durations = [float(s.end_ns - s.start_ns) for s in spans]
    for name, q in (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)):
        want = _quantile(durations, q)
        assert got["latency"][name] == (None if want is None else pytest.approx(want / 1e6))
    ttfts = [
        float(s.attrs["gen_ai.response.time_to_first_chunk"])
        for s in spans
        if "gen_ai.response.time_to_first_chunk" in s.attrs
    ]
    for name, q in (("p50_ms", 0.5), ("p95_ms", 0.95)):
        want = _quantile(ttfts, q)
        assert got["ttft"][name] == (None if want is None else pytest.approx(want * 1000))
    sums = Sums()
    for span in spans:
        sums.add(span)
    if spans:
        sums.check(got["usage"])


@pytest.mark.parametrize(
    ("params", "keep"),
    [
        ({}, lambda s: True),
        ({"service": "checkout"}, lambda s: s.service == "checkout"),
        ({"model": "gpt-4o-mini"}, lambda s: s.model == "gpt-4o-mini"),
        (
            {"provider": "openai", "from": "2026-03-16T00:00:00Z"},
            lambda s: s.provider == "openai" and s.start_ns >= T0_NS + 7200 * NS,
        ),
        ({"model": "no-such-model"}, lambda s: False),
    ],
)
def test_metrics_summary(
    populated: EmbeddedServer, corpus: list[GenTrace], params: dict[str, str], keep: Callable[[GenSpan], bool]
) -> None:
    got = ok(populated, "/v1/metrics/summary?" + urllib.parse.urlencode(params))
    _check_metrics(got, [s for _, s in _calls(corpus) if keep(s)])


_BUCKET_NS = {"1m": 60 * NS, "1h": 3600 * NS, "1d": 86400 * NS}


@pytest.mark.parametrize("interval", ["1m", "1h", "1d"])
@pytest.mark.parametrize("group_by", [None, "model", "service"])
def test_metrics_series(populated: EmbeddedServer, corpus: list[GenTrace], interval: str, group_by: str | None) -> None:
    params = {"interval": interval, **({"group_by": group_by} if group_by else {})}
    body = ok(populated, "/v1/metrics/timeseries?" + urllib.parse.urlencode(params))
    assert body["interval"] == interval and body["group_by"] == group_by
    want: dict[tuple[int, str | None], list[GenSpan]] = defaultdict(list)
    for _, span in _calls(corpus):
        bucket = span.start_ns // _BUCKET_NS[interval] * _BUCKET_NS[interval]
        key = None if group_by is None else (span.model if group_by == "model" else span.service)
        want[(bucket, key)].append(span)
    got = {(p["time_unix_nano"], p["key"]): p["metrics"] for p in body["points"]}
    assert set(got) == set(want)
    for key, spans in want.items():
        _check_metrics(got[key], spans)
    times = [p["time_unix_nano"] for p in body["points"]]
    assert times == sorted(times)


# -- prompts -----------------------------------------------------------------------------------------


def test_prompt_list_and_version_comparison(populated: EmbeddedServer, corpus: list[GenTrace]) -> None:
    by_name: dict[str, dict[str, list[GenSpan]]] = defaultdict(lambda: defaultdict(list))
    for _, span in _calls(corpus):
        if "gen_ai.prompt.name" in span.attrs:
            by_name[span.attrs["gen_ai.prompt.name"]][span.attrs["gen_ai.prompt.version"]].append(span)
    listed = {p["name"]: p for p in ok(populated, "/v1/prompts")["prompts"]}
    assert set(listed) == set(by_name) == {"greet", "summarize"}
    for name, versions in by_name.items():
        assert listed[name]["versions"] == len(versions)
        assert listed[name]["stats"]["uses"] == sum(len(v) for v in versions.values())
        body = ok(populated, f"/v1/prompts/{name}/versions")
        assert body["name"] == name
        got = {v["version"]: v["stats"] for v in body["versions"]}
        assert set(got) == set(versions)
        for version, spans in versions.items():
            stats = got[version]
            errors = sum(s.error for s in spans)
            assert stats["uses"] == len(spans) and stats["errors"] == errors
            assert stats["error_rate"] == pytest.approx(errors / len(spans))
            assert stats["avg_tokens"] == pytest.approx(
                sum(s.input_tokens + s.output_tokens for s in spans) / len(spans)
            )
            assert stats["avg_latency_ms"] == pytest.approx(
                sum(s.end_ns - s.start_ns for s in spans) / len(spans) / 1e6
            )
            assert stats["first_used_unix_nano"] == min(s.start_ns for s in spans)
            assert stats["last_used_unix_nano"] == max(s.start_ns for s in spans)
            sums = Sums()
            for span in spans:
                sums.add(span)
            sums.check(stats["usage"])
    assert ok(populated, "/v1/prompts/never-used/versions") == {"name": "never-used", "versions": []}


def test_late_parent_makes_its_nested_llm_child_a_duplicate_in_every_view(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The client library's span is written first; the instrumentation's span for the same call comes
    in a later flush. From then on every view counts the call once, the first query included."""
    from tests.collector.query.conftest import query_settings
    from tests.collector.query.dataset import generate

    call = next(s for t in generate(5, 20) for s in t.spans if s.is_llm and s.model == "gpt-4o")
    parent = call
    child = GenSpan(
        call.trace_id,
        "c" * 16,
        parent.span_id,
        "chat gpt-4o (client)",
        parent.start_ns + 1000,
        parent.end_ns - 1000,
        parent.service,
        {k: v for k, v in parent.attrs.items() if k != "gen_ai.input.messages"},
        kind=3,
        provider="openai",
        model="gpt-4o",
        input_tokens=parent.input_tokens,
        output_tokens=parent.output_tokens,
        cache_read=parent.cache_read,
    )
    with EmbeddedServer(query_settings(tmp_path_factory)) as server:
        export(server, [GenTrace(call.trace_id, [child], parent.service, None, None, "gold", None)])
        export(server, [GenTrace(call.trace_id, [parent], parent.service, None, None, "gold", None)])
        want = Sums()
        want.add(parent)
        for group_by in ("model", "user", ""):
            body = ok(server, f"/v1/costs?group_by={group_by}")
            want.check(body["total"])
            for group in body["groups"]:
                want.check(group["usage"])
        assert ok(server, "/v1/metrics/summary")["requests"] == 1
        if "gen_ai.prompt.name" in parent.attrs:
            assert ok(server, "/v1/prompts")["prompts"][0]["stats"]["uses"] == 1
        (row,) = ok(server, "/v1/traces")["traces"]
        assert row["llm_calls"] == 1 and row["total_tokens"] == parent.input_tokens + parent.output_tokens
        wf = ok(server, f"/v1/traces/{call.trace_id}")
        assert wf["totals"]["llm_calls"] == 1
        assert ok(server, f"/v1/spans/{call.trace_id}/{'c' * 16}")["counted"] is False


def test_user_price_file_prices_unknown_models_and_overrides_the_db(tmp_path_factory: pytest.TempPathFactory) -> None:
    """With a price file, the unknown model gets a price and gpt-4o the file's price, not the DB's."""
    from tests.collector.query.conftest import query_settings
    from tests.collector.query.dataset import generate

    prices = tmp_path_factory.mktemp("prices") / "prices.json"
    prices.write_text(
        '{"mystery-*": {"input": 2, "output": 8, "cache_read": 0.5}, "gpt-4o": {"input": 1, "output": 1}}'
    )
    corpus = generate(77, 40)
    rates = {"mystery-model-9": (Decimal(2), Decimal(8), Decimal("0.5")), "gpt-4o": (Decimal(1), Decimal(1), None)}
    with EmbeddedServer(query_settings(tmp_path_factory, prices_file=str(prices))) as server:
        export(server, corpus)
        body = ok(server, "/v1/costs?group_by=model")
        got = {g["key"]["model"]: g["usage"] for g in body["groups"]}
        for model, (rate_in, rate_out, rate_cache) in rates.items():
            spans = [s for _, s in _calls(corpus) if s.model == model]
            want = Decimal(0)
            for s in spans:
                leaf = s.input_tokens - (s.cache_read if rate_cache is not None else 0)
                want += (rate_in * leaf + (rate_cache or 0) * s.cache_read + rate_out * s.output_tokens) / 1_000_000
            usage = got[model]
            assert usage["cost_unknown"] == 0 and usage["llm_calls"] == len(spans) > 0
            assert abs(Decimal(str(usage["cost_usd"])) - want) < Decimal("1e-9")
        span = next(s for _, s in _calls(corpus) if s.model == "mystery-model-9")
        detail = ok(server, f"/v1/spans/{span.trace_id}/{span.span_id}")
        assert detail["cost_known"] is True and detail["cost_source"] == "user:mystery-*"
