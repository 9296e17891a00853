"""The C extension's plan application (`_genai_plan.c`) against normalize's pure-Python path.

`canonical_genai` applies a span's plan (its table columns, aliases, derived columns, total) in C
when the extension is built. Its row must be the Python path's on any attribute map (same columns,
values and order), wherever it answers; where it does not decide (no plan yet, a non-dict mapping, a
value whose presence takes Python's `!=`) it answers None and the Python path decides; and it must
answer for the usual span, or it saves nothing. A malformed plan is refused with a TypeError (every
tuple's shape is checked before it is read).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from llmscope_collector.processors import normalize
from llmscope_collector.processors.decode import attributes_dict
from tests.collector.test_normalize import _EVENTS, _KEYS, _VALUES, CASES, EVENT_CASES
from tests.otlp_strategies import otlp_llm_requests

if os.environ.get("LLMSCOPE_REQUIRE_NATIVE") and not normalize.NATIVE:  # CI builds it: a failed build fails
    raise RuntimeError("LLMSCOPE_REQUIRE_NATIVE is set but the C extension _genai_plan is not built")
pytestmark = pytest.mark.skipif(not normalize.NATIVE, reason="the C extension is not built")

_native: Callable[..., Any] = normalize._apply_plan  # (the C's: these tests also hand it malformed plans)


class _Str(str):
    """A str subclass: not the C's fast value (it hands it to the plan's Python callables)."""


class _Int(int):
    """An int subclass: not the C's fast value either."""


class _Unequal:
    """A value whose comparison raises: the Python path raises on it; the C must do what it does."""

    def __eq__(self, other: object) -> bool:
        raise ValueError("no comparison")

    __hash__ = object.__hash__

    def __str__(self) -> str:
        return "unequal"


_ODD = st.one_of(
    st.builds(_Str, st.text(max_size=5)),
    st.builds(_Int, st.integers(min_value=-(2**65), max_value=2**65)),
    st.binary(max_size=4),
    st.tuples(st.integers(), st.text(max_size=2)),
    st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**40, True, False, 0, 0.0, -0.0, 3.0, "7 ", " 8"]),
    st.just("x" * 100_000),
    st.builds(_Unequal),
)
# Every key a plan reads (normalize's own tables: every column's aliases), the normalize tests' keys and
# arbitrary ones, with the normalize tests' values and odd ones.
_ALL_KEYS = st.one_of(st.sampled_from(sorted(normalize._KNOWN_KEYS)), _KEYS, st.text(max_size=20))
_ATTRS = st.dictionaries(_ALL_KEYS, st.one_of(_VALUES, _ODD), max_size=16)


def _outcome(attrs: Mapping[str, Any], *args: Any, **kwargs: Any) -> tuple[str, Any]:
    try:
        out = normalize.canonical_genai(attrs, *args, **kwargs)
    except Exception as exc:  # the Python path's own exceptions (only `_Unequal` raises): the C's must match
        return "raised", type(exc)
    return "row", [(column, type(value), value) for column, value in out.items()]  # (1 == True == 1.0)


def _both(attrs: Mapping[str, Any], *args: Any, **kwargs: Any) -> tuple[tuple[str, Any], tuple[str, Any]]:
    """(Python path's outcome, C path's outcome): the Python one first, so the C finds the plan it made."""
    normalize._apply_plan = normalize._python_apply_plan
    try:
        pure = _outcome(attrs, *args, **kwargs)
    finally:
        normalize._apply_plan = _native
    return pure, _outcome(attrs, *args, **kwargs)


@settings(max_examples=600, deadline=None)
@given(_ATTRS, _EVENTS, st.one_of(st.none(), st.integers(min_value=0, max_value=2**64)), st.booleans())
@example({"gen_ai.usage.input_tokens": 2**63, "gen_ai.usage.output_tokens": _Int(3)}, [], None, False)
@example({"llm.token_count.prompt": "", "gen_ai.usage.prompt_tokens": " 5 "}, [], None, False)
@example({"gen_ai.usage.total_tokens": "9", "gen_ai.usage.input_tokens": True}, [], None, False)
@example({"gen_ai.response.model": _Str("m"), "llm.model_name": b"x"}, [], None, True)
@example({"llm.token_count.prompt": _Unequal(), "gen_ai.usage.prompt_tokens": 4}, [], None, False)
def test_the_row_is_the_python_paths_on_any_attributes(
    attrs: dict[str, Any], events: list[dict[str, Any]], start_ns: int | None, failed: bool
) -> None:
    pure, native = _both(attrs, events, start_ns=start_ns, failed=failed)
    assert native == pure


@pytest.mark.parametrize("attrs", [a for _, a, _ in CASES] + [a for _, a, _, _, _ in EVENT_CASES])
def test_it_decides_the_dialects_spans_as_the_python_path(attrs: dict[str, Any]) -> None:
    """Each dialect's realistic span: the C answers (once the span's plan is made), with the Python row."""
    normalize._python_apply_plan(normalize._KEYED_PLANS, attrs)  # makes and remembers the key tuple's plan
    decided = _native(normalize._KEYED_PLANS, attrs)
    assert decided is not None
    pure = normalize._python_apply_plan(normalize._KEYED_PLANS, attrs)
    assert len(decided) == len(normalize.GENAI_COLUMNS)
    assert [(type(v), v) for v in decided] == [(type(v), v) for v in pure]


@settings(max_examples=40, deadline=None)
@given(otlp_llm_requests())
def test_decoded_model_calls_get_the_python_paths_row(request: Any) -> None:
    """Spans as a decoder hands them over (OTel's AnyValue types), from the shared OTLP strategies."""
    for rs in request.resource_spans:
        for ss in rs.scope_spans:
            for span in ss.spans:
                pure, native = _both(attributes_dict(span.attributes), start_ns=span.start_time_unix_nano)
                assert native == pure


def test_what_it_does_not_decide_goes_to_the_python_path() -> None:
    attrs = {"gen_ai.request.model": "m", "gen_ai.usage.input_tokens": 3}
    normalize._python_apply_plan(normalize._KEYED_PLANS, attrs)
    assert _native(normalize._KEYED_PLANS, attrs) is not None
    assert _native(normalize._KEYED_PLANS, MappingProxyType(attrs)) is None  # not a dict
    assert _native(normalize._KEYED_PLANS, {**attrs, "never.planned": object()}) is None  # no plan for these keys
    assert _native({}, attrs) is None
    assert normalize.canonical_genai(MappingProxyType(attrs))["request_model"] == "m"


@pytest.mark.parametrize(
    "plan",
    [
        (),
        ("not a row",) * 7,
        ({}, (), (), (), (), (0, 1, 2, None), frozenset()),  # (a dict row: format 1's)
        ([None] * 3, "strs", (), (), (), (0, 1, 2, None), frozenset()),
        ([None] * 3, ((0, "k"),), (), (), (), (0, 1, 2, None), frozenset()),
        ([None] * 3, (), ((0, "k", None, None),), (), (), (0, 1, 2, None), frozenset()),
        ([None] * 3, (), (), ((0, "keys", str),), (), (0, 1, 2, None), frozenset()),
        ([None] * 3, (), (), (), ((0,),), (0, 1, 2, None), frozenset()),
        ([None] * 3, (), (), (), (), (0, 1, 2), frozenset()),
        # columns that are no position in the row: out of its range, negative, not an int, a name
        ([None] * 3, ((3, "k", str),), (), (), (), (0, 1, 2, None), frozenset()),
        ([None] * 3, ((-1, "k", str),), (), (), (), (0, 1, 2, None), frozenset()),
        ([None] * 3, (), (), (), ((2**70, len),), (0, 1, 2, None), frozenset()),
        ([None] * 3, (), (), (), (), (0, 1, "o", None), frozenset()),
        ([None] * 3, (), (), (), (), (0, 3, 2, None), frozenset()),
        ([None] * 3, (), (), (), ((1.0, len),), (0, 1, 2, None), frozenset()),
    ],
)
def test_a_malformed_plan_is_refused_not_read_out_of_bounds(plan: tuple[Any, ...]) -> None:
    with pytest.raises(TypeError):
        _native({("k",): plan}, {"k": "v"})


def test_arguments_are_checked() -> None:
    with pytest.raises(TypeError):
        _native({})  # type: ignore[call-arg]


def test_calls_leave_no_reference_behind() -> None:
    """Every path (decided, undecided, a callable raising, a malformed plan) returns what it took: the
    reference counts of the values, keys and plans after 1000 more calls are those after 100."""
    # Values of each kind the C meets (fast, slow, undecided, raising), none of them the interpreter's shared
    # small ints, bools or "" (whose counts move with whatever else runs).
    model, tokens, big, sent, unequal = "m-held", 70_001, 2**70, b"x", _Unequal()
    spans: list[dict[str, Any]] = [
        {"gen_ai.request.model": model, "gen_ai.usage.input_tokens": tokens, "gen_ai.usage.output_tokens": big},
        {"llm.token_count.prompt": sent, "llm.token_count.completion": tokens, "gen_ai.response.model": ""},
        {"gen_ai.usage.total_tokens": "9", "gen_ai.usage.prompt_tokens": tokens, "llm.token_count.prompt": model},
        {"gen_ai.response.model": unequal, "gen_ai.usage.prompt_tokens": _Unequal(), "llm.token_count.prompt": 1},
    ]
    bad: dict[tuple[str, ...], Any] = {("k",): ([None] * 3, ((0, "k"),), (), (), (), (0, 1, 2, None), frozenset())}

    def calls(n: int) -> None:
        for _ in range(n):
            for attrs in spans:
                try:
                    _native(normalize._KEYED_PLANS, attrs)
                except ValueError:  # `_Unequal`'s, from the plan's Python callables
                    pass
            with pytest.raises(TypeError):
                _native(bad, {"k": "v"})

    for attrs in spans[:-1]:
        normalize._python_apply_plan(normalize._KEYED_PLANS, attrs)  # (makes each key tuple's plan)
    with pytest.raises(ValueError):
        normalize._python_apply_plan(normalize._KEYED_PLANS, spans[-1])
    held = [
        model,
        tokens,
        big,
        sent,
        unequal,
        *(k for a in spans for k in a),
        *(normalize._KEYED_PLANS[tuple(a)] for a in spans),
    ]
    calls(100)
    before = [sys.getrefcount(o) for o in held]
    calls(1000)
    assert [sys.getrefcount(o) for o in held] == before


def test_a_remembered_plan_reads_the_spans_own_key_objects() -> None:
    """The plan remembered for a key tuple holds that span's key strs (the decoder's shared ones), so the
    next span finds them by identity; a span with equal keys that are other objects gets the same row."""
    keys = ["gen_ai.request.model", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "llm.model_name"]
    own = ["".join(k) for k in keys]  # (new str objects, equal to the table's literals)
    attrs = dict(zip(own, ["m", 3, 4, "n"], strict=True))
    first = normalize._python_apply_plan(normalize._KEYED_PLANS, attrs)
    plan = normalize._KEYED_PLANS[tuple(own)]
    read = [key for _, key, _ in (*plan.strs, *plan.ints)] + [k for _, aliases, _ in plan.multi for k in aliases]
    assert read and all(any(key is k for k in own) for key in read)
    others = {"".join(k): v for k, v in attrs.items()}
    assert _native(normalize._KEYED_PLANS, attrs) == first == _native(normalize._KEYED_PLANS, others)
    assert first[normalize._AT["input_tokens"]] == 3 and first[normalize._AT["total_tokens"]] == 7


_REASONS = st.one_of(
    st.sampled_from(["stop", "end_turn", "max_tokens", "STOP", "Length", "tool_use", "", "\u017ftop", "stop ", "x"]),
    st.text(max_size=4),
    st.builds(_Str, st.sampled_from(["stop", "end_turn"])),
    st.integers(),
    st.none(),
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(st.lists(_REASONS, max_size=4), _REASONS),
    st.one_of(st.sampled_from(["openai", "OpenAI", "anthropic", "Azure.AI.OpenAI", "", "vertex_ai"]), _ODD),
)
def test_the_derived_fast_paths_answer_as_their_functions(reasons: Any, provider: Any) -> None:
    """`_provider`'s memo and `_finish_reasons`' usual list, which the C answers without calling them (a
    reason in lowercase ASCII, a provider the memo holds; the functions decide the rest): the same rows."""
    attrs = {"gen_ai.provider.name": provider, "gen_ai.response.finish_reasons": reasons, "gen_ai.request.model": "m"}
    for _ in range(2):  # the second time, the memo holds the provider the first normalized
        pure, native = _both(attrs)
        assert native == pure
    usual = isinstance(reasons, list) and reasons and all(type(r) is str and r and r.isascii() for r in reasons)
    if usual and pure[0] == "row":  # (a provider whose comparison raises: raised either way, above)
        row = dict(zip(normalize.GENAI_COLUMNS, _native(normalize._KEYED_PLANS, attrs), strict=True))
        assert row["finish_reasons"] == [normalize.FINISH_REASONS.get(r.lower(), r) for r in reasons]
