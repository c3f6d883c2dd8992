"""The API's documentation, served offline: Swagger UI, ReDoc, the OpenAPI file, an index.

Litestar's render plugins load their scripts and fonts from CDNs, so the docs
page is blank without internet access. Here every asset comes from the app:
Swagger UI from the `swagger-ui-py` wheel's copy of swagger-ui-dist, ReDoc
from `static/redoc` (vendored from the npm `redoc` package, MIT, see its
LICENSE). The OpenAPI document is also tidied once before it is served:
Litestar writes integer bounds as floats (`"maximum": 500.0`); they become
integers again.

`GET /` and `GET /api/v1` (which `make up` prints) answer with links to the
docs, the health probes and the main routes.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import msgspec
from litestar import Litestar, Request, get
from litestar.openapi.plugins import (
    JsonRenderPlugin,
    OpenAPIRenderPlugin,
    RedocRenderPlugin,
    SwaggerRenderPlugin,
    YamlRenderPlugin,
)
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

from app import __version__
from app.web.route_index import RouteGroup, route_groups

__all__ = ["ASSETS_PATH", "assets_router", "index", "render_plugins", "root"]

ASSETS_PATH = "/schema/assets"
REDOC_DIR = Path(__file__).parent / "static" / "redoc"
_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")


def swagger_dir() -> Path:
    """swagger-ui-dist's files inside the `swagger_ui` package (found without importing it)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed (a dependency of market-spine)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def integral_bounds(schema: Any) -> None:
    """In place: `500.0` -> `500` for the numeric bounds of the whole document."""
    stack = [schema]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key in _BOUNDS:
                value = item.get(key)
                if isinstance(value, float) and value.is_integer():
                    item[key] = int(value)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _big_bound(schema: dict[str, Any]) -> None:
    # 2**63 - 1 went through a float (9.223372036854776e18); give it back its exact value.
    stack: list[Any] = [schema]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("maximum") == 2**63:
                item["maximum"] = 2**63 - 1
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


class _Tidy(OpenAPIRenderPlugin):
    """Every rendering goes through render_json/render_yaml: tidy the document there (once)."""

    def render_json(  # type: ignore[override]  # Litestar's is typed without `self`'s kind
        self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]
    ) -> bytes:
        _tidy(openapi_schema, request)
        return super().render_json(request, openapi_schema)


def _tidy(openapi_schema: dict[str, Any], request: Request[Any, Any, Any]) -> None:
    if not openapi_schema.get("x-tidy"):
        integral_bounds(openapi_schema)
        _big_bound(openapi_schema)
        openapi_schema["x-tidy"] = True  # the dict is Litestar's cached copy: do it once


class _Json(_Tidy, JsonRenderPlugin):
    pass


class _Yaml(YamlRenderPlugin):
    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        _tidy(openapi_schema, request)
        return super().render(request, openapi_schema)


class _Swagger(_Tidy, SwaggerRenderPlugin):
    pass


class _Redoc(_Tidy, RedocRenderPlugin):
    pass


def render_plugins() -> list[OpenAPIRenderPlugin]:
    favicon = f"<link rel='icon' type='image/png' href='{ASSETS_PATH}/favicon-32x32.png'>"
    return [
        _Swagger(
            path=["/", "/swagger"],
            js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            css_url=f"{ASSETS_PATH}/swagger-ui.css",
            standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
            favicon=favicon,
        ),
        _Redoc(js_url=f"{ASSETS_PATH}/redoc.standalone.js", google_fonts=False, favicon=favicon),
        _Json(),
        _Yaml(path=["/openapi.yaml", "/openapi.yml"]),
    ]


def assets_router() -> ControllerRouterHandler:
    return create_static_files_router(
        path=ASSETS_PATH,
        directories=[swagger_dir(), REDOC_DIR],
        include_in_schema=False,
        opt={"public": True},
    )


class Link(msgspec.Struct, kw_only=True):
    href: str
    title: str


class Index(msgspec.Struct, kw_only=True):
    """Where to go from here: the main links, and every route by group (read from the app)."""

    name: str
    version: str
    links: dict[str, Link]
    groups: dict[str, RouteGroup]


_LINKS = {
    "docs": ("/schema", "Interactive API docs (Swagger UI)"),
    "redoc": ("/schema/redoc", "API reference (ReDoc)"),
    "openapi": ("/schema/openapi.json", "The OpenAPI document"),
    "health": ("/api/v1/health", "Liveness"),
    "ready": ("/api/v1/health/ready", "Readiness: database and migrations"),
    "pipelines": ("/api/v1/pipelines", "What can be submitted"),
    "executions": ("/api/v1/executions", "Submit (POST) and list executions"),
    "events": ("/api/v1/executions/{id}/events", "One execution's events"),
    "metrics": ("/api/v1/otc/metrics/daily", "Daily OTC metrics per symbol"),
    "trades": ("/api/v1/otc/trades?symbol=ACME", "One symbol's trades"),
    "loads": ("/api/v1/otc/loads", "Files loaded by otc_ingest"),
    "rejects": ("/api/v1/otc/loads/{id}/rejects", "One load's rejected lines"),
}


def _index(app: Litestar) -> Index:
    return Index(
        name="Market Spine",
        version=__version__,
        links={key: Link(href=href, title=title) for key, (href, title) in _LINKS.items()},
        groups=route_groups(app),
    )


@get(
    "/api/v1",
    operation_id="index",
    summary="Links to the docs, health and the main routes",
    tags=["health"],
    opt={"public": True},
    sync_to_thread=False,
)
def index(request: Request[Any, Any, Any]) -> Index:
    """Start here: every link a newcomer needs, and every route by group (also at `/`)."""
    return _index(request.app)


@get("/", include_in_schema=False, opt={"public": True}, sync_to_thread=False)
def root(request: Request[Any, Any, Any]) -> Index:
    return _index(request.app)
