"""A deterministic simulated LLM provider (Anthropic Messages + OpenAI APIs) on a local port.

A tool for tests and demos, kept out of the SDK an application imports (`llmscope_sdk`); run it
alone with `python -m llmscope_sim`, and `python -m llmscope_sim.demo_agent` is the demo app.

Lets tests, `llmscope demo` and benchmarks drive the real `anthropic` and `openai` clients
without network access or API keys::

    with SimulatedProvider(seed=0) as sim:
        client = anthropic.Anthropic(base_url=sim.base_url, api_key="test", max_retries=0)
        openai_client = openai.OpenAI(base_url=sim.base_url + "/v1", api_key="test")
"""

from ._server import RecordedRequest, SimulatedProvider

__all__ = ["RecordedRequest", "SimulatedProvider"]
