"""The app's routes in groups, read from the app itself (`GET /api/v1` lists them).

A group is what a route's path starts with: `/api/v1/<group>/...` for the API
(executions, schedules, each data domain, health, pipelines), `/<group>/...`
for the rest (/ui, /metrics, /schema). A new controller, domain or page shows
up here without anyone writing it down.
"""

from __future__ import annotations

import msgspec
from litestar import Litestar
from litestar.routes import HTTPRoute

__all__ = ["API_ROOT", "RouteGroup", "route_groups"]

API_ROOT = "/api/v1"
_HIDDEN_METHODS = {"HEAD", "OPTIONS"}  # every path answers them (app.web.options)


class RouteGroup(msgspec.Struct, kw_only=True):
    """One group: where it starts, and each of its routes as `METHOD /path`."""

    href: str
    routes: list[str]


def route_groups(app: Litestar) -> dict[str, RouteGroup]:
    """Every HTTP route of `app` but the index itself, by group, sorted."""
    groups: dict[str, RouteGroup] = {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        path = route.path_format
        href = _group_href(path)
        if href is None:
            continue
        group = groups.setdefault(href.rsplit("/", 1)[-1], RouteGroup(href=href, routes=[]))
        group.routes += [f"{m} {path}" for m in sorted(route.methods - _HIDDEN_METHODS)]
    for group in groups.values():
        group.routes.sort(key=lambda r: (r.split(" ", 1)[1], r))
    return dict(sorted(groups.items()))


def _group_href(path: str) -> str | None:
    """`/api/v1/otc/trades` -> `/api/v1/otc`, `/ui/loads` -> `/ui`; None for `/`, `/api/v1`."""
    if path == API_ROOT or path.startswith(API_ROOT + "/"):
        rest, base = path[len(API_ROOT) :], API_ROOT
    else:
        rest, base = path, ""
    first = rest.strip("/").split("/", 1)[0]
    return f"{base}/{first}" if first else None
