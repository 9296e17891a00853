"""DSPy through OpenInference (openinference-instrumentation-dspy) with the LiteLLM engine, whose calls
openinference-instrumentation-litellm records: DSPy's `LM.__call__` is an LLM-kind wrapper with no usage;
the call (usage, cache reads, `llm.cost.total`, model `openai/gpt-4o-mini`) is LiteLLM's span under it."""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no price-map download at import

from collections.abc import Iterator
from typing import Any

import dspy
import pytest
from openinference.instrumentation.dspy import DSPyInstrumentor
from openinference.instrumentation.litellm import LiteLLMInstrumentor
from tests.interop.frameworks import MODEL, QUESTION, SYSTEM, check_tree_and_counts, openai_truth
from tests.interop.harness import hex_trace_id
from tests.interop.scenarios import Bench, Package

PACKAGE = Package(
    param="dspy",
    distribution="openinference-instrumentation-dspy",
    client="dspy",
    instrumentor=DSPyInstrumentor,
    dialect="OpenInference (Arize): DSPy + LiteLLM",
)


class Ask(dspy.Module):  # type: ignore[misc]
    """A one-step program: the question to the model, its text back."""

    def __init__(self, lm: Any) -> None:
        super().__init__()
        self.model = lm

    def forward(self, question: str) -> Any:
        return self.model(messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}])


@pytest.fixture
def instrumented(bench: Bench) -> Iterator[None]:
    litellm_instrumentor, dspy_instrumentor = LiteLLMInstrumentor(), DSPyInstrumentor()
    litellm_instrumentor.instrument(tracer_provider=bench.app.provider)
    dspy_instrumentor.instrument(tracer_provider=bench.app.provider)
    yield
    dspy_instrumentor.uninstrument()
    litellm_instrumentor.uninstrument()


def test_program_calls_count_the_inner_call_with_its_cache_and_cost(bench: Bench, instrumented: None) -> None:
    rec = bench.recorder
    base = bench.sim.base_url + "/v1"
    lm = dspy.LM(f"openai/{MODEL}", engine="litellm", api_base=base, api_key="k", cache=False, num_retries=0)
    program = Ask(lm)
    with bench.app.tracer.start_as_current_span("interop-root") as root:
        program(question=QUESTION)
        program(question=QUESTION)
    calls = [
        openai_truth(f"LM call {i + 1}", entry["usage"], getattr(entry.get("response"), "id", None))
        for i, entry in enumerate(lm.history[-2:])
    ]
    assert calls[1].cache_read > 0
    waterfall = check_tree_and_counts(rec, bench.server, bench.app, hex_trace_id(root), calls, parents={"LM.__call__"})
    wrappers = [s for s in waterfall["spans"] if s["name"] == "LM.__call__"]
    # DSPy's wrapper sends the output messages but no usage: an LLM span, shown, not counted.
    rec.ok(
        "structure",
        len(wrappers) == 2 and all(s["counted"] is False for s in wrappers),
        f"LM.__call__ wrappers counted: {[(s['operation'], s['counted']) for s in wrappers]}",
    )
    rec.info["tree"] = " ⊃ ".join(
        dict.fromkeys(s["name"] for s in sorted(waterfall["spans"], key=lambda s: s["depth"]))
    )
    rec.verify()
