"""create_app(): the one place the API is assembled.

Routes, the lifespan (one async pool per process, opened at start-up and
closed at shutdown), the connection dependency, error mapping, OpenAPI, the
body size limit, hardened JSON decoding and the bearer-token guard are all
wired here, so reading this file tells what every request goes through.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Request, Router
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import NotAuthorizedException, ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme, Tag
from litestar.types import Message, Scope

from app import __version__
from app.api.docs import assets_router, index, render_plugins, root
from app.api.errors import MalformedBody, exception_to_response
from app.api.openapi import refuse_unknown_fields
from app.api.responses import ExactJSONResponse
from app.api.routes.executions import ExecutionsController
from app.api.routes.finra import FinraController
from app.api.routes.health import (
    ReadinessCache,
    list_pipelines,
    liveness,
    migrations_on_disk,
    readiness,
)
from app.api.routes.metrics import HTTP_METRICS, metrics
from app.api.routes.otc import OtcController
from app.api.routes.schedules import SchedulesController
from app.catalog import default_registry
from app.config import Settings, get_settings
from app.db import AsyncConn, database_url, open_async_pool
from app.engine.backends import make_backend
from app.engine.registry import Registry
from app.engine.wake import Waker
from app.logs import configure_logging
from app.ui import template_config, ui_lifespan, ui_router

__all__ = ["create_app"]

API_PREFIX = "/api/v1"
# Seconds a request waits for a pooled connection before its 503. Short: while
# the database is down a client learns it at once (and retries after
# Retry-After) instead of holding a connection of the API's for 10 s.
CONNECT_TIMEOUT = 2.0
MAX_JSON_DEPTH = 32
MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

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


class SpineRequest(Request[Any, Any, State]):
    """A request whose JSON body is refused with a 400, not a 500, when it is hostile.

    Litestar's decoder raises UnicodeDecodeError for bad UTF-8 and RecursionError
    for very deep nesting; PostgreSQL refuses NUL in text and jsonb. All three
    are the client's mistake, so they are reported as such before any handler runs.
    """

    async def json(self) -> Any:
        try:
            value = await super().json()
        except UnicodeDecodeError:
            raise MalformedBody("request body is not valid UTF-8") from None
        except RecursionError:
            raise MalformedBody(_too_deep()) from None
        _check_json(value)
        return value


def _too_deep() -> str:
    return f"request body JSON is nested more than {MAX_JSON_DEPTH} levels deep"


def _check_json(value: Any) -> None:
    """Iteratively (no recursion to exhaust): depth <= MAX_JSON_DEPTH, no NUL in any string."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise MalformedBody("request body JSON contains a NUL character (\\u0000)")
        elif isinstance(item, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise MalformedBody(_too_deep())
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


async def complete_allow_header(message: Message, scope: Scope) -> None:
    """OPTIONS answers with every method of its path (`before_send` hook).

    Litestar's own OPTIONS handler lists the methods of the first handler
    registered for a path (for /executions: `OPTIONS, POST`, not GET); the
    app's route map has them all.
    """
    if (
        message["type"] != "http.response.start"
        or scope.get("method") != "OPTIONS"
        or (template := scope.get("path_template")) is None
    ):
        return
    methods = scope["litestar_app"].route_handler_method_map.get(template)
    if methods:
        allow = ", ".join(sorted(m for m in methods if m.isupper())).encode()
        headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
        message["headers"] = [*headers, (b"allow", allow)]


async def reject_nul_in_url(request: Request[Any, Any, Any]) -> None:
    """NUL in a path or query value can never match anything and PostgreSQL refuses it: 400.

    The app's `before_request` hook. Async on purpose: Litestar runs sync hooks
    in a thread pool, two thread hops per request that cost more than the checks.
    """
    if "\x00" in request.scope["path"]:
        raise ValidationException(
            detail="the URL path contains a NUL character",
            extra=[{"key": "path", "message": "NUL character", "source": "path"}],
        )
    for key, value in request.query_params.multi_items():
        if "\x00" in key or (isinstance(value, str) and "\x00" in value):
            raise ValidationException(
                detail=f"query parameter `{key.replace(chr(0), '')}` contains a NUL character",
                extra=[{"key": key, "message": "NUL character", "source": "query"}],
            )


async def check_api_request(request: Request[Any, Any, Any]) -> None:
    """The API's and /metrics' `before_request` hook: the token rules, then the URL checks.

    A hook rather than a Litestar guard: a guard is handed a copy of its route
    handler on every request (`copy.copy`, ~13 µs, 2% of a GET).
    """
    require_token(request)
    await reject_nul_in_url(request)


def require_token(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """SPINE_API_TOKEN: required on mutating calls (and on reads with SPINE_API_TOKEN_READS=1).

    Handlers with `opt={"public": True}` (the health probes) never need it.
    Compared in constant time; a refusal never echoes what was presented.
    """
    settings: Settings = connection.app.state.settings
    token = settings.api_token
    if not token or connection.route_handler.opt.get("public"):
        return
    if connection.scope.get("method") not in MUTATING_METHODS and not settings.api_token_reads:
        return
    scheme, _, presented = connection.headers.get("authorization", "").partition(" ")
    # Digests of equal length: the comparison's time reveals neither content nor length.
    valid = hmac.compare_digest(_digest(presented.strip()), _digest(token))
    if scheme.lower() != "bearer" or not valid:
        raise NotAuthorizedException(
            detail="this call needs `Authorization: Bearer <token>` with the configured token",
            headers={"WWW-Authenticate": 'Bearer realm="market-spine"'},
        )


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()


async def provide_conn(state: State) -> AsyncIterator[AsyncConn]:
    """One pooled connection per request, returned to the pool when the request ends."""
    async with state.pool.connection(timeout=CONNECT_TIMEOUT) as conn:
        yield conn


def create_app(settings: Settings | None = None, registry: Registry | None = None) -> Litestar:
    """The API application; `spine api` serves it with uvicorn (factory mode).

    Settings and the pipeline registry are read here once and handed to every
    handler through the app's state.
    """
    settings = settings or get_settings()
    registry = registry or default_registry()
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

    api = Router(
        path=API_PREFIX,
        route_handlers=[
            ExecutionsController,
            SchedulesController,
            OtcController,
            FinraController,
            liveness,
            readiness,
            list_pipelines,
        ],
        before_request=check_api_request,
        dependencies={"conn": Provide(provide_conn)},
    )
    # Prometheus' path; it follows the token rules of a read (open unless SPINE_API_TOKEN_READS).
    scrape = Router(path="/", route_handlers=[metrics], before_request=check_api_request)
    app = Litestar(
        route_handlers=[
            api,
            scrape,
            index,
            root,
            assets_router(),
            ui_router(settings, provide_conn),
        ],
        middleware=[HTTP_METRICS.middleware],
        lifespan=[lifespan, ui_lifespan],
        template_config=template_config(),
        state=State(
            {
                "settings": settings,
                "registry": registry,
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
        openapi_config=_openapi_config(),
        logging_config=None,  # app.logs configures logging for every process
    )
    refuse_unknown_fields(app.openapi_schema, registry)
    return app


def _openapi_config() -> OpenAPIConfig:
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
            Tag(name="otc", description="OTC trades and daily metrics."),
            Tag(
                name="finra",
                description="FINRA OTC Transparency weeks: venue market share, symbol HHI.",
            ),
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
