"""`create_app`: the Litestar app factory; routes, dependencies and error handlers in one call."""

from __future__ import annotations

from collections.abc import Callable

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import RedocRenderPlugin, SwaggerRenderPlugin

from llmscope_collector import __version__
from llmscope_collector.api.controllers.system import SystemController
from llmscope_collector.api.controllers.traces import TraceController
from llmscope_collector.api.exceptions import EXCEPTION_HANDLERS
from llmscope_collector.query.store import TraceStore


def create_app(store: TraceStore, *, buffered: Callable[[], int] = lambda: 0, debug: bool = False) -> Litestar:
    """The API over `store`; `buffered` reports spans accepted but not yet in Parquet."""
    return Litestar(
        route_handlers=[TraceController, SystemController],
        dependencies={
            "store": Provide(lambda: store, use_cache=True, sync_to_thread=False),
            "buffered": Provide(lambda: buffered, use_cache=True, sync_to_thread=False),
        },
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        openapi_config=OpenAPIConfig(
            title="llmscope API",
            version=__version__,
            path="/schema",
            render_plugins=[SwaggerRenderPlugin(), RedocRenderPlugin()],
        ),
        debug=debug,
    )
