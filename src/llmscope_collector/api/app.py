"""`create_app`: the Litestar app factory; routes, dependencies and error handlers in one call."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.routes import HTTPRoute
from litestar.types import ASGIApp, Message, Receive, Scope, Send

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
from llmscope_collector.api.controllers.export import ExportController
from llmscope_collector.api.controllers.metrics import MetricsController
from llmscope_collector.api.controllers.metrics_prometheus import METRICS_STATE, PrometheusController
from llmscope_collector.api.controllers.projects import ProjectController
from llmscope_collector.api.controllers.prompts import PromptController
from llmscope_collector.api.controllers.scores import ScoreController, ScoreIngest
from llmscope_collector.api.controllers.sessions import SessionController, SessionDeleter
from llmscope_collector.api.controllers.spans import SpanController
from llmscope_collector.api.controllers.system import SystemController
from llmscope_collector.api.controllers.traces import TraceController, trace_reader
from llmscope_collector.api.controllers.ui import SCHEMA_RENDER_PLUGINS, UI_ROUTER
from llmscope_collector.api.exceptions import EXCEPTION_HANDLERS
from llmscope_collector.auth.policy import AuthPolicy
from llmscope_collector.ingest_status import IngestStatus
from llmscope_collector.metrics import Metrics
from llmscope_collector.query.backend import QueryBackend
from llmscope_collector.query.export import ExportReader
from llmscope_collector.query.scores import ScoreStore


def create_app(
    store: QueryBackend,
    *,
    buffered: Callable[[], int] = lambda: 0,
    ingest: Callable[[], IngestStatus] = IngestStatus,
    auth: AuthPolicy | None = None,
    metrics: Metrics | None = None,
    alerts: AlertService | None = None,
    retention: Retention | None = None,
    settle: Callable[[], None] = lambda: None,
    scores: ScoreStore | None = None,
    score_ingest: ScoreIngest | None = None,
    exports: ExportReader | None = None,
    delete_session: SessionDeleter | None = None,
    debug: bool = False,
) -> Litestar:
    """The API over `store`; `buffered` reports spans accepted but not yet in Parquet.

    `auth` is the collector's policy (API keys, admin token); without it every caller reads `default`
    and project administration is refused. `metrics` (the server's registry) is published on `/metrics`.
    `scores` reads the stored scores; `score_ingest` appends posted ones to the collector's WAL;
    `exports` reads the spans and content `GET /v1/export` streams. `delete_session` removes a session
    (default: the engine's own deletion over a data dir; in cluster mode the bucket's, `query.deletion`).
    """
    deleter: SessionDeleter = delete_session or store.delete_session
    allowed: dict[str, str] = {}
    app = Litestar(
        route_handlers=[
            TraceController,
            SpanController,
            SessionController,
            CostController,
            ExportController,
            MetricsController,
            PromptController,
            ScoreController,
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
            "session_deleter": Provide(lambda: deleter, use_cache=True, sync_to_thread=False),
            "score_store": Provide(lambda: scores, use_cache=True, sync_to_thread=False),
            "score_ingest": Provide(lambda: score_ingest, use_cache=True, sync_to_thread=False),
            "export_reader": Provide(lambda: exports, use_cache=True, sync_to_thread=False),
            "trace_reader": trace_reader(store, scores),
        },
        exception_handlers={**EXCEPTION_HANDLERS, **AUTH_EXCEPTION_HANDLERS},  # type: ignore[arg-type,dict-item]
        openapi_config=OpenAPIConfig(
            title="llmscope API",
            version=__version__,
            path="/schema",
            render_plugins=SCHEMA_RENDER_PLUGINS,
        ),
        logging_config=None,  # the process configures logging (log_config.py), not Litestar
        middleware=[partial(_allow_every_method, allowed)],
        debug=debug,
    )
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            allowed[route.path_format] = allowed[route.path] = ", ".join(sorted(route.methods))
    return app


def _allow_every_method(allowed: dict[str, str], app: ASGIApp) -> ASGIApp:
    """`OPTIONS` lists every method of the path. Litestar's own answer is made when the first
    controller method of a path is registered, so it misses those added after it (GET next to POST
    on `/v1/alerts/rules`). Runs after routing, so the scope names the route's path template."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        methods = allowed.get(str(scope.get("path_template", ""))) if scope.get("method") == "OPTIONS" else None
        if methods is None:
            await app(scope, receive, send)
            return

        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                message = {**message, "headers": [*headers, (b"allow", methods.encode())]}  # type: ignore[typeddict-item]
            await send(message)

        await app(scope, receive, send_with_allow)

    return middleware
