"""The web dashboard at /ui: server-rendered pages over the API's own reads and actions.

`app.server.create_app` registers `ui_router()`, `template_config()` and
`ui_lifespan`. Pages are Jinja templates (`templates/`); the assets, including
the vendored charting library (`static/vendor/README.md`), are served from
`static/`, so the dashboard needs nothing from another site and works offline.

A data domain's pages, templates, static files and menu entries come from its
own package (`UiParts.of(catalog)`); a core page is a handler added to `PAGES`
and an entry in `CORE_NAV`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import msgspec
from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Litestar, Router
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from app.config import Settings
from app.db import database_url
from app.domains import Catalog
from app.ui.actions import ACTIONS
from app.ui.datasets import DATASET_PAGES
from app.ui.errors import error_page, no_such_page
from app.ui.live import LiveFeed, events
from app.ui.login_throttle import LoginThrottle
from app.ui.pages import PAGES
from app.ui.security import (
    UI_PATH,
    csrf_config,
    security_headers,
    ui_guard,
)
from app.ui.streams import StreamSlots, stream_cap
from app.web.connection import provide_conn
from app.web.fields import money

__all__ = ["CORE_NAV", "UI_PATH", "UiParts", "template_config", "ui_lifespan", "ui_router"]

HERE: Final = Path(__file__).parent
CORE_NAV: Final = (
    ("Overview", f"{UI_PATH}"),
    ("Executions", f"{UI_PATH}/executions"),
    ("Datasets", f"{UI_PATH}/datasets"),
)


@dataclass(frozen=True)
class UiParts:
    """What the data domains add to the dashboard: pages, menu entries, templates, assets."""

    pages: tuple[Any, ...] = ()
    nav: tuple[tuple[str, str], ...] = ()
    templates: tuple[Path, ...] = ()
    static: tuple[tuple[str, Path], ...] = ()

    @classmethod
    def of(cls, catalog: Catalog) -> UiParts:
        return cls(
            pages=tuple(p for d in catalog for p in d.pages()),
            nav=tuple(entry for d in catalog for entry in d.nav),
            templates=tuple(t for d in catalog if (t := d.templates()) is not None),
            static=tuple((d.name, s) for d in catalog if (s := d.static()) is not None),
        )


def _static(path: str, directory: Path, name: str) -> Router:
    return create_static_files_router(
        path=path, directories=[directory], name=name, opt={"public": True}, include_in_schema=False
    )


def ui_router(settings: Settings, parts: UiParts) -> Router:
    """Pages, actions, the live stream and the static assets, under /ui."""
    # A domain's assets first: /static/<domain>/... is more specific than /static.
    static = [_static(f"/static/{name}", path, f"ui_static_{name}") for name, path in parts.static]
    return Router(
        path=UI_PATH,
        route_handlers=[
            *PAGES,
            *DATASET_PAGES,
            *parts.pages,
            *ACTIONS,
            events,
            *static,
            _static("/static", HERE / "static", "ui_static"),
            no_such_page,
        ],
        guards=[ui_guard],
        dependencies={"conn": Provide(provide_conn)},
        middleware=[DefineMiddleware(CSRFMiddleware, config=csrf_config(settings))],
        after_request=security_headers,
        exception_handlers={Exception: error_page},
        include_in_schema=False,
    )


def _ago(moment: dt.datetime | None) -> str:
    if moment is None:
        return ""
    seconds = (dt.datetime.now(dt.UTC) - moment).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{max(int(seconds), 0)}s ago"


def _until(moment: dt.datetime | None) -> str:
    """How far ahead `moment` is ("in 5m"); "due" once it has passed."""
    if moment is None:
        return ""
    seconds = (moment - dt.datetime.now(dt.UTC)).total_seconds()
    if seconds <= 0:
        return "due"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"in {int(seconds // size)}{unit}"
    return f"in {int(seconds)}s"


def _when(moment: dt.datetime | None) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def _json(value: Any, *leave_out: str) -> str:
    """Compact JSON for display (the template escapes it as text), without the `leave_out`
    keys of a dict (a traceback is shown as text on its own)."""
    if leave_out and isinstance(value, dict):
        value = {k: v for k, v in value.items() if k not in leave_out}
    return msgspec.json.encode(value).decode()


def _number(value: Decimal | int | None) -> str:
    """A count or an amount as the API sends it (`13.09`, not `13.090000`), with thousands
    separators (`1,234,567.5`); nothing for None."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(money(value), ",f")
    return f"{value:,}"


def _short_id(value: str) -> str:
    """An execution's (or a backfill's) id as a page lists it: its last 8 digits. Execution
    ids are time-ordered (app.engine.ids): their first digits are a minute's for all."""
    return value[-8:]


def template_config(parts: UiParts) -> TemplateConfig[JinjaTemplateEngine]:
    """The core templates (`base.html` and the core pages), then each domain's."""
    environment = Environment(
        loader=FileSystemLoader([HERE / "templates", *parts.templates]),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.globals["nav"] = (*CORE_NAV, *parts.nav)
    environment.filters["ago"] = _ago
    environment.filters["when"] = _when
    environment.filters["until"] = _until
    environment.filters["json"] = _json
    environment.filters["number"] = _number
    environment.filters["short_id"] = _short_id
    return TemplateConfig(engine=JinjaTemplateEngine.from_environment(environment))


@asynccontextmanager
async def ui_lifespan(app: Litestar) -> AsyncIterator[None]:
    """The process's live feed (its database task starts with the first browser tab), the
    cap on its streams, and the login backoff."""
    settings = app.state.settings
    feed = LiveFeed(database_url(settings))
    app.state.ui_feed = feed
    cap = stream_cap(settings.ui_max_live_streams, settings.api_max_connections)
    app.state.ui_stream_slots = StreamSlots(cap)
    app.state.login_throttle = LoginThrottle()
    try:
        yield
    finally:
        await feed.stop()
