"""create_app(): the one place the web application is assembled, and nothing else.

The API (`app.api.router`), the dashboard (`app.ui`) and each data domain's
controllers and pages (from `app.catalog`) are put together here with the
lifespan (one async pool per process), the shared request checks
(`app.web.security`, `app.web.options`), exact JSON and the problem+json
error mapping (`app.web`). `spine api` serves it with uvicorn (factory mode).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.datastructures import State
from litestar.openapi.spec import Tag

from app.api.docs import assets_router, index, root
from app.api.openapi import describe_the_server
from app.api.router import api_router, openapi_config, scrape_router
from app.api.routes.health import ReadinessCache, migrations_on_disk
from app.catalog import DOMAINS, registry_for
from app.config import Settings, get_settings
from app.db import database_url, open_async_pool
from app.domains import Catalog
from app.engine.backends import make_backend
from app.engine.registry import Registry
from app.engine.wake import Waker
from app.logs import configure_logging
from app.ui import UiParts, template_config, ui_lifespan, ui_router
from app.web.http_metrics import HttpMetrics
from app.web.options import complete_allow_header
from app.web.problems import exception_to_response
from app.web.responses import ExactJSONResponse
from app.web.security import SpineRequest, reject_nul_in_url

__all__ = ["create_app"]


def create_app(
    settings: Settings | None = None,
    registry: Registry | None = None,
    catalog: Catalog | None = None,
) -> Litestar:
    """The application. Settings, the catalog and the registry are read here once and
    handed to every handler through the app's state."""
    settings = settings or get_settings()
    catalog = catalog or DOMAINS
    registry = registry or registry_for(catalog)
    configure_logging(settings.log_level, settings.log_format)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        pool = await open_async_pool(database_url(settings), settings, name="spine-api")
        app.state.pool = pool
        # Concurrent POSTs share NOTIFYs sent after their commits (app.engine.wake).
        app.state.waker = waker = Waker(pool)
        try:
            yield
        finally:
            await waker.close()
            await pool.close()

    ui = UiParts.of(catalog)
    app = Litestar(
        route_handlers=[
            api_router([c for d in catalog for c in d.controllers()]),
            scrape_router(),
            index,
            root,
            assets_router(),
            ui_router(settings, ui),
        ],
        middleware=[HttpMetrics],
        lifespan=[lifespan, ui_lifespan],
        template_config=template_config(ui),
        state=State(
            {
                "settings": settings,
                "registry": registry,
                "datasets": catalog.datasets(),
                "backend": make_backend(settings),
                "max_body_bytes": settings.max_body_bytes,
                "migrations": migrations_on_disk(),
                "readiness": ReadinessCache(),
            }
        ),
        request_class=SpineRequest,
        response_class=ExactJSONResponse,
        request_max_body_size=settings.max_body_bytes,
        before_request=reject_nul_in_url,
        before_send=[complete_allow_header],
        exception_handlers={Exception: exception_to_response},
        openapi_config=openapi_config(
            [Tag(name=d.name, description=d.description) for d in catalog]
        ),
        logging_config=None,  # app.logs configures logging for every process
    )
    describe_the_server(app.openapi_schema, registry, settings)
    return app
