"""`/v1/prompts`: how each prompt (and each version of it) performs: uses, tokens, latency, errors, cost."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath

from llmscope_collector.api.controllers.traces import UNAUTHENTICATED, From, Store, To
from llmscope_collector.api.schemas import PromptList, PromptVersions
from llmscope_collector.query.filters import TimeRange


class PromptController(Controller):
    path = "/v1/prompts"
    tags = ["prompts"]

    @get(
        "/",
        operation_id="listPrompts",
        summary="Prompts used by LLM calls",
        responses=UNAUTHENTICATED,
        sync_to_thread=True,
    )
    def list_prompts(
        self,
        store: Store,
        caller_project: NamedDependency[str],
        from_: From = None,
        to: To = None,
    ) -> PromptList:
        return store.prompts(caller_project, TimeRange.parse(from_, to))

    @get(
        "/{name:str}/versions",
        operation_id="listPromptVersions",
        summary="Per-version stats of one prompt",
        responses=UNAUTHENTICATED,
        sync_to_thread=True,
    )
    def versions(
        self,
        store: Store,
        caller_project: NamedDependency[str],
        name: FromPath[str],
        from_: From = None,
        to: To = None,
    ) -> PromptVersions:
        return store.prompt_versions(caller_project, name, TimeRange.parse(from_, to))
