"""The web UI at `/` (index page) and `/ui/*` (its ES modules and CSS), plus the live trace stream.

Everything is plain files from `llmscope_collector/ui/static`, shipped as package data: no Node.js
at run time and no build step. The page calls the same JSON API as any client, with the API key
the user pasted (kept in the browser's localStorage) when the collector requires one.
"""

from __future__ import annotations

import openapi_ui_bundles
from litestar import Response, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.openapi.plugins import RedocRenderPlugin, SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

from llmscope_collector.api.controllers.stream import TraceStreamController
from llmscope_collector.ui import STATIC_DIR

_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_HEADERS = {"content-security-policy": _CSP, "x-content-type-options": "nosniff", "referrer-policy": "no-referrer"}


@get(["/", "/ui"], include_in_schema=False, sync_to_thread=False, cache_control=CacheControlHeader(no_cache=True))
def index() -> Response[bytes]:
    """The single page; views live in the URL fragment (`/#/traces?model=…`), so any link can be shared."""
    body = (STATIC_DIR / "index.html").read_bytes()
    return Response(body, media_type="text/html", headers=_HEADERS)


_assets = create_static_files_router(
    path="/ui/static",
    directories=[STATIC_DIR],
    name="ui_static",
    cache_control=CacheControlHeader(no_cache=True),  # revalidated by ETag: an upgrade is picked up at once
    include_in_schema=False,
)

# The OpenAPI viewers' own files, from a package that ships them: Litestar's render plugins load them
# from a CDN by default, which leaves /schema/swagger and /schema/redoc blank without internet.
SCHEMA_ASSETS = "/schema/assets"
_schema_assets = [
    create_static_files_router(
        path=f"{SCHEMA_ASSETS}/{name}",
        directories=[bundle.static_path],
        name=f"schema_assets_{name}",
        cache_control=CacheControlHeader(max_age=86400),
        include_in_schema=False,
    )
    for name, bundle in (("swagger", openapi_ui_bundles.swagger_ui), ("redoc", openapi_ui_bundles.redoc))
]
_FAVICON = f"<link rel='icon' type='image/png' href='{SCHEMA_ASSETS}/swagger/favicon-32x32.png'>"
SCHEMA_RENDER_PLUGINS = [
    SwaggerRenderPlugin(
        js_url=f"{SCHEMA_ASSETS}/swagger/swagger-ui-bundle.js",
        css_url=f"{SCHEMA_ASSETS}/swagger/swagger-ui.css",
        standalone_preset_js_url=f"{SCHEMA_ASSETS}/swagger/swagger-ui-standalone-preset.js",
        favicon=_FAVICON,
    ),
    RedocRenderPlugin(js_url=f"{SCHEMA_ASSETS}/redoc/redoc.standalone.js", google_fonts=False, favicon=_FAVICON),
]
"""`/schema/swagger` and `/schema/redoc` with their files served here (work offline)."""

UI_ROUTER = Router(path="/", route_handlers=[index, _assets, *_schema_assets, TraceStreamController])
"""The UI's routes; `create_app` registers this one router."""
