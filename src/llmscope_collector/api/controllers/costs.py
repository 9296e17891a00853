"""`/v1/costs`: tokens and USD by model, provider, project, service, user, session, prompt, day or hour."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromQuery, QueryParameter

from llmscope_collector.api.controllers.traces import UNAUTHENTICATED, From, Store, To
from llmscope_collector.api.schemas import CostReport, ErrorBody
from llmscope_collector.query.filters import TimeRange
from llmscope_collector.query.rollups import parse_group_by


def span_filters(service: str | None, model: str | None, provider: str | None) -> dict[str, str]:
    values = {"service": service, "model": model, "provider": provider}
    return {k: v for k, v in values.items() if v is not None}


class CostController(Controller):
    path = "/v1/costs"
    tags = ["costs"]

    @get(
        "/",
        operation_id="getCosts",
        summary="Cost roll-up; `cost_unknown` counts calls with no price (never counted as $0)",
        responses={
            400: ResponseSpec(data_container=ErrorBody, description="A parameter is invalid"),
            **UNAUTHENTICATED,
        },
        sync_to_thread=True,
    )
    def costs(
        self,
        store: Store,
        caller_project: NamedDependency[str],
        group_by: Annotated[
            str | None,
            QueryParameter(
                description="Comma-separated, at most 3: model|provider|project|service|user|session|prompt|day|hour"
            ),
        ] = "model",
        from_: From = None,
        to: To = None,
        service: FromQuery[str | None] = None,
        model: FromQuery[str | None] = None,
        provider: FromQuery[str | None] = None,
    ) -> CostReport:
        return store.costs(
            caller_project,
            parse_group_by(group_by),
            TimeRange.parse(from_, to),
            span_filters(service, model, provider),
        )
