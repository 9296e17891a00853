"""Issue 16's normalization, pricing and counting rules (Vercel AI SDK, LiteLLM, DSPy and the general ones).

The attribute maps are the ones the real packages sent in the interop sessions (tests/interop), cut to
what each rule reads; the properties run the whole ingest path a span takes (OTLP → decode with
normalize and pricing → the stitcher's duplicate marks → the trace's summary delta).
"""

from __future__ import annotations

import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from genai_prices import data_snapshot
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from llmscope_collector.processors.cost import _PROVIDER_IDS, REPORTED_SOURCE, PriceBook
from llmscope_collector.processors.decode import decode_request
from llmscope_collector.processors.messages import split_content
from llmscope_collector.processors.normalize import MODEL_PREFIXES, canonical_genai, normalize_provider
from llmscope_collector.processors.stitch import Stitcher, trace_deltas
from llmscope_collector.query.rows import reported_cost_differs
from tests.collector.receivers.clients import post
from tests.otlp_factory import new_span_id, new_trace_id, request, span

_START = 1_780_000_000 * 10**9

VERCEL_DO_GENERATE = {
    "operation.name": "ai.generateText.doGenerate parcel-bot",
    "ai.operationId": "ai.generateText.doGenerate",
    "ai.model.provider": "openai.chat",
    "ai.model.id": "gpt-4o-mini",
    "ai.telemetry.metadata.sessionId": "sess-42",
    "ai.telemetry.metadata.userId": "user-7",
    "ai.telemetry.metadata.tenant": "acme",
    "gen_ai.system": "openai.chat",
    "gen_ai.request.model": "gpt-4o-mini",
    "ai.response.finishReason": "tool-calls",
    "ai.response.toolCalls": '[{"toolCallId":"call_1","toolName":"locate","input":"{}"}]',
    "ai.response.id": "chatcmpl-1",
    "ai.usage.inputTokens": 61,
    "ai.usage.inputTokenDetails.cacheReadTokens": 40,
    "ai.usage.cachedInputTokens": 40,
    "ai.usage.outputTokens": 3,
    "ai.usage.totalTokens": 64,
}
VERCEL_OUTER = {
    "ai.operationId": "ai.generateText",
    "ai.model.provider": "openai.chat",
    "ai.model.id": "gpt-4o-mini",
    "ai.prompt": '{"prompt":"Where is parcel 12?"}',
    "ai.usage.inputTokens": 153,
    "ai.usage.outputTokens": 25,
}
LITELLM_REQUEST = {
    "gen_ai.operation.name": "chat",
    "gen_ai.system": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.usage.input_tokens": 19,
    "gen_ai.usage.output_tokens": 28,
    "gen_ai.cost.total_cost": 1.8525e-05,
    "llm.request.type": "completion",
    "metadata.usage_object": "{'completion_tokens': 28, 'prompt_tokens': 19, 'total_tokens': 47, "
    "'prompt_tokens_details': {'audio_tokens': 0, 'cached_tokens': 15}, 'completion_tokens_details': None}",
}
DSPY_LM_CALL = {  # DSPy's `LM.__call__` under OpenInference: an LLM-kind wrapper, no request of its own
    "openinference.span.kind": "LLM",
    "llm.model_name": "gpt-4o-mini",
    "llm.provider": "openai",
    "llm.invocation_parameters": '{"temperature": null, "max_tokens": null}',
    "output.value": '["Your parcel is at the depot."]',
    "llm.output_messages.0.message.role": "assistant",
    "llm.output_messages.0.message.content": "Your parcel is at the depot.",
}
DSPY_COMPLETION = {  # the LiteLLM instrumentation's span under it: the call, with usage and a cost
    "openinference.span.kind": "LLM",
    "llm.model_name": "openai/gpt-4o-mini",
    "llm.provider": "openai",
    "llm.token_count.prompt": 16,
    "llm.token_count.prompt_details.cache_read": 15,
    "llm.token_count.completion": 15,
    "llm.cost.total": 1.0275e-05,
    "llm.finish_reason": "stop",
}


# --- the Vercel AI SDK --------------------------------------------------------------------------------


def test_vercel_do_generate_is_a_counted_call_with_every_column() -> None:
    out = canonical_genai(VERCEL_DO_GENERATE)
    assert out["operation"] == "chat" and out["provider"] == "openai" and out["request_model"] == "gpt-4o-mini"
    assert (out["input_tokens"], out["cache_read_tokens"], out["output_tokens"], out["total_tokens"]) == (61, 40, 3, 64)
    assert out["finish_reasons"] == ["tool_call"] and out["response_id"] == "chatcmpl-1"
    assert (out["session_id"], out["user_id"]) == ("sess-42", "user-7")
    assert out["metadata"] == [("tenant", "acme")]
    assert out["is_stream"] is False


def test_vercel_do_stream_is_a_stream_with_its_ttft_in_seconds() -> None:
    attrs = {
        **VERCEL_DO_GENERATE,
        "ai.operationId": "ai.streamText.doStream",
        "gen_ai.system": "anthropic.messages",
        "ai.usage.inputTokenDetails.cacheWriteTokens": 12,
        "ai.response.msToFirstChunk": 42.5,
    }
    out = canonical_genai(attrs)
    assert out["operation"] == "chat" and out["is_stream"] is True and out["provider"] == "anthropic"
    assert out["ttft_s"] == pytest.approx(0.0425) and out["cache_write_tokens"] == 12


def test_vercel_outer_run_span_is_not_a_call_and_tool_span_is_a_tool() -> None:
    assert canonical_genai(VERCEL_OUTER)["operation"] is None
    tool = canonical_genai({"ai.operationId": "ai.toolCall", "ai.toolCall.name": "locate", "ai.toolCall.id": "call_1"})
    assert (tool["operation"], tool["tool_name"], tool["tool_call_id"]) == ("execute_tool", "locate", "call_1")


def test_vercel_content_is_split_out_by_kind() -> None:
    attrs = {
        "ai.prompt.messages": '[{"role":"user","content":"hi"}]',
        "ai.prompt.tools": ['{"type":"function","name":"locate"}'],
        "ai.response.text": "hello",
        "ai.toolCall.args": '{"id":"12"}',
        "ai.toolCall.result": '{"where":"depot"}',
    }
    split = split_content(attrs)
    assert split.attributes == {}
    kinds = {item.source: item.kind for item in split.items}
    assert kinds == {
        "ai.prompt.messages": "input_value",
        "ai.prompt.tools": "tools",
        "ai.response.text": "output_value",
        "ai.toolCall.args": "tool_arguments",
        "ai.toolCall.result": "tool_result",
    }


@pytest.mark.parametrize(
    ("sent", "provider"),
    [
        ("openai.responses", "openai"),
        ("openai.chat", "openai"),
        ("anthropic.messages", "anthropic"),
        ("google.generative-ai", "gcp.gen_ai"),
        ("google.vertex.chat", "gcp.vertex_ai"),
        ("azure.ai.openai", "azure.ai.openai"),  # OTel's dotted names are kept
        ("aws.bedrock", "aws.bedrock"),
        ("my-framework", "my-framework"),  # unknown: kept as sent
    ],
)
def test_provider_names_with_an_api_suffix_name_the_vendor(sent: str, provider: str) -> None:
    assert normalize_provider(sent) == provider


# --- LiteLLM, reported costs ------------------------------------------------------------------------------


def test_litellm_cache_tokens_come_from_its_python_repr_usage_object() -> None:
    out = canonical_genai(LITELLM_REQUEST)
    assert (out["operation"], out["input_tokens"], out["cache_read_tokens"]) == ("chat", 19, 15)
    assert out["reported_cost_usd"] == Decimal("0.000018525000")


@pytest.mark.parametrize(
    "value", ["{'prompt_tokens': 3", "__import__('os')", "[1, 2]", "{'prompt_tokens_details': 'x'}", 7, "x" * 20_000]
)
def test_a_malformed_usage_object_reads_as_no_cache_tokens(value: Any) -> None:
    assert canonical_genai({**LITELLM_REQUEST, "metadata.usage_object": value})["cache_read_tokens"] is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1.8525e-05, Decimal("0.000018525000")), ("0.5", Decimal("0.5")), (-1, None), ("nan", None), (1e9, None)],
)
def test_reported_cost_is_kept_when_sane(value: Any, expected: Decimal | None) -> None:
    assert canonical_genai({"llm.cost.total": value})["reported_cost_usd"] == expected


def _priced(attrs: dict[str, Any]) -> dict[str, Any]:
    trace_id = new_trace_id()
    batch = decode_request(request([span(trace_id, new_span_id(), "call", _START, _START + 10**6, attrs=attrs)]), "p")
    (part,) = batch.partitions.values()
    return part.spans.to_pylist()[0]  # type: ignore[no-any-return]


def test_a_reported_cost_prices_an_unknown_model_marked_as_reported() -> None:
    row = _priced({**LITELLM_REQUEST, "gen_ai.request.model": "in-house-llm-7b"})
    assert row["cost_known"] is True and row["cost_source"] == REPORTED_SOURCE
    assert row["cost_usd"] == row["reported_cost_usd"] == Decimal("0.000018525000")


def test_a_known_model_is_priced_by_us_with_the_reported_cost_beside() -> None:
    row = _priced(LITELLM_REQUEST)
    assert row["cost_source"] == "genai-prices:openai/gpt-4o-mini"
    # 4 uncached input at $0.15/M, 15 cached at $0.075/M, 28 output at $0.60/M (LiteLLM's price map agrees).
    expected = (Decimal(4) * Decimal("0.15") + Decimal(15) * Decimal("0.075") + Decimal(28) * Decimal("0.60")) / 10**6
    assert row["cost_usd"] == expected
    assert row["reported_cost_usd"] == Decimal("0.000018525000")


def test_time_to_first_token_metric_name_is_read_in_seconds() -> None:
    assert canonical_genai({"gen_ai.server.time_to_first_token": 0.25})["ttft_s"] == 0.25
    both = {"gen_ai.response.time_to_first_chunk": 0.5, "gen_ai.server.time_to_first_token": 0.25}
    assert canonical_genai(both)["ttft_s"] == 0.5


# --- provider-prefixed and unknown-provider pricing -----------------------------------------------------------

_SNAPSHOT = data_snapshot.get_snapshot()
_BOOK = PriceBook()
_COUNTS = st.tuples(*(st.integers(min_value=0, max_value=2_000_000),) * 2).map(lambda io: (io[0], io[1], 0, 0))
# Providers a routing prefix names, with the models genai-prices lists for them.
_PREFIXED = sorted(
    (prefix, m.id)
    for prefix, provider in MODEL_PREFIXES.items()
    for p in _SNAPSHOT.providers
    if p.id == {"openai": "openai", "anthropic": "anthropic", "groq": "groq", "deepseek": "deepseek"}.get(provider)
    for m in p.models
)


@settings(max_examples=200, deadline=None)
@given(pair=st.sampled_from(_PREFIXED), counts=_COUNTS, sent=st.sampled_from([None, "openai", "litellm"]))
def test_a_routed_model_name_is_priced_as_the_model_behind_the_prefix(
    pair: tuple[str, str], counts: tuple[int, int, int, int], sent: str | None
) -> None:
    prefix, model = pair
    direct = _BOOK.cost_row(MODEL_PREFIXES[prefix], (model,), _START, counts)
    assume(direct[3])  # (a listed id that is not a match pattern of its own, e.g. `ft:gpt-4o`)
    assert _BOOK.cost_row(sent, (f"{prefix}/{model}",), _START, counts)[:4] == direct[:4]


_UNIQUE_MODELS = sorted(
    m.id for p in _SNAPSHOT.providers if p.id in ("openai", "anthropic") for m in p.models if "/" not in m.id
)
_UNKNOWN_PROVIDERS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-_.", min_size=1, max_size=20).filter(
    lambda name: (
        name not in {p.id for p in _SNAPSHOT.providers}
        and name not in _PROVIDER_IDS  # OTel names the price book maps to the price source's (x_ai -> x-ai)
        and normalize_provider(name) == name
    )
)


@settings(max_examples=200, deadline=None)
@given(model=st.sampled_from(_UNIQUE_MODELS), provider=_UNKNOWN_PROVIDERS, counts=_COUNTS)
def test_an_unknown_provider_name_falls_back_to_the_model_alone(
    model: str, provider: str, counts: tuple[int, int, int, int]
) -> None:
    by_model = _BOOK.cost_row(None, (model,), _START, counts)
    assert _BOOK.cost_row(provider, (model,), _START, counts) == by_model


def test_a_wrapper_arriving_after_its_call_was_written_is_the_duplicate(tmp_path: Path) -> None:
    """The inner call ends first, so it may be flushed before its wrapper: the wrapper is still the one dropped."""
    trace_id, wrapper = new_trace_id(), new_span_id()
    inner = span(trace_id, new_span_id(), "completion", _START + 1, _START + 99, wrapper, DSPY_COMPLETION)
    outer = span(trace_id, wrapper, "LM.__call__", _START, _START + 100, attrs=DSPY_LM_CALL)
    stitcher = Stitcher(tmp_path)
    totals: dict[str, int] = {}
    for req in (request([inner]), request([outer])):
        ((key, part),) = decode_request(req, "p").partitions.items()
        marked = stitcher.before_write(key, part.spans)
        (row,) = trace_deltas(marked, []).to_pylist()
        for field in ("llm_calls", "input_tokens", "cost_unknown"):
            totals[field] = totals.get(field, 0) + row[field]
        assert marked.column("llm_dup").to_pylist() == [part.spans.column("name")[0].as_py() == "LM.__call__"]
    assert totals == {"llm_calls": 1, "input_tokens": 16, "cost_unknown": 0}


def test_usage_on_both_keeps_the_outer_call_counted() -> None:
    """llmscope's SDK span over the client library's own span for the same call: the outer one counts."""
    trace_id, outer_id = new_trace_id(), new_span_id()
    spans = [
        span(trace_id, outer_id, "chat", _START, _START + 100, attrs=_inner("otel", (10, 5))),
        span(trace_id, new_span_id(), "openai.chat", _START + 1, _START + 99, outer_id, _inner("otel", (10, 5))),
    ]
    delta = _summary(request(spans))
    assert (delta["llm_calls"], delta["input_tokens"]) == (1, 10)


def test_price_rows_keep_the_sent_provider_visible() -> None:
    row = _priced({**LITELLM_REQUEST, "gen_ai.system": "my-framework"})
    assert row["provider"] == "my-framework" and row["cost_source"] == "genai-prices:openai/gpt-4o-mini"


# --- what is a call, and what is counted ------------------------------------------------------------------------

# Keys any of which shows that an LLM-kind span stands for a model call.
_EVIDENCE: dict[str, Any] = {
    "gen_ai.usage.input_tokens": 5,
    "gen_ai.usage.output_tokens": 2,
    "llm.token_count.prompt_details.cache_read": 1,
    "gen_ai.response.finish_reasons": ["stop"],
    "gen_ai.response.id": "r-1",
    "error.type": "timeout",
    "gen_ai.output.messages": '[{"role":"assistant","parts":[]}]',
    "llm.output_messages.0.message.content": "hi",
    "ai.response.text": "hi",
    "gen_ai.response.time_to_first_chunk": 0.1,
}
_LLM_KINDS = [
    {"gen_ai.operation.name": "chat"},
    {"openinference.span.kind": "LLM"},
    {"llm.request.type": "chat"},
    {"ai.operationId": "ai.generateText.doGenerate"},
    {"gen_ai.operation.name": "embeddings"},
]
_NOISE = st.dictionaries(
    st.sampled_from(
        [
            "llm.model_name",
            "gen_ai.request.model",
            "gen_ai.system",
            "llm.provider",
            "input.value",
            "output.value",
            "llm.invocation_parameters",
            "gen_ai.request.temperature",
            "llm.input_messages.0.message.content",
            "x",
        ]
    ),
    st.one_of(st.text(max_size=10), st.integers(0, 9)),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(_LLM_KINDS), noise=_NOISE, evidence=st.sampled_from(sorted(_EVIDENCE)))
def test_an_llm_kind_span_is_a_call_only_with_something_that_shows_one(
    kind: dict[str, Any], noise: dict[str, Any], evidence: str
) -> None:
    attrs = {**noise, **kind}
    assert canonical_genai(attrs)["operation"] is None
    assert canonical_genai(attrs, failed=True)["operation"] is not None  # a failed request is a call
    assert canonical_genai({**attrs, evidence: _EVIDENCE[evidence]})["operation"] is not None


# Outer spans that carry the run's totals, per dialect (tokens filled in by the test).
_OUTERS: dict[str, dict[str, Any]] = {
    "vercel": {"ai.operationId": "ai.generateText", "ai.model.id": "gpt-4o-mini", "ai.model.provider": "openai.chat"},
    "vercel-stream": {"ai.operationId": "ai.streamText", "ai.model.id": "gpt-4o-mini"},
    "openinference-agent": {"openinference.span.kind": "AGENT", "llm.model_name": "gpt-4o-mini"},
    "openinference-chain": {"openinference.span.kind": "CHAIN", "llm.model_name": "gpt-4o-mini"},
    "traceloop-workflow": {"traceloop.span.kind": "workflow", "gen_ai.request.model": "gpt-4o-mini"},
    "otel-invoke-agent": {"gen_ai.operation.name": "invoke_agent", "gen_ai.request.model": "gpt-4o-mini"},
    "otel-invoke-workflow": {"gen_ai.operation.name": "invoke_workflow", "gen_ai.request.model": "gpt-4o-mini"},
}
_USAGE_KEYS = {
    "vercel": ("ai.usage.inputTokens", "ai.usage.outputTokens"),
    "openinference": ("llm.token_count.prompt", "llm.token_count.completion"),
    "otel": ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"),
}
# Inner calls per dialect, with a wrapper span above some (DSPy's LM.__call__ over LiteLLM's completion).
_INNERS = ["otel", "openinference", "vercel", "dspy"]


def _inner(dialect: str, tokens: tuple[int, int]) -> dict[str, Any]:
    if dialect == "otel":
        base: dict[str, Any] = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai"}
        usage = _USAGE_KEYS["otel"]
    elif dialect == "vercel":
        base = {"ai.operationId": "ai.generateText.doGenerate", "gen_ai.system": "openai.chat"}
        usage = _USAGE_KEYS["vercel"]
    else:
        base = {"openinference.span.kind": "LLM", "llm.provider": "openai"}
        usage = _USAGE_KEYS["openinference"]
    model = "openai/gpt-4o-mini" if dialect == "dspy" else "gpt-4o-mini"
    return {**base, "gen_ai.request.model": model, usage[0]: tokens[0], usage[1]: tokens[1]}


def _outer_usage(outer: str, totals: tuple[int, int]) -> dict[str, Any]:
    family = next((f for f in ("vercel", "openinference") if outer.startswith(f)), "otel")
    keys = _USAGE_KEYS[family]
    return {keys[0]: totals[0], keys[1]: totals[1]}


@settings(max_examples=60, deadline=None)
@given(
    outer=st.sampled_from(sorted(_OUTERS)),
    calls=st.lists(
        st.tuples(st.sampled_from(_INNERS), st.integers(1, 5000), st.integers(1, 5000)), min_size=1, max_size=4
    ),
    nested_outer=st.booleans(),
)
def test_outer_run_totals_are_never_counted_on_top_of_the_inner_calls(
    outer: str, calls: list[tuple[str, int, int]], nested_outer: bool
) -> None:
    trace_id = new_trace_id()
    root, outer_id = new_span_id(), new_span_id()
    totals = (sum(c[1] for c in calls), sum(c[2] for c in calls))
    spans = [span(trace_id, root, "request", _START, _START + 10**9)]
    spans.append(
        span(
            trace_id,
            outer_id,
            outer,
            _START + 1,
            _START + 10**9 - 1,
            parent=root if nested_outer else b"",
            attrs={**_OUTERS[outer], **_outer_usage(outer, totals)},
        )
    )
    for k, (dialect, inp, out) in enumerate(calls):
        parent = outer_id
        if dialect == "dspy":
            parent = new_span_id()
            wrapper = span(trace_id, parent, "LM.__call__", _START + 10 + k, _START + 20 + k, outer_id, DSPY_LM_CALL)
            spans.append(wrapper)
        spans.append(
            span(
                trace_id,
                new_span_id(),
                f"call {k}",
                _START + 11 + k,
                _START + 19 + k,
                parent,
                _inner(dialect, (inp, out)),
            )
        )
    delta = _summary(request(spans))
    assert (delta["llm_calls"], delta["input_tokens"], delta["output_tokens"]) == (len(calls), *totals)
    assert delta["cost_unknown"] == 0
    expected = sum(
        (_BOOK.cost_row("openai", ("gpt-4o-mini",), _START, (i, o, 0, 0))[0] for _, i, o in calls), Decimal(0)
    )
    assert delta["cost_usd"] == expected


def _summary(req: Any) -> dict[str, Any]:
    batch = decode_request(req, "p")
    with tempfile.TemporaryDirectory() as tmp:
        stitcher = Stitcher(Path(tmp))
        ((key, part),) = batch.partitions.items()
        marked = stitcher.before_write(key, part.spans)
        (row,) = trace_deltas(marked, []).to_pylist()
    return row  # type: ignore[no-any-return]


def test_dspy_counts_the_inner_completion_that_carries_the_usage() -> None:
    trace_id, wrapper = new_trace_id(), new_span_id()
    spans = [
        span(trace_id, wrapper, "LM.__call__", _START, _START + 100, attrs=DSPY_LM_CALL),
        span(trace_id, new_span_id(), "completion", _START + 1, _START + 99, wrapper, DSPY_COMPLETION),
    ]
    delta = _summary(request(spans))
    assert (delta["llm_calls"], delta["input_tokens"], delta["cache_read_tokens"], delta["output_tokens"]) == (
        1,
        16,
        15,
        15,
    )
    assert (
        delta["cost_unknown"] == 0
        and delta["cost_usd"] == _BOOK.cost_row("openai", ("gpt-4o-mini",), _START, (16, 15, 15, 0))[0]
    )
    assert delta["providers"] == ["openai"]


# --- the reported cost in the API ---------------------------------------------------------------------------


def _detail(server: Any, attrs: dict[str, Any]) -> dict[str, Any]:
    trace_id, span_id = new_trace_id(), new_span_id()
    start = time.time_ns()
    spans = [span(trace_id, span_id, "litellm_request", start, start + 10**6, attrs=attrs)]
    body = bytes(request(spans).SerializeToString())
    assert post(server, body).status_code == 200
    server.collector.flush()
    response = httpx.get(f"{server.api_url}/v1/spans/{trace_id.hex()}/{span_id.hex()}", timeout=10)
    assert response.status_code == 200, response.text
    detail: dict[str, Any] = response.json()
    return detail


def test_span_detail_shows_the_reported_cost_beside_ours_when_they_differ(server: Any) -> None:
    agree = _detail(server, LITELLM_REQUEST)  # LiteLLM's price map and genai-prices agree on gpt-4o-mini
    assert agree["cost_source"] == "genai-prices:openai/gpt-4o-mini"
    assert agree["genai"]["reported_cost_usd"] == pytest.approx(1.8525e-05) and agree["reported_cost_differs"] is False
    off = _detail(server, {**LITELLM_REQUEST, "gen_ai.cost.total_cost": 0.002})  # $42/M tokens off
    assert off["cost_usd"] == pytest.approx(1.8525e-05) and off["reported_cost_differs"] is True
    unknown = _detail(server, {**LITELLM_REQUEST, "gen_ai.request.model": "in-house-llm-7b"})
    assert (unknown["cost_source"], unknown["cost_known"]) == (REPORTED_SOURCE, True)
    assert unknown["cost_usd"] == unknown["genai"]["reported_cost_usd"] == pytest.approx(1.8525e-05)
    assert unknown["reported_cost_differs"] is False


@pytest.mark.parametrize(
    ("ours", "reported", "tokens", "differs"),
    [
        ("0.000018525", "0.000018525", 47, False),
        ("0.000018525", "0.0000185254", 47, False),  # 0.4 µ$ over 47 tokens: under a cent per million
        ("0.000018525", "0.000019525", 47, True),  # 1 µ$ over 47 tokens: ~$0.02 per million
        ("0", "0.000001", 0, True),
        (None, "0.1", 10, False),
    ],
)
def test_reported_cost_differs_by_more_than_a_cent_per_million_tokens(
    ours: str | None, reported: str, tokens: int, differs: bool
) -> None:
    row = {
        "cost_usd": None if ours is None else Decimal(ours),
        "reported_cost_usd": Decimal(reported),
        "total_tokens": tokens,
        "cost_source": "genai-prices:x/y",
    }
    assert reported_cost_differs(row) is differs
