"""`create_app`: the Litestar app factory; routes, dependencies and error handlers in one call."""

from __future__ import annotations

from collections.abc import Callable

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import RedocRenderPlugin, SwaggerRenderPlugin

from llmscope_collector import __version__
from llmscope_collector.alerts.service import AlertService
from llmscope_collector.api.auth import (
    AUTH_EXCEPTION_HANDLERS,
    AUTH_POLICY_STATE,
    CALLER_IS_ADMIN,
    CALLER_PROJECT,
    SEES_SERVER_DETAIL,
)
from llmscope_collector.api.controllers.alerts import AlertController
from llmscope_collector.api.controllers.cleanup import CleanupController, Retention
from llmscope_collector.api.controllers.costs import CostController
from llmscope_collector.api.controllers.metrics import MetricsController
from llmscope_collector.api.controllers.metrics_prometheus import METRICS_STATE, PrometheusController
from llmscope_collector.api.controllers.projects import ProjectController
from llmscope_collector.api.controllers.prompts import PromptController
from llmscope_collector.api.controllers.sessions import SessionController
from llmscope_collector.api.controllers.spans import SpanController
from llmscope_collector.api.controllers.system import SystemController
from llmscope_collector.api.controllers.traces import TraceController
from llmscope_collector.api.controllers.ui import UI_ROUTER
from llmscope_collector.api.exceptions import EXCEPTION_HANDLERS
from llmscope_collector.auth.policy import AuthPolicy
from llmscope_collector.ingest_status import IngestStatus
from llmscope_collector.metrics import Metrics
from llmscope_collector.query.store import TraceStore


def create_app(
    store: TraceStore,
    *,
    buffered: Callable[[], int] = lambda: 0,
    ingest: Callable[[], IngestStatus] = IngestStatus,
    auth: AuthPolicy | None = None,
    metrics: Metrics | None = None,
    alerts: AlertService | None = None,
    retention: Retention | None = None,
    settle: Callable[[], None] = lambda: None,
    debug: bool = False,
) -> Litestar:
    """The API over `store`; `buffered` reports spans accepted but not yet in Parquet.

    `auth` is the collector's policy (API keys, admin token); without it every caller reads `default`
    and project administration is refused. `metrics` (the server's registry) is published on `/metrics`.
    """
    return Litestar(
        route_handlers=[
            TraceController,
            SpanController,
            SessionController,
            CostController,
            MetricsController,
            PromptController,
            SystemController,
            ProjectController,
            PrometheusController,
            CleanupController,
            UI_ROUTER,  # the web UI at / and the live trace stream
            *([AlertController] if alerts is not None else []),  # alert rules need the collector's evaluator
        ],
        state=State({AUTH_POLICY_STATE: auth, METRICS_STATE: metrics}),
        dependencies={
            "store": Provide(lambda: store, use_cache=True, sync_to_thread=False),
            "buffered": Provide(lambda: buffered, use_cache=True, sync_to_thread=False),
            "ingest": Provide(lambda: ingest, use_cache=True, sync_to_thread=False),
            "auth_policy": Provide(lambda: auth, use_cache=True, sync_to_thread=False),
            "caller_project": CALLER_PROJECT,
            "caller_is_admin": CALLER_IS_ADMIN,
            "sees_server_detail": SEES_SERVER_DETAIL,
            "alerts": Provide(lambda: alerts, use_cache=True, sync_to_thread=False),
            "retention": Provide(lambda: retention, use_cache=True, sync_to_thread=False),
            "settle_ingest": Provide(lambda: settle, use_cache=True, sync_to_thread=False),
        },
        exception_handlers={**EXCEPTION_HANDLERS, **AUTH_EXCEPTION_HANDLERS},  # type: ignore[arg-type,dict-item]
        openapi_config=OpenAPIConfig(
            title="llmscope API",
            version=__version__,
            path="/schema",
            render_plugins=[SwaggerRenderPlugin(), RedocRenderPlugin()],
        ),
        logging_config=None,  # the process configures logging (log_config.py), not Litestar
        debug=debug,
    )
