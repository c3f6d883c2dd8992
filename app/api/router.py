"""The API's parts: the /api/v1 router, the /metrics scrape and the OpenAPI document.

`app.server.create_app` puts them together with the dashboard; the data
domains' controllers come in through `api_router`'s argument, never by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from litestar import Router
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme, Tag

from app import __version__
from app.api.docs import render_plugins
from app.api.routes.datasets import BackfillsController, DatasetsController
from app.api.routes.executions import ExecutionsController
from app.api.routes.health import list_pipelines, liveness, readiness
from app.api.routes.metrics import metrics
from app.api.routes.schedules import SchedulesController
from app.web.connection import provide_conn
from app.web.security import check_api_request

__all__ = ["API_PREFIX", "DESCRIPTION", "api_router", "openapi_config", "scrape_router"]

API_PREFIX = "/api/v1"

DESCRIPTION = """\
Market Spine ingests OTC equity trades, computes daily per-symbol metrics and
runs work as **executions** of registered **pipelines**, claimed by a worker pool.

* Errors are `application/problem+json` (RFC 9457), naming the offending field.
* Lists are keyset-paginated: follow the `Link: <...>; rel="next"` header; `cursor` is opaque.
* Money (prices, notional, VWAP) is stored and computed as exact NUMERIC, and sent as
  JSON numbers written with every digit (schema `format: decimal`), never rounded through
  a double: parse them as decimals to keep them exact.
* When `SPINE_API_TOKEN` is set, POST, PUT, PATCH and DELETE endpoints need
  `Authorization: Bearer <token>`; reads too when `SPINE_API_TOKEN_READS=1`.
  Health probes stay open.
"""


def api_router(domain_controllers: Sequence[Any]) -> Router:
    """/api/v1: executions, schedules, the domains' reads, pipelines and health."""
    return Router(
        path=API_PREFIX,
        route_handlers=[
            ExecutionsController,
            SchedulesController,
            DatasetsController,
            BackfillsController,
            *domain_controllers,
            liveness,
            readiness,
            list_pipelines,
        ],
        before_request=check_api_request,
        dependencies={"conn": Provide(provide_conn)},
    )


def scrape_router() -> Router:
    """Prometheus' path, with the token rules of a read (open unless SPINE_API_TOKEN_READS)."""
    return Router(path="/", route_handlers=[metrics], before_request=check_api_request)


def openapi_config(domain_tags: Sequence[Tag]) -> OpenAPIConfig:
    """The document at /schema: the core tags, each domain's after the schedules."""
    return OpenAPIConfig(
        title="Market Spine",
        version=__version__,
        description=DESCRIPTION,
        path="/schema",
        render_plugins=render_plugins(),  # offline: assets served by the app (app.api.docs)
        use_handler_docstrings=True,
        tags=[
            Tag(name="executions", description="Submit and follow pipeline runs."),
            Tag(name="schedules", description="Cron and interval schedules the pools fire."),
            Tag(name="datasets", description="Partitions, lineage, backfills."),
            *domain_tags,
            Tag(name="pipelines", description="What can be submitted."),
            Tag(name="health", description="Liveness and readiness probes (no token needed)."),
        ],
        components=Components(
            security_schemes={
                "bearerAuth": SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="SPINE_API_TOKEN; needed only when the server sets one.",
                )
            }
        ),
    )
